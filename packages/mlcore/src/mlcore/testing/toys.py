"""A toy data module and a toy model for tests: the core's own, the kit's, and a plugin's.

Like Lightning's ``demos/boring_classes.py``: small, seeded, CPU-fast components that honour the
mlcore contract, so a test can train, checkpoint, evaluate or export without defining its own::

    from mlcore.testing.toys import ToyData, ToyDataConfig, ToyNet, ToyNetConfig

    data = ToyData(ToyDataConfig(num_samples=64)).prepare()     # y = sin(x @ W), 2 -> 1
    model = ToyNet(ToyNetConfig(in_features=2, out_features=1))

    linear = ToyData(ToyDataConfig(target="linear", in_features=3, out_features=2, test_fraction=0.4))
    blobs = ToyData(ToyDataConfig(target="blobs", out_features=3))   # 3 classes, integer labels

Both are importable by path (``mlcore.testing.toys:ToyNet``), so a test plugin's
:class:`~mlcore.components.ComponentSpec` can register them and checkpoints rebuild them.
Subclass them to plant a bug for a test (see ``packages/mlcore/tests/testing``).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from mlcore.config import in_range, one_of
from mlcore.data import DataModule

__all__ = ["ToyData", "ToyDataConfig", "ToyNet", "ToyNetConfig"]

#: blob centres lie on a circle of this radius in the first two input dimensions
BLOB_RADIUS = 4.0
#: standard deviation of the points around their blob centre
BLOB_SPREAD = 0.3


@attrs.define
class ToyDataConfig:
    """Config of :class:`ToyData`.

    Attributes:
        num_samples: number of ``(inputs, targets)`` items before splitting.
        in_features: size of each input vector ``x ~ N(0, I)``.
        out_features: size of each regression target, or the number of classes for ``blobs``.
        target: ``sine`` (y = sin(x @ W)), ``linear`` (y = x @ W; ``weight`` holds W) or
            ``blobs`` (integer labels of ``out_features`` well-separated Gaussian blobs).
        val_fraction, test_fraction: shares of the validation and test splits (0 = no split).
        dict_batches: items are ``{"x": inputs, "y": targets}`` instead of a pair.
        seed: seed of the data and of the split (same seed, same data).
    """

    num_samples: int = attrs.field(default=96, validator=in_range(1))
    in_features: int = attrs.field(default=2, validator=in_range(1))
    out_features: int = attrs.field(default=1, validator=in_range(1))
    target: str = attrs.field(default="sine", validator=one_of("sine", "linear", "blobs"))
    val_fraction: float = attrs.field(default=0.25, validator=in_range(0.0, 1.0, high_open=True))
    test_fraction: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0, high_open=True))
    dict_batches: bool = False
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                f"val_fraction={self.val_fraction} + test_fraction={self.test_fraction} leaves no training data"
            )
        if self.target == "blobs" and self.in_features < 2:
            raise ValueError(f"target='blobs' needs in_features >= 2, got {self.in_features}")


class _DictItems(Dataset):  # type: ignore[type-arg]
    """``(x, y)`` items of ``base`` as ``{"x": x, "y": y}``."""

    def __init__(self, base: Dataset) -> None:  # type: ignore[type-arg]
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x, y = self.base[i]
        return {"x": x, "y": y}


class ToyData(DataModule):
    """Seeded synthetic regression or classification data; see :class:`ToyDataConfig`.

    After :meth:`prepare`: ``weight`` is the ``(in_features, out_features)`` teacher matrix
    (``sine``/``linear``; the blob centres for ``blobs``), and ``mean`` the inputs' mean, the
    data state a checkpoint carries (``state_dict() == {"mean": ..., "n": num_samples}``).
    ``load_state_dict`` keeps what it was given in ``restored``.
    """

    config: ToyDataConfig

    def __init__(self, config: ToyDataConfig | None = None) -> None:
        super().__init__(config or ToyDataConfig())
        self.restored: dict[str, Any] | None = None
        self._train: Dataset[Any] = TensorDataset()
        self._held_out: dict[str, Dataset[Any]] = {}

    def generator(self) -> torch.Generator:
        """The generator every random draw of :meth:`setup` comes from, seeded by ``config.seed``."""
        return torch.Generator().manual_seed(self.config.seed)

    def make_arrays(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, targets)`` of all samples, drawn from ``g``; sets ``weight``."""
        cfg = self.config
        n, d = cfg.num_samples, cfg.in_features
        if cfg.target == "blobs":
            angles = torch.arange(cfg.out_features, dtype=torch.float32) * (2 * math.pi / cfg.out_features)
            centres = torch.zeros(cfg.out_features, d)
            centres[:, 0], centres[:, 1] = BLOB_RADIUS * angles.cos(), BLOB_RADIUS * angles.sin()
            self.weight = centres
            labels = torch.arange(n) % cfg.out_features
            return centres[labels] + BLOB_SPREAD * torch.randn(n, d, generator=g), labels
        self.weight = torch.randn(d, cfg.out_features, generator=g)
        x = torch.randn(n, d, generator=g)
        y = x @ self.weight
        return x, (torch.sin(y) if cfg.target == "sine" else y)

    def setup(self) -> None:
        """Generate the samples and split them, every draw from :meth:`generator`."""
        cfg = self.config
        g = self.generator()
        x, y = self.make_arrays(g)
        self.mean = x.mean(0)
        full: Dataset[Any] = TensorDataset(x, y)
        if cfg.dict_batches:
            full = _DictItems(full)
        names = [s for s, f in (("val", cfg.val_fraction), ("test", cfg.test_fraction)) if f > 0]
        fractions = [getattr(cfg, f"{s}_fraction") for s in names]
        split_seed = int(torch.randint(2**31 - 1, (), generator=g))
        self._train, *held_out = self.split(full, [1.0 - sum(fractions), *fractions], seed=split_seed)
        self._held_out = dict(zip(names, held_out, strict=True))

    def train_set(self) -> Dataset[Any]:
        """The training split."""
        return self.prepare()._train

    def val_set(self) -> Dataset[Any] | None:
        """The validation split (``None`` when ``val_fraction`` is 0)."""
        return self.prepare()._held_out.get("val")

    def test_set(self) -> Dataset[Any] | None:
        """The test split (``None`` when ``test_fraction`` is 0)."""
        return self.prepare()._held_out.get("test")

    def state_dict(self) -> dict[str, Any]:
        """The inputs' mean and the sample count."""
        return {"mean": self.prepare().mean, "n": self.config.num_samples}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Keep ``state`` in ``restored`` (the data is regenerated from the seed)."""
        self.restored = dict(state)


@attrs.define
class ToyNetConfig:
    """Config of :class:`ToyNet`."""

    in_features: int = attrs.field(default=2, validator=in_range(1))
    hidden: int = attrs.field(default=8, validator=in_range(1))
    out_features: int = attrs.field(default=1, validator=in_range(1))
    dropout: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0, high_open=True))


class ToyNet(nn.Module):
    """``in_features -> hidden -> out_features`` MLP: ``net = Linear, Tanh, Dropout, Linear``.

    Dropout (``config.dropout > 0``) makes training draw from the torch RNG, which tests of
    seeding and resume rely on. ``example_input`` makes it exportable.
    """

    def __init__(self, config: ToyNetConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or ToyNetConfig()
        self.net = nn.Sequential(
            nn.Linear(cfg.in_features, cfg.hidden),
            nn.Tanh(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_features) -> (N, out_features)``."""
        return self.net(x)  # type: ignore[no-any-return]

    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        """A random ``(batch_size, in_features)`` input (for export and the kit)."""
        return torch.randn(batch_size, self.config.in_features, generator=torch.Generator().manual_seed(0))
