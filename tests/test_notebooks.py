"""examples/notebooks run headless (nbclient) with a tiny trc-control config, resuming across sessions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "examples" / "notebooks"

#: a tiny trc-control run (epochs of about a second on a 2-core CPU)
TINY = [
    "dataset.num_samples=3000",
    "dataset.test_num_samples=64",
    "model.size=small",
    "trainer.epochs=3",
    "trainer.trackers=[]",
    "trainer.plot=false",
    "comparison.enabled=false",
    "export.enabled=false",
    "evaluator.timing_problems=10",
]


@pytest.fixture(scope="module")
def session_minutes(tmp_path_factory: pytest.TempPathFactory) -> float:
    """A session limit of about two epochs, from the time of an epoch measured here.

    The trainer starts an epoch only when the slowest epoch so far still fits (and aborts one that
    overruns), so with 2 epochs (+0.8 s of set-up and resuming) a session makes progress while epochs
    take up to about twice the measured time, and six epochs need two sessions or more unless they
    run three times as fast. The probe's second epoch is the one timed: the first carries warm-up
    (it measured twice the steady time once, and four epochs then fitted in one session).
    """
    pytest.importorskip("mlcore_trc_control")
    from mlcore import api

    probe = tmp_path_factory.mktemp("probe") / "run"
    api.run("trc-control", profile="quick", overrides=[*TINY, "trainer.epochs=2"], out=probe, progress=False)
    epoch = json.loads((probe / "training_stats.json").read_text())["history"][-1]["seconds"]
    return (2 * epoch + 0.8) / 60


def inject(nb: object, params: dict[str, object]) -> None:
    """Papermill's way: a cell setting ``params`` right after the cell tagged ``parameters``."""
    import nbformat

    cells = nb.cells  # type: ignore[attr-defined]
    index = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{k} = {v!r}" for k, v in params.items())
    cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))


def test_notebooks_are_valid_and_tagged() -> None:
    nbformat = pytest.importorskip("nbformat")
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == ["colab_train.ipynb", "kaggle_train.ipynb"]
    for name in names:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        assert [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])], name
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name}: saved with outputs"


@pytest.mark.slow
@pytest.mark.parametrize(("name", "epochs"), [("colab_train.ipynb", 6), ("kaggle_train.ipynb", 6)])
def test_notebook_trains_resumes_across_sessions_and_plots(
    name: str, epochs: int, session_minutes: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("mlcore_trc_control")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows the figures
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    run_dir = tmp_path / "runs" / "trc-control"
    params: dict[str, object] = {
        "PLUGIN": "trc-control",
        "PROFILE": "quick",
        "OVERRIDES": [*TINY, f"trainer.epochs={epochs}"],
        "SESSION_MINUTES": session_minutes,
        "MAX_SESSIONS": 8,
        "RUN_DIR": str(run_dir),
    }
    params.update({"USE_DRIVE": False} if name.startswith("colab") else {"PREVIOUS_OUTPUT": ""})
    inject(nb, params)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()

    stats = json.loads((run_dir / "training_stats.json").read_text())
    assert stats["epochs_run"] == epochs and stats["stopped_reason"] == "completed"
    printed = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"
    )
    sessions = [line for line in printed.splitlines() if line.startswith("session ")]
    # one to five epochs per session: stopped by the limit at least once, then resumed
    assert 2 <= len(sessions) <= epochs, printed
    assert "(time_limit)" in sessions[0] and sessions[-1].endswith(f"-> {epochs} (completed)")
    assert "device: cpu" in printed
    assert (run_dir / "notebook_curves.png").stat().st_size > 1000
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the loss curves and the saved PNG displayed
