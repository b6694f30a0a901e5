"""The ``printer_layers`` dataset: simulated layers -> windows of the reference -> the tracking error.

Each selected layer of each part (or G-code file) is simulated on its own (:mod:`.simulation`),
giving a series of features ``x_ref, y_ref, vx_ref, vy_ref`` and targets ``error_x, error_y`` at
the sample rate. Layers, not windows, are split 0.8/0.1/0.1 (seeded), so no window of a held-out
layer overlaps a training one; normalisation statistics come from the training layers only.
An item is ``Window(features [T, 4], target [2])``: an ``(inputs, targets)`` pair that also reads as
``item["features"]`` / ``item["target"]``; the target is the error at the window's last sample.

``mlcore data generate printer_layers --out DIR`` writes ``DIR/gcode/*.gcode`` (the parts as real
G-code), ``DIR/{train,val,test}.pt`` (one file per split: the concatenated series, their offsets
and layer ids) and ``DIR/stats.json``; ``dataset.path = DIR`` reads them back.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import numpy as np
import torch
from torch.utils.data import Dataset

from mlcore.config import in_range, positive
from mlcore.data import DataModule
from mlcore.errors import DataError
from mlcore.io import atomic_write, atomic_write_json
from mlcore_printer_corrector.dynamics import DynamicsConfig
from mlcore_printer_corrector.gcode import Toolpath, read_gcode
from mlcore_printer_corrector.layers import check_layer_spec, select_layers
from mlcore_printer_corrector.parts import PARTS, SliceConfig, part_gcode
from mlcore_printer_corrector.planner import PlannerConfig
from mlcore_printer_corrector.simulation import simulate_layer

__all__ = ["FEATURES", "SPLITS", "TARGETS", "PrinterData", "PrinterDataConfig", "Window", "WindowDataset"]

FEATURES = ("x_ref", "y_ref", "vx_ref", "vy_ref")
TARGETS = ("error_x", "error_y")
SPLITS = ("train", "val", "test")
STATS_FILE = "stats.json"


def _parts(inst: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, list) or any(p not in PARTS for p in value):
        bad = next((p for p in value if p not in PARTS), value) if isinstance(value, list) else value
        raise ValueError(f"{attribute.name}: unknown part {bad!r} (allowed: {', '.join(PARTS)})")


def _layers(inst: Any, attribute: Any, value: Any) -> None:
    check_layer_spec(value)


@attrs.define
class PrinterDataConfig:
    """Config of :class:`PrinterData`.

    Attributes:
        parts: procedural parts to print (``benchy``, ``bearing``, ``nautilus``, ``boat``).
        gcode_files: your own slicer output, simulated as well (empty: only ``parts``).
        layers: which layers of each part/file: ``sampled:N`` (N evenly spread), ``first:N``, ``all``, ``0,5,10``.
        sample_rate: reference sampling rate (Hz); ``sequence_length``: samples per window (50 = 0.5 s at 100 Hz).
        stride: samples between consecutive windows.
        val_fraction, test_fraction: shares of the layers held out (at least one layer each when > 0).
        input_noise: std of Gaussian noise added to the normalised training features (0 = off).
        seed: seed of the layer split.
        path: read the splits from this directory (``mlcore data generate``) instead of simulating.
        slicing, planner, dynamics: how parts are sliced, the firmware planner, the axis dynamics.
    """

    parts: list[str] = attrs.field(factory=lambda: list(PARTS), validator=_parts)
    gcode_files: list[str] = attrs.field(factory=list)
    layers: str = attrs.field(default="sampled:10", validator=_layers)
    sample_rate: float = attrs.field(default=100.0, validator=in_range(1.0, 10000.0))
    sequence_length: int = attrs.field(default=50, validator=in_range(2, 2000))
    stride: int = attrs.field(default=2, validator=positive)
    val_fraction: float = attrs.field(default=0.1, validator=in_range(0.0, 0.5))
    test_fraction: float = attrs.field(default=0.1, validator=in_range(0.0, 0.5))
    input_noise: float = attrs.field(default=0.0, validator=in_range(0.0, 10.0))
    seed: int = 0
    path: str = ""
    slicing: SliceConfig = attrs.field(factory=SliceConfig)
    planner: PlannerConfig = attrs.field(factory=PlannerConfig)
    dynamics: DynamicsConfig = attrs.field(factory=DynamicsConfig)


class Window(NamedTuple):
    """One training example: ``features [T, 4]`` (normalised reference) and ``target [2]`` (normalised error)."""

    features: torch.Tensor
    target: torch.Tensor

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        """``item[0]``/``item[1]`` as a pair, or ``item["features"]``/``item["target"]`` by name."""
        if isinstance(key, str):
            if key not in self._fields:
                raise KeyError(key)
            return getattr(self, key)
        return tuple.__getitem__(self, key)


class WindowDataset(Dataset[Window]):
    """Windows over concatenated per-layer series, built on the fly from window start indices."""

    def __init__(
        self, features: torch.Tensor, targets: torch.Tensor, starts: torch.Tensor, length: int, noise: float = 0.0
    ) -> None:
        self.features, self.targets, self.starts, self.length, self.noise = features, targets, starts, length, noise

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def __getitem__(self, i: int) -> Window:
        s = int(self.starts[i])
        f = self.features[s : s + self.length]
        if self.noise > 0:
            f = f + self.noise * torch.randn_like(f)
        return Window(f, self.targets[s + self.length - 1])


def window_starts(offsets: np.ndarray, length: int, stride: int) -> np.ndarray:
    """Start indices of the windows inside each series ``offsets[i]:offsets[i+1]`` (none cross a series)."""
    out = []
    for a, b in itertools.pairwise(offsets):
        ends = np.arange(a + length - 1, b, stride)
        out.append(ends - length + 1)
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def split_units(
    units: list[tuple[str, int]], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[int]]:
    """Indices of ``units`` (layers) per split, shuffled with ``seed``; each held-out split gets at least one."""
    n = len(units)
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(test_fraction * n)) if test_fraction > 0 and n >= 3 else 0
    n_val = max(1, round(val_fraction * n)) if val_fraction > 0 and n >= 3 else 0
    return {
        "test": sorted(order[:n_test].tolist()),
        "val": sorted(order[n_test : n_test + n_val].tolist()),
        "train": sorted(order[n_test + n_val :].tolist()),
    }


class PrinterData(DataModule):
    """Simulated printer layers as windows of the reference and the tracking error (see the module docstring)."""

    config: PrinterDataConfig

    def __init__(self, config: PrinterDataConfig | None = None) -> None:
        super().__init__(config or PrinterDataConfig())
        self.stats: dict[str, Any] | None = None
        #: raw (unnormalised) splits: {"features", "targets", "offsets", "units"}
        self.raw: dict[str, dict[str, Any]] = {}
        self._sets: dict[str, WindowDataset | None] = {}
        self._sources: dict[str, str] = {}  # source name -> G-code text
        self._toolpaths: dict[str, Toolpath] = {}

    # ---------------------------------------------------------------- building
    def sources(self) -> dict[str, str]:
        """``{name: G-code text}`` of every part and file to simulate."""
        if self._sources:
            return self._sources
        cfg = self.config
        if cfg.path:
            gdir = Path(cfg.path) / "gcode"
            for f in sorted(gdir.glob("*.gcode")) if gdir.is_dir() else []:
                self._sources[f.stem] = f.read_text(encoding="utf-8", errors="replace")
            return self._sources
        for name in cfg.parts:
            self._sources[name] = part_gcode(name, cfg.slicing)
        for file in cfg.gcode_files:
            path = Path(file)
            if not path.is_file():
                raise DataError(f"dataset.gcode_files: {path} does not exist")
            self._sources[path.stem] = path.read_text(encoding="utf-8", errors="replace")
        if not self._sources:
            raise DataError("dataset: nothing to simulate (dataset.parts and dataset.gcode_files are both empty)")
        return self._sources

    def toolpath(self, source: str) -> Toolpath:
        """The parsed G-code of ``source`` (cached)."""
        if source not in self._toolpaths:
            text = self.sources().get(source)
            if text is None:
                raise DataError(f"dataset: no G-code for {source!r} (have: {', '.join(self.sources())})")
            self._toolpaths[source] = read_gcode(f"{source}.gcode", text=text)
        return self._toolpaths[source]

    def simulate(self) -> list[tuple[tuple[str, int], np.ndarray, np.ndarray]]:
        """``[((source, layer), features (n, 4), error (n, 2))]`` for every selected layer."""
        cfg = self.config
        out: list[tuple[tuple[str, int], np.ndarray, np.ndarray]] = []
        user_files = {Path(f).stem: f for f in cfg.gcode_files} if not cfg.path else {}
        for source in self.sources():
            tp = self.toolpath(source)
            before = len(out)
            for layer in select_layers(cfg.layers, tp.layers):
                trace = simulate_layer(tp.layer_path(layer), cfg.planner, cfg.dynamics, cfg.sample_rate)
                if trace.features.shape[0] >= cfg.sequence_length:
                    out.append(((source, layer), trace.features, trace.error))
            if source in user_files and len(out) == before:
                # a user's file that adds nothing is a mistake to name, not a silent no-op
                raise DataError(
                    f"dataset.gcode_files: {user_files[source]} gives no layer with at least "
                    f"sequence_length={cfg.sequence_length} samples ({len(tp)} moves, layers={cfg.layers!r})"
                )
        if not out:
            raise DataError(
                f"dataset: no layer is longer than sequence_length={cfg.sequence_length} samples "
                f"(layers={cfg.layers!r})"
            )
        return out

    def _build_raw(self) -> None:
        cfg = self.config
        series = self.simulate()
        units = [u for u, _, _ in series]
        parts = split_units(units, cfg.val_fraction, cfg.test_fraction, cfg.seed)
        for split in SPLITS:
            idx = parts[split]
            feats = [series[i][1] for i in idx]
            errs = [series[i][2] for i in idx]
            lengths = [f.shape[0] for f in feats]
            self.raw[split] = {
                "features": torch.from_numpy(np.concatenate(feats).astype(np.float32)) if feats else torch.zeros(0, 4),
                "targets": torch.from_numpy(np.concatenate(errs).astype(np.float32)) if errs else torch.zeros(0, 2),
                "offsets": torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)),
                "units": [[units[i][0], int(units[i][1])] for i in idx],
            }

    def _load_raw(self) -> None:
        root = Path(self.config.path)
        for split in SPLITS:
            file = root / f"{split}.pt"
            if not file.is_file():
                raise DataError(
                    f"dataset.path: {file} does not exist "
                    f"(create it with `mlcore data generate printer_layers --out {root}`)"
                )
            try:
                raw = torch.load(file, map_location="cpu", weights_only=True)
            except Exception as exc:  # any unreadable file is the same user mistake
                raise DataError(f"dataset.path: {file} is not a printer_layers split ({type(exc).__name__})") from None
            for key, width in (("features", 4), ("targets", 2)):
                t = raw.get(key) if isinstance(raw, dict) else None
                if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape[1] != width:
                    shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                    raise DataError(f"dataset.path: {file} field {key!r} has shape {shape}, expected (N, {width})")
                if not torch.isfinite(t).all():
                    raise DataError(f"dataset.path: {file} field {key!r} holds NaN or infinite values")
            if raw["features"].shape[0] != raw["targets"].shape[0]:
                raise DataError(
                    f"dataset.path: {file} has {raw['features'].shape[0]} feature rows but "
                    f"{raw['targets'].shape[0]} target rows"
                )
            self.raw[split] = raw

    def setup(self) -> None:
        """Simulate (or load) the layers, split them by layer, normalise with training statistics."""
        cfg = self.config
        if cfg.path:
            self._load_raw()
        else:
            self._build_raw()
        train = self.raw["train"]
        if train["features"].shape[0] == 0:
            raise DataError("dataset: no training layers (lower val_fraction/test_fraction or select more layers)")
        if self.stats is None:
            self.stats = compute_stats(train["features"], train["targets"])
        self._sets = {}
        for split in SPLITS:
            raw = self.raw[split]
            starts = window_starts(raw["offsets"].numpy(), cfg.sequence_length, cfg.stride)
            if starts.shape[0] == 0:
                self._sets[split] = None
                continue
            f, t = self.normalise(raw["features"], raw["targets"])
            assert t is not None
            noise = cfg.input_noise if split == "train" else 0.0
            self._sets[split] = WindowDataset(f, t, torch.from_numpy(starts), cfg.sequence_length, noise)
        if self._sets["train"] is None:
            raise DataError(f"dataset: no training window of sequence_length={cfg.sequence_length} fits a layer")

    def normalise(
        self, features: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features and targets in training-normalised units."""
        s = self.stats
        assert s is not None
        f = (features - torch.tensor(s["feature_mean"])) / torch.tensor(s["feature_std"])
        if targets is None:
            return f.float(), None
        t = (targets - torch.tensor(s["target_mean"])) / torch.tensor(s["target_std"])
        return f.float(), t.float()

    def denormalise_targets(self, values: torch.Tensor) -> torch.Tensor:
        """Normalised errors back to mm."""
        s = self.stats
        assert s is not None
        return values * torch.tensor(s["target_std"], dtype=values.dtype) + torch.tensor(
            s["target_mean"], dtype=values.dtype
        )

    # ---------------------------------------------------------------- DataModule
    def train_set(self) -> Dataset[Any]:
        """Windows of the training layers (with ``input_noise`` when set)."""
        self.prepare()
        assert self._sets["train"] is not None
        return self._sets["train"]

    def val_set(self) -> Dataset[Any] | None:
        """Windows of the validation layers (early stopping, best.pt)."""
        self.prepare()
        return self._sets["val"]

    def test_set(self) -> Dataset[Any] | None:
        """Windows of the held-out test layers."""
        self.prepare()
        return self._sets["test"]

    def dimensions(self) -> dict[str, int]:
        """``input_size`` 4, ``output_size`` 2 and ``sequence_length`` for the model."""
        return {
            "input_size": len(FEATURES),
            "output_size": len(TARGETS),
            "sequence_length": self.config.sequence_length,
        }

    def write(self, out_dir: Path) -> list[Path]:
        """Write the prepared splits, ``stats.json`` and the G-code sources under ``out_dir``."""
        self.prepare()
        out = Path(out_dir)
        written: list[Path] = []
        gdir = out / "gcode"
        gdir.mkdir(parents=True, exist_ok=True)
        for name, text in self.sources().items():
            target = gdir / f"{name}.gcode"
            if not target.exists():
                tmp = target.with_suffix(".tmp")
                tmp.write_text(text, encoding="utf-8")
                shutil.move(str(tmp), target)
            written.append(target)
        for split in SPLITS:
            raw = self.raw[split]
            written.append(atomic_write(out / f"{split}.pt", _saver(raw)))
        written.append(atomic_write_json(out / STATS_FILE, self.stats))
        return written

    def generate(self, out_dir: Path) -> list[Path]:
        """Simulate and write everything :meth:`write` writes."""
        return self.write(out_dir)

    def state_dict(self) -> dict[str, Any]:
        """The normalisation statistics (plain lists)."""
        return {"stats": self.stats} if self.stats is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the statistics (before ``prepare``)."""
        if state.get("stats"):
            self.stats = dict(state["stats"])


def _saver(obj: Any) -> Any:
    """A writer for :func:`~mlcore.io.atomic_write` that ``torch.save``s ``obj``."""

    def write(fh: Any) -> None:
        torch.save(obj, fh)

    return write


def compute_stats(features: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
    """Per-column mean and std (std 0 -> 1) of the training samples, as ``stats.json`` holds them."""
    f = features.double()
    t = targets.double()
    fs = f.std(dim=0, unbiased=False)
    ts = t.std(dim=0, unbiased=False)
    return {
        "feature_names": list(FEATURES),
        "target_names": list(TARGETS),
        "feature_mean": f.mean(dim=0).tolist(),
        "feature_std": torch.where(fs > 0, fs, torch.ones_like(fs)).tolist(),
        "target_mean": t.mean(dim=0).tolist(),
        "target_std": torch.where(ts > 0, ts, torch.ones_like(ts)).tolist(),
        "num_samples": int(f.shape[0]),
    }


def read_stats(path: str | Path) -> dict[str, Any]:
    """Read a ``stats.json`` (a one-line DataError when missing or incomplete)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} does not exist (it is written by `mlcore data generate printer_layers`)")
    stats = json.loads(p.read_text())
    for key in ("feature_mean", "feature_std", "target_mean", "target_std"):
        if key not in stats:
            raise DataError(f"{p}: missing {key!r}")
    return dict(stats)
