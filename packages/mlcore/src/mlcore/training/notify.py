"""The ``notify`` callback: a JSON webhook and/or an e-mail when a run finishes or fails.

Configured like any trainer callback::

    [trainer]
    callbacks = [{name = "notify", webhook = "https://hooks.example.org/T0/B0", email_to = ["me@example.org"],
                  smtp_host = "smtp.example.org", smtp_port = 587, smtp_starttls = true, smtp_user = "me"}]

The SMTP password is read from ``MLCORE_SMTP_PASSWORD`` (never from a config file). A message
that cannot be delivered is logged as a warning: a notification never fails a run.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import socket
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import attrs

from mlcore.config import in_range, one_of
from mlcore.errors import ConfigError
from mlcore.training.callbacks import Callback, TrainerView

if TYPE_CHECKING:
    from mlcore.training.result import FitResult

log = logging.getLogger(__name__)

#: the outcomes a notification can be sent for (the trainer's stop reasons, plus ``failed``)
OUTCOMES = ("completed", "early_stopping", "time_limit", "interrupted", "failed")

PASSWORD_ENV = "MLCORE_SMTP_PASSWORD"


def _webhook(inst: object, attribute: attrs.Attribute, value: str) -> None:  # type: ignore[type-arg]
    if value and (urlparse(value).scheme not in ("http", "https") or not urlparse(value).netloc):
        raise ConfigError(f"{attribute.name}={value!r} is not an http(s) URL")


def _outcomes(inst: object, attribute: attrs.Attribute, value: list[str]) -> None:  # type: ignore[type-arg]
    for item in value:
        if item not in OUTCOMES:
            raise ConfigError(f"{attribute.name}: {item!r} is not an outcome (allowed: {', '.join(OUTCOMES)})")


@attrs.define
class NotifyConfig:
    """Options of the ``notify`` callback.

    Attributes:
        webhook: an http(s) URL that receives the JSON message as a POST.
        email_to: addresses to e-mail (through ``smtp_host:smtp_port``).
        email_from: the sender address.
        smtp_host, smtp_port, smtp_starttls, smtp_user: the SMTP server; with ``smtp_user`` set,
            the password comes from the ``MLCORE_SMTP_PASSWORD`` environment variable.
        on: the outcomes to notify about (default: all of ``completed``, ``early_stopping``,
            ``time_limit``, ``interrupted``, ``failed``).
        timeout: seconds to wait for the webhook or SMTP server.
    """

    webhook: str = attrs.field(default="", validator=_webhook)
    email_to: list[str] = attrs.field(factory=list)
    email_from: str = "mlcore@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = attrs.field(default=25, validator=in_range(1, 65535))
    smtp_starttls: bool = False
    smtp_user: str = ""
    on: list[str] = attrs.field(factory=lambda: list(OUTCOMES), validator=_outcomes)
    timeout: float = attrs.field(default=10.0, validator=in_range(0, low_open=True))
    format: str = attrs.field(default="json", validator=one_of("json", "slack"))


def message(trainer: TrainerView, status: str, result: FitResult | None, error: str = "") -> dict[str, Any]:
    """The notification: run name and directory, status, epochs, best value of the monitored metric."""
    history = trainer.history
    best = trainer.best_metric
    return {
        "run": trainer.run_dir.name,
        "run_dir": str(trainer.run_dir),
        "status": status,
        "epochs_run": len(history),
        "monitor": trainer.monitor,
        "best_metric": best if isinstance(best, float) and abs(best) != float("inf") else None,
        "best_epoch": trainer.best_epoch,
        "train_seconds": round(sum(float(r.get("seconds", 0.0)) for r in history), 3),
        "host": socket.gethostname(),
        "error": error,
    }


def summary_line(msg: dict[str, Any]) -> str:
    """One human line: ``run <name>: <status> after N epoch(s), best <monitor> <value>``."""
    line = f"run {msg['run']}: {msg['status']} after {msg['epochs_run']} epoch(s)"
    if msg.get("best_metric") is not None:
        line += f", best {msg['monitor']} {msg['best_metric']:.6g} (epoch {msg['best_epoch']})"
    if msg.get("error"):
        line += f": {msg['error']}"
    return line


class NotifyCallback(Callback):
    """Send a webhook POST and/or an e-mail when training ends (``on_fit_end``) or fails (``on_exception``).

    Registered as ``notify`` (options: :class:`NotifyConfig`). Only the main process sends.
    """

    def __init__(self, config: NotifyConfig) -> None:
        self.config = config
        self.sent: list[dict[str, Any]] = []

    def on_fit_start(self, trainer: TrainerView) -> None:
        """Warn when there is nowhere to send to."""
        if trainer.is_main and not self.config.webhook and not self.config.email_to:
            log.warning("notify: neither webhook nor email_to is set, so no notification will be sent")

    def on_fit_end(self, trainer: TrainerView, result: FitResult) -> None:
        """Notify the run's stop reason."""
        self._send(trainer, message(trainer, str(result.stopped_reason), result))

    def on_exception(self, trainer: TrainerView, exc: BaseException) -> None:
        """Notify ``failed`` with the error."""
        self._send(trainer, message(trainer, "failed", None, str(exc) or type(exc).__name__))

    def _send(self, trainer: TrainerView, msg: dict[str, Any]) -> None:
        if not trainer.is_main or msg["status"] not in self.config.on:
            return
        if self.config.webhook:
            try:
                post_json(self.config.webhook, self._body(msg), timeout=self.config.timeout)
            except (OSError, urllib.error.URLError) as exc:
                log.warning("notify: webhook %s failed: %s", _host(self.config.webhook), exc)
        if self.config.email_to:
            try:
                send_email(self.config, msg)
            except (OSError, smtplib.SMTPException) as exc:
                log.warning("notify: e-mail via %s:%d failed: %s", self.config.smtp_host, self.config.smtp_port, exc)
        self.sent.append(msg)

    def _body(self, msg: dict[str, Any]) -> dict[str, Any]:
        if self.config.format == "slack":  # Slack/Mattermost incoming webhooks show "text"
            return {"text": summary_line(msg), **msg}
        return msg


def _host(url: str) -> str:
    """The URL without its path (webhook paths often hold secrets)."""
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}"


def post_json(url: str, body: dict[str, Any], *, timeout: float = 10.0) -> int:
    """POST ``body`` as JSON; returns the HTTP status (an error status raises ``HTTPError``)."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json", "User-Agent": "mlcore-notify"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(response.status)


def send_email(config: NotifyConfig, msg: dict[str, Any]) -> None:
    """E-mail ``msg`` (subject: the summary line; body: the summary and the JSON) through SMTP."""
    mail = EmailMessage()
    mail["Subject"] = f"[mlcore] {summary_line(msg)}"[:200]
    mail["From"] = config.email_from
    mail["To"] = ", ".join(config.email_to)
    mail.set_content(f"{summary_line(msg)}\n\n{json.dumps(msg, indent=2)}\n")
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout) as smtp:
        if config.smtp_starttls:
            smtp.starttls()
        if config.smtp_user:
            smtp.login(config.smtp_user, os.environ.get(PASSWORD_ENV, ""))
        smtp.send_message(mail)
