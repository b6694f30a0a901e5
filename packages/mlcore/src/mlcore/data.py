"""The dataset contract: :class:`DataModule`.

A data module owns one data set: it generates or loads it (``setup``), splits it, hands out
torch datasets whose items are ``(inputs, targets)`` (tensors, or dicts/tuples of tensors),
writes its files for ``mlcore data generate``, tells the model its sizes (``dimensions``), and
keeps the statistics a model needs at inference time (normalisation) in ``state_dict()`` so
checkpoints are self-contained.

Two config names are conventions the core relies on: ``num_samples`` (how many items; ``mlcore
data generate NAME -n N`` sets it) and ``seed`` (``--seed`` of ``mlcore data generate`` sets it).
A dataset's ``seed`` is its own: the run's ``--seed`` (``[run] seed``) seeds the model's initial
weights, the data order and dropout, not the data, so a new ``--seed`` retrains on the same data
and ``--set dataset.seed=1`` draws new data.

Example::

    import attrs, torch
    from torch.utils.data import TensorDataset
    from mlcore.data import DataModule

    @attrs.define
    class SineDataConfig:
        num_samples: int = 512
        seed: int = 0

    class SineData(DataModule):
        def setup(self):
            g = torch.Generator().manual_seed(self.config.seed)
            x = torch.rand(self.config.num_samples, 1, generator=g) * 6.28
            self._full = TensorDataset(x, torch.sin(x))
            self._train, self._val = self.split(self._full, [0.8, 0.2])

        def train_set(self):
            return self._train

        def val_set(self):
            return self._val
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlcore.errors import DataError

if TYPE_CHECKING:
    from torch.utils.data import Dataset


_D = TypeVar("_D", bound="DataModule")


class DataModule:
    """Base class for dataset components; subclasses implement at least ``setup`` and ``train_set``."""

    #: Optional collate function for the trainer's DataLoader (``None`` = torch default).
    collate_fn: Any = None

    def __init__(self, config: Any = None) -> None:
        self.config = config
        self._is_setup = False

    # -- lifecycle -------------------------------------------------------------
    def setup(self) -> None:
        """Load or generate the data. Called once by :meth:`prepare`; may be slow."""

    def prepare(self: _D) -> _D:
        """Run :meth:`setup` once (idempotent) and return ``self``."""
        if not self._is_setup:
            self.setup()
            self._is_setup = True
        return self

    # -- splits ----------------------------------------------------------------
    def train_set(self) -> Dataset[Any]:
        """The training split."""
        raise NotImplementedError(f"{type(self).__name__} does not define train_set()")

    def val_set(self) -> Dataset[Any] | None:
        """The validation split, or ``None``."""
        return None

    def test_set(self) -> Dataset[Any] | None:
        """The held-out test split, or ``None`` (evaluators then fall back to ``val_set``)."""
        return None

    def eval_set(self) -> Dataset[Any]:
        """The split evaluators use: test, else validation, else training."""
        for split in (self.test_set(), self.val_set()):
            if split is not None:
                return split
        return self.train_set()

    def dimensions(self) -> dict[str, int]:
        """Sizes the model must agree with, by the model config's field names (e.g. ``{"window": 16}``).

        A :class:`~mlcore.pipelines.RecipePipeline` copies them into the ``[model]`` table before
        building the model, so each size is configured once, in the dataset's table. Default: none.
        """
        return {}

    # -- files and state ---------------------------------------------------------
    def generate(self, out_dir: Path) -> list[Path]:
        """Write this data set's files under ``out_dir`` and return their paths."""
        raise DataError(f"{type(self).__name__} cannot generate files (it has no generator)")

    def state_dict(self) -> dict[str, Any]:
        """What inference needs besides the weights (e.g. normalisation mean/std), as plain data or tensors."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (called before ``setup`` when rebuilding from a checkpoint)."""

    @staticmethod
    def split(dataset: Dataset[Any], fractions: list[float], seed: int = 0) -> list[Any]:
        """Split a dataset by fractions with a seeded permutation (deterministic)."""
        import torch
        from torch.utils.data import random_split

        return list(random_split(dataset, fractions, generator=torch.Generator().manual_seed(seed)))
