"""The notify callback against a webhook and an SMTP server on the loopback address only."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mlcore.errors import ConfigError, MlcoreError
from mlcore.training.callbacks import Callback
from mlcore.training.notify import NotifyCallback, NotifyConfig


class Hook:
    """A loopback HTTP server recording the JSON bodies POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        bodies: list[dict[str, Any]] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                bodies.append(
                    {
                        "path": self.path,
                        "type": self.headers["Content-Type"],
                        "json": json.loads(self.rfile.read(length)),
                    }
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/abc"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


@pytest.fixture
def smtp() -> Iterator[tuple[int, list[Any]]]:
    """An aiosmtpd server on 127.0.0.1; yields (port, received messages)."""
    pytest.importorskip("aiosmtpd")
    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:  # aiosmtpd cannot bind port 0 itself: take a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, received
    controller.stop()


def test_webhook_body_names_the_run_and_status(fit_tiny: Any, hook: Hook) -> None:
    result, _, run_dir = fit_tiny(run="my-run", epochs=2, callbacks=[{"name": "notify", "webhook": hook.url}])
    assert len(hook.bodies) == 1
    sent = hook.bodies[0]
    assert sent["path"] == "/hooks/abc" and sent["type"] == "application/json"
    body = sent["json"]
    assert body["run"] == "my-run" and body["run_dir"] == str(run_dir)
    assert body["status"] == "completed" and body["epochs_run"] == 2
    assert body["best_metric"] == pytest.approx(result.best_metric) and body["best_epoch"] == result.best_epoch
    assert body["error"] == ""


class Boom(Callback):
    def on_epoch_end(self, trainer: Any, epoch: int, record: dict[str, Any]) -> None:
        if epoch == 2:
            raise MlcoreError("exploded at epoch 2")


def test_failed_run_is_notified_with_its_error_and_still_raises(fit_tiny: Any, hook: Hook) -> None:
    with pytest.raises(MlcoreError, match="exploded"):
        fit_tiny(run="bad", epochs=3, cbs=(Boom(),), callbacks=[{"name": "notify", "webhook": hook.url}])
    [body] = [b["json"] for b in hook.bodies]
    assert body["run"] == "bad" and body["status"] == "failed"
    assert body["error"] == "exploded at epoch 2" and body["epochs_run"] == 1


def test_only_the_chosen_outcomes_are_sent(fit_tiny: Any, hook: Hook) -> None:
    fit_tiny(epochs=1, callbacks=[{"name": "notify", "webhook": hook.url, "on": ["failed"]}])
    assert hook.bodies == []


def test_slack_format_adds_a_text_line(fit_tiny: Any, hook: Hook) -> None:
    fit_tiny(run="r1", epochs=1, callbacks=[{"name": "notify", "webhook": hook.url, "format": "slack"}])
    text = hook.bodies[0]["json"]["text"]
    assert text.startswith("run r1: completed after 1 epoch(s), best val_loss ")


def test_email_reaches_the_smtp_server(fit_tiny: Any, smtp: tuple[int, list[Any]]) -> None:
    port, received = smtp
    options = {"name": "notify", "email_to": ["a@example.org"], "smtp_host": "127.0.0.1", "smtp_port": port}
    fit_tiny(run="mailed", epochs=1, callbacks=[options])
    [envelope] = received
    assert envelope.rcpt_tos == ["a@example.org"]
    content = envelope.content.decode()
    assert "Subject: [mlcore] run mailed: completed after 1 epoch(s)" in content
    assert '"status": "completed"' in content


def test_unreachable_webhook_is_a_warning_not_a_failure(fit_tiny: Any, caplog: pytest.LogCaptureFixture) -> None:
    dead = Hook()
    url = dead.url
    dead.close()  # nothing listens on that port any more
    result, _, _ = fit_tiny(epochs=1, callbacks=[{"name": "notify", "webhook": url, "timeout": 2}])
    assert result.stopped_reason == "completed"
    assert "notify: webhook http://127.0.0.1:" in caplog.text and "/hooks/abc" not in caplog.text


def test_http_error_status_is_logged(fit_tiny: Any, caplog: pytest.LogCaptureFixture) -> None:
    server = Hook(status=500)
    try:
        fit_tiny(epochs=1, callbacks=[{"name": "notify", "webhook": server.url}])
    finally:
        server.close()
    assert len(server.bodies) == 1 and "HTTP Error 500" in caplog.text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"webhook": "ftp://x/y"}, "is not an http"),
        ({"webhook": "http://h/x", "on": ["done"]}, "'done' is not an outcome"),
    ],
)
def test_bad_options_are_config_errors(test_registry: Any, options: dict[str, Any], message: str) -> None:
    from mlcore.training.callbacks import build_callbacks

    with pytest.raises(ConfigError, match=message):
        build_callbacks([{"name": "notify", **options}])


def test_registered_as_notify(test_registry: Any) -> None:
    from mlcore.training.callbacks import build_callbacks

    [cb] = build_callbacks([{"name": "notify", "webhook": "http://127.0.0.1:9/x"}])
    assert isinstance(cb, NotifyCallback) and cb.config == NotifyConfig(webhook="http://127.0.0.1:9/x")


def test_no_destination_warns_and_sends_nothing(fit_tiny: Any, caplog: pytest.LogCaptureFixture) -> None:
    result, _, _ = fit_tiny(epochs=1, callbacks=["notify"])
    assert result.stopped_reason == "completed"
    assert "notify: neither webhook nor email_to is set" in caplog.text
