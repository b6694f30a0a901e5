"""``mlcore.doctor``: what the installation offers and what each optional feature lacks."""

from __future__ import annotations

from importlib import metadata

import pytest

from mlcore import doctor


def test_rows_name_devices_threads_versions_and_plugins() -> None:
    import torch

    rows = doctor.diagnose()
    by_item = {(r["section"], r["item"]): r for r in rows}
    assert by_item[("versions", "torch")]["detail"] == metadata.version("torch")
    assert by_item[("devices", "cpu")]["status"] == "ok"
    cuda = by_item.get(("devices", "cuda")) or by_item.get(("devices", "cuda:0"))
    assert cuda is not None and (cuda["status"] == "ok") == torch.cuda.is_available()
    assert by_item[("threads", "torch threads")]["detail"].endswith(f"inter-op {torch.get_num_interop_threads()}")
    assert all(r["status"] in ("ok", "missing", "unavailable", "failed", "info") for r in rows)


def test_a_missing_extra_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_version = metadata.version

    def without_onnx(name: str) -> str:
        if name == "onnxruntime":
            raise metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(doctor.metadata, "version", without_onnx)
    extras = doctor.extras_status()
    onnx = {req.split(">")[0]: ok for req, _, ok in extras["onnx"]}
    assert onnx["onnxruntime"] is False
    row = next(r for r in doctor.diagnose() if r["section"] == "extras" and r["item"] == "onnx")
    assert row["status"] == "missing"
    assert row["detail"].startswith("needs onnxruntime>=") and row["detail"].endswith("pip install 'mlcore[onnx]'")


def test_an_old_version_does_not_satisfy_an_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_version = metadata.version
    monkeypatch.setattr(doctor.metadata, "version", lambda n: "1.0" if n == "pyyaml" else real_version(n))
    assert doctor.extras_status()["yaml"] == [("pyyaml>=6", "1.0", False)]
