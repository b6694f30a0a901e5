"""Ctrl-C, SIGTERM and SIGKILL sent to real training processes: what fit() leaves behind.

Each run is a subprocess running :data:`SCRIPT`; the uninterrupted reference run is shared.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from mlcore.training._interrupts import InterruptGuard
from mlcore.training.checkpoint import load_checkpoint

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset
    from mlcore.data import DataModule
    from mlcore.errors import RunInterrupted
    from mlcore.training import Callback, Trainer, TrainerConfig

    class Data(DataModule):
        def setup(self):
            g = torch.Generator().manual_seed(0)
            x = torch.randn(96, 2, generator=g)
            self.t, self.v = self.split(TensorDataset(x, torch.sin(2 * x[:, :1] - x[:, 1:])), [0.75, 0.25])
        def train_set(self):
            return self.t
        def val_set(self):
            return self.v

    class Pace(Callback):
        def __init__(self, delay):
            self.delay = delay
        def on_batch_end(self, trainer, batch_idx, loss, logs):
            time.sleep(self.delay)
        def on_epoch_end(self, trainer, epoch, record):
            print(f"epoch {epoch}", flush=True)

    run_dir, epochs, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 1))
    cfg = TrainerConfig(epochs=epochs, batch_size=8, lr=1e-2, warmup_epochs=1, trackers=[], callbacks=[],
                        plot=False, progress=False)
    try:
        result = Trainer(cfg, device="cpu", seed=0, callbacks=[Pace(delay)]).fit(
            model, Data(), nn.MSELoss(), run_dir=run_dir)
    except RunInterrupted as exc:
        print(json.dumps({"signal": exc.signal_name, "run_dir": exc.run_dir, "message": str(exc)}), flush=True)
        sys.exit(130)
    print(json.dumps({"stopped_reason": result.stopped_reason, "epochs_run": result.epochs_run}), flush=True)
    """
)
EPOCHS = 4


def start(tmp: Path, run_dir: Path, epochs: int, delay: float) -> subprocess.Popen[str]:
    script = tmp / "train_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), str(run_dir), str(epochs), str(delay)],
        stdout=subprocess.PIPE,
        stderr=open(tmp / f"{run_dir.name}.stderr", "w"),
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, list[str]]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out.splitlines()


def wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float = 120) -> list[str]:
    """Read the child's stdout until a line equals ``text``."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the training process ended before printing {text!r}: {seen}")
        seen.append(line.strip())
        if line.strip() == text:
            return seen
    raise AssertionError(f"timed out waiting for {text!r}")


def curves(history: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple((k, v) for k, v in sorted(r.items()) if k != "seconds") for r in history]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``last.pt`` of the uninterrupted run."""
    tmp = tmp_path_factory.mktemp("reference")
    code, lines = finish(start(tmp, tmp / "full", EPOCHS, 0.0))
    assert code == 0, (tmp / "full.stderr").read_text()
    assert json.loads(lines[-1]) == {"stopped_reason": "completed", "epochs_run": EPOCHS}
    return load_checkpoint(tmp / "full" / "checkpoints" / "last.pt")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_consistent_files_raises_and_resumes_bit_exact(
    tmp_path: Path, reference: dict[str, Any], sig: signal.Signals
) -> None:
    run_dir = tmp_path / "run"
    proc = start(tmp_path, run_dir, EPOCHS, 0.05)  # 9 batches x 50 ms per epoch
    wait_for_line(proc, "epoch 2")
    proc.send_signal(sig)
    code, lines = finish(proc)
    assert code == 130, (tmp_path / "run.stderr").read_text()
    report = json.loads(lines[-1])
    assert report["signal"] == sig.name and Path(report["run_dir"]) == run_dir
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    stats = json.loads((run_dir / "training_stats.json").read_text())
    assert 2 <= last["epoch"] < EPOCHS
    assert stats["stopped_reason"] == "interrupted" and stats["epochs_run"] == last["epoch"]
    assert [r["epoch"] for r in stats["history"]] == list(range(1, last["epoch"] + 1))
    assert stats["best_epoch"] == last["best_epoch"] and stats["best_metric"] == last["best_metric"]
    assert f"holds epoch {last['epoch']} of {EPOCHS}" in report["message"]
    assert f"{sig.name} received" in (tmp_path / "run.stderr").read_text()

    code, lines = finish(start(tmp_path, run_dir, EPOCHS, 0.0))
    assert code == 0 and json.loads(lines[-1]) == {"stopped_reason": "completed", "epochs_run": EPOCHS}
    resumed = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert curves(resumed["history"]) == curves(reference["history"])
    for k, v in reference["model"].items():
        assert torch.equal(resumed["model"][k], v), k


@pytest.mark.slow
def test_killed_run_is_never_recorded_as_completed(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code, _ = finish(start(tmp_path, run_dir, 1, 0.0))
    assert code == 0
    assert json.loads((run_dir / "training_stats.json").read_text())["stopped_reason"] == "completed"
    proc = start(tmp_path, run_dir, 50, 0.05)  # extend the finished run, then kill it
    wait_for_line(proc, "epoch 2")  # the new session's first epoch, before its checkpoint and stats
    proc.kill()
    proc.wait(timeout=60)
    stats = json.loads((run_dir / "training_stats.json").read_text())
    assert stats["stopped_reason"] == "running"
    assert stats["epochs_run"] <= load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"]


def test_sigterm_in_process_stops_after_the_step_with_consistent_files(fit_tiny: Any) -> None:
    from mlcore.errors import RunInterrupted
    from mlcore.training import Callback

    class TermAt(Callback):
        def on_batch_end(self, trainer: Any, batch_idx: int, loss: torch.Tensor, logs: dict[str, float]) -> None:
            if trainer.epoch == 3 and batch_idx == 1:
                os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RunInterrupted) as exc:
        fit_tiny("term", epochs=5, cbs=(TermAt(),))
    assert exc.value.signal_name == "SIGTERM" and signal.getsignal(signal.SIGTERM) == before
    run_dir = Path(str(exc.value.run_dir))
    stats = json.loads((run_dir / "training_stats.json").read_text())
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert last["epoch"] == stats["epochs_run"] == 2 and stats["stopped_reason"] == "interrupted"
    assert load_checkpoint(run_dir / "checkpoints" / "best.pt")["epoch"] == stats["best_epoch"]


def test_guard_turns_signals_into_a_request_and_restores_handlers() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with InterruptGuard() as guard:
        assert not guard.requested()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert guard.signal_name == "SIGTERM"
        os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM changes nothing
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C stops at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    assert {s: signal.getsignal(s) for s in before} == before


def test_guard_installs_nothing_outside_the_main_thread() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[Any] = []

    def run() -> None:
        with InterruptGuard():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [before]
