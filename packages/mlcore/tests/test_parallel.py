"""``mlcore.parallel.run_jobs``: real spawned processes running a toy plugin installed in a fake site."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlcore import parallel
from mlcore.errors import ConfigError
from mlcore.parallel import Job, JobResult, run_jobs
from mlcore.registry import get_registry, set_registry

#: A plugin whose pipeline sleeps per "epoch", logs epoch lines like the trainer, records when it
#: ran and with how many threads, and fails on demand (mode). mode="train" runs the real Trainer.
MANY_TOY = """
import json, logging, os, signal, time
import attrs
from mlcore import ComponentSpec, hookimpl
from mlcore.pipelines import Pipeline

log = logging.getLogger("manytoy")
if os.environ.get("MANYTOY_DIE_AT_IMPORT"):  # a job process killed before it writes anything
    os.kill(os.getpid(), signal.SIGKILL)

@attrs.define
class Epochs:
    epochs: int = 2

@attrs.define
class ManyConfig:
    mode: str = "ok"
    seconds: float = 0.0
    value: int = 1
    trainer: Epochs = attrs.field(factory=Epochs)

class ManyPipeline(Pipeline):
    def run(self, ctx):
        import torch
        cfg = self.config
        start = time.time()
        with open(ctx.out_dir / "calls.txt", "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        if cfg.mode == "raise":
            raise RuntimeError("planted failure in the job")
        if cfg.mode == "mlcore":
            from mlcore.errors import DataError
            raise DataError("data/x.npz: not found; create it with `mlcore data generate x`")
        if cfg.mode == "kill":
            print("about to be killed", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        if cfg.mode == "train":
            from mlcore.testing.toys import ToyData, ToyDataConfig, ToyNet, ToyNetConfig
            from mlcore.training import Callback, Trainer, TrainerConfig
            class SlowCb(Callback):
                def on_epoch_end(self, trainer, epoch, record):
                    (ctx.out_dir / "epoch_done").write_text(str(epoch))
                    time.sleep(float(os.environ.get("MANYTOY_EPOCH_SLEEP", "0")))
            tcfg = TrainerConfig(epochs=cfg.trainer.epochs, batch_size=16, progress=False, trackers=[],
                                 callbacks=[], plot=False)
            res = Trainer(tcfg, device="cpu", seed=ctx.seed, callbacks=[SlowCb()]).fit(
                ToyNet(ToyNetConfig()), ToyData(ToyDataConfig(num_samples=64)), torch.nn.MSELoss(),
                run_dir=ctx.out_dir)
            return {"epochs_run": len(res.history), "score": cfg.value * 10}
        for epoch in range(1, cfg.trainer.epochs + 1):
            time.sleep(cfg.seconds)
            log.info("epoch %d/%d  train_loss=%.4g  val_loss=%.4g", epoch, cfg.trainer.epochs, 1 / epoch, 2 / epoch)
        ctx.write_json("toy.json", {"start": start, "end": time.time(), "threads": torch.get_num_threads(),
                                    "omp": os.environ.get("OMP_NUM_THREADS")})
        return {"score": cfg.value * 10}

@hookimpl
def register_pipelines():
    return [ComponentSpec("many", "manytoy_plugin:ManyPipeline", "manytoy_plugin:ManyConfig", summary="toy")]
"""


@pytest.fixture
def manytoy(fake_site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The toy plugin installed (entry point) for this process and the job processes it spawns."""
    import importlib

    site = fake_site("manytoy", MANY_TOY)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MLCORE_PLUGINS", "manytoy")
    importlib.invalidate_caches()
    restore = set_registry(None)
    get_registry(refresh=True)
    yield tmp_path
    restore()


def job(root: Path, name: str, *overrides: str, group: str = "default") -> Job:
    return Job(name, "manytoy", root / "jobs" / name, overrides=overrides, group=group)


def interval(root: Path, name: str) -> tuple[float, float, dict]:
    data = json.loads((root / "jobs" / name / "toy.json").read_text())
    return data["start"], data["end"], data


@pytest.mark.slow
def test_jobs_overlap_in_a_group_and_groups_run_in_order(manytoy: Path) -> None:
    seen: list[str] = []
    jobs = [
        job(manytoy, "a", "seconds=1.0", group="fast"),
        job(manytoy, "b", "seconds=1.0", "value=2", group="fast"),
        job(manytoy, "c", "value=3", group="heavy"),
    ]
    results = run_jobs(
        jobs, max_parallel={"fast": 2}, threads=2, progress=False, on_finish=lambda r: seen.append(r.name)
    )
    assert [r.status for r in results] == ["completed"] * 3
    assert [r.metrics["score"] for r in results] == [10, 20, 30]
    assert sorted(seen[:2]) == ["a", "b"] and seen[2] == "c"  # on_finish as each job ends
    (a0, a1, a), (b0, b1, b), (c0, _, c) = (interval(manytoy, n) for n in "abc")
    assert a0 < b1 and b0 < a1, "the two jobs of the fast group did not run at the same time"
    assert c0 > max(a1, b1), "the heavy group started before the fast group finished"
    # the 2 threads are divided between the 2 simultaneous jobs; the lone heavy job gets both
    assert (a["threads"], b["threads"], c["threads"]) == (1, 1, 2)
    assert (a["omp"], c["omp"]) == ("1", "2")
    assert all(r.wall_time > 0.5 for r in results[:2])


@pytest.mark.slow
def test_one_at_a_time_does_not_overlap(manytoy: Path) -> None:
    jobs = [job(manytoy, "a", "seconds=0.5"), job(manytoy, "b", "seconds=0.5")]
    assert [r.status for r in run_jobs(jobs, max_parallel=1, threads=2, progress=False)] == ["completed"] * 2
    (_a0, a1, a), (b0, _b1, b) = interval(manytoy, "a"), interval(manytoy, "b")
    assert b0 > a1
    assert a["threads"] == b["threads"] == 2


@pytest.mark.slow
def test_failures_are_reported_and_do_not_lose_the_others(manytoy: Path) -> None:
    finished: list[JobResult] = []
    jobs = [
        job(manytoy, "bug", "mode='raise'"),
        job(manytoy, "killed", "mode='kill'"),
        job(manytoy, "nodata", "mode='mlcore'"),
        job(manytoy, "ok", "seconds=0.2"),
    ]
    results = {r.name: r for r in run_jobs(jobs, max_parallel=2, threads=2, progress=False, on_finish=finished.append)}
    assert sorted(r.name for r in finished) == ["bug", "killed", "nodata", "ok"]
    assert results["ok"].status == "completed" and results["ok"].metrics == {"score": 10}
    assert (manytoy / "jobs" / "ok" / "summary.json").is_file()
    bug = results["bug"]
    assert bug.status == "failed" and bug.error == "RuntimeError: planted failure in the job"
    assert "Traceback" in (manytoy / "jobs" / "bug" / parallel.OUTPUT_LOG).read_text()  # kept for the author
    assert results["nodata"].status == "failed"
    assert results["nodata"].error == "data/x.npz: not found; create it with `mlcore data generate x`"
    killed = results["killed"]
    assert killed.status == "failed" and "killed by SIGKILL" in (killed.error or "")
    assert "about to be killed" in (killed.error or "")  # the last output line of the dead process


@pytest.mark.slow
def test_a_crash_is_never_described_by_an_earlier_sessions_output(manytoy: Path, monkeypatch) -> None:
    jobs = [job(manytoy, "killed", "mode='kill'")]
    first = run_jobs(jobs, threads=1, progress=False)[0]
    assert first.status == "failed" and "about to be killed" in (first.error or "")
    monkeypatch.setenv("MANYTOY_DIE_AT_IMPORT", "1")  # the next process dies before it writes a line
    again = run_jobs(jobs, threads=1, progress=False)[0]
    assert again.status == "failed"
    assert again.error == "the job's process was killed by SIGKILL"  # not the last session's "about to be killed"


@pytest.mark.slow
def test_rerun_skips_completed_jobs_and_retries_failed_ones(manytoy: Path) -> None:
    jobs = [job(manytoy, "ok"), job(manytoy, "bug", "mode='raise'")]
    first = run_jobs(jobs, max_parallel=2, threads=2, progress=False)
    assert [r.status for r in first] == ["completed", "failed"]
    again = run_jobs(jobs, max_parallel=2, threads=2, progress=False)
    assert again[0].status == "completed" and again[0].metrics == {"score": 10} and again[0].wall_time == 0.0
    assert len((manytoy / "jobs" / "ok" / "calls.txt").read_text().split()) == 1  # not run again
    assert len((manytoy / "jobs" / "bug" / "calls.txt").read_text().split()) == 2  # tried again
    # a changed config is not "the same job": it runs (and the core refuses the different config)
    changed = run_jobs([job(manytoy, "ok", "value=5")], threads=1, progress=False)
    assert changed[0].status == "failed" and "different config" in (changed[0].error or "")


def test_bad_jobs_fail_before_anything_starts(manytoy: Path) -> None:
    with pytest.raises(ConfigError, match=r"job 'a': .*unknown key 'valeu'; did you mean 'value'"):
        run_jobs([job(manytoy, "a", "valeu=3")], progress=False)
    assert not (manytoy / "jobs").exists()
    with pytest.raises(ConfigError, match="two jobs are named 'a'"):
        run_jobs([job(manytoy, "a"), Job("a", "manytoy", manytoy / "x")], progress=False)
    with pytest.raises(ConfigError, match="both write to"):
        run_jobs([job(manytoy, "a"), Job("b", "manytoy", manytoy / "jobs" / "a")], progress=False)
    with pytest.raises(ConfigError, match="max_parallel names group 'fats'"):
        run_jobs([job(manytoy, "a", group="fast")], max_parallel={"fats": 2}, progress=False)
    with pytest.raises(ConfigError, match="max_parallel=0 for group 'default'"):
        run_jobs([job(manytoy, "a")], max_parallel=0, progress=False)


def test_threads_per_job_divides_and_keeps_one() -> None:
    assert [parallel.threads_per_job(4, n) for n in (1, 2, 3, 4, 8)] == [4, 2, 1, 1, 1]


def test_vary_jobs_is_the_cartesian_product(tmp_path: Path) -> None:
    vary = parallel.parse_vary(["model.name=gru,lstm", "trainer.lr=0.01,0.001"])
    jobs = parallel.vary_jobs("p", tmp_path, vary, overrides=["trainer.epochs=2"])
    assert [j.name for j in jobs] == [
        "name=gru,lr=0.01",
        "name=gru,lr=0.001",
        "name=lstm,lr=0.01",
        "name=lstm,lr=0.001",
    ]
    assert jobs[1].overrides == ("trainer.epochs=2", "model.name=gru", "trainer.lr=0.001")
    assert jobs[1].out == tmp_path / "name=gru,lr=0.001"
    single = parallel.vary_jobs("p", tmp_path, parallel.parse_vary(["model.name=gru,lstm"]))
    assert [j.name for j in single] == ["gru", "lstm"]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["model.name"], "expected KEY=VALUE1,VALUE2"),
        (["model.name=a,,b"], "expected KEY=VALUE1,VALUE2"),
        (["=a,b"], "expected KEY=VALUE1,VALUE2"),
        (["x=1", "x=2"], "given twice"),
        (["x=1,1"], "a value is repeated"),
    ],
)
def test_parse_vary_rejects_mistakes_in_one_line(items: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parallel.parse_vary(items)


def test_load_jobs_reads_a_file(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text("value = 4\n")
    file = tmp_path / "jobs.toml"
    file.write_text(
        'max_parallel = {fast = 2}\n[[jobs]]\nname = "a"\ngroup = "fast"\noverrides = ["value=2"]\n'
        '[[jobs]]\nname = "b"\nplugin = "other"\nconfig = "base.toml"\n'
    )
    jobs, limit = parallel.load_jobs(file, tmp_path / "out", plugin="manytoy", overrides=["seconds=0"])
    assert limit == {"fast": 2}
    assert jobs[0] == Job("a", "manytoy", tmp_path / "out" / "a", overrides=("seconds=0", "value=2"), group="fast")
    assert (jobs[1].plugin, jobs[1].config) == ("other", tmp_path / "base.toml")
    file.write_text('[[jobs]]\nname = "a"\nplugn = "x"\n')
    with pytest.raises(ConfigError, match=r"jobs.toml: jobs\[0\]: unknown key 'plugn'"):
        parallel.load_jobs(file, tmp_path, plugin="p")
    file.write_text('[[jobs]]\nname = "a"\n')
    with pytest.raises(ConfigError, match=r"jobs\[0\]: no plugin"):
        parallel.load_jobs(file, tmp_path)


def test_progress_lines_without_a_terminal(tmp_path: Path) -> None:
    stream = io.StringIO()
    jobs = [Job("gru", "p", tmp_path / "gru"), Job("linear", "p", tmp_path / "l")]
    display = parallel._Progress(jobs, True, stream)
    display.event("gru", status="running")
    display.event("gru", message="epoch 3/40  train_loss=0.5  val_loss=0.25  lr=0.001  0.4s  *best*")
    display.event("gru", message="epoch 4/40  train_loss=0.4  val_loss=0.2  lr=0.001  0.4s")  # throttled
    display.event("gru", status="completed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].split() == ["gru", "running", "0.0s"]
    assert lines[1].split()[:2] == ["gru", "completed"]
    assert lines[1].split()[3:] == ["epoch", "4/40", "val_loss=0.2"]
    assert "linear" not in stream.getvalue()  # a job that has not started prints nothing


def test_a_record_logged_by_a_signal_handler_mid_send_neither_deadlocks_nor_interleaves() -> None:
    """The trainer's SIGTERM handler logs; if it fires while the job is inside ``conn.send``, the
    record is dropped (output.log keeps it) instead of waiting forever for the held send lock."""
    import logging
    import multiprocessing as mp
    import threading
    from types import SimpleNamespace

    from mlcore.parallel import _PipeHandler

    reader, writer = mp.Pipe(duplex=False)
    handler = _PipeHandler(writer)
    logger = logging.getLogger("mlcore-test-reentry")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    calls: list[object] = []

    def send(message: object) -> None:  # a signal handler logging while this send is under way
        calls.append(message)
        if len(calls) == 1:
            logger.warning("SIGTERM received: stopping after the current step")
        writer.send(message)

    handler.conn = SimpleNamespace(send=send)
    done = threading.Event()
    threading.Thread(target=lambda: (logger.info("epoch 1"), done.set()), daemon=True).start()
    try:
        assert done.wait(5), "the job deadlocked on its own send lock"
        assert reader.recv() == ("log", logging.INFO, "epoch 1")
        assert not reader.poll(0.2)  # the re-entered record was dropped, not interleaved
    finally:
        logger.removeHandler(handler)
