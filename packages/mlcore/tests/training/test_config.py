"""Tests of mlcore.training.config: absurd numbers are one-line ConfigErrors at config time."""

from __future__ import annotations

import pytest

from mlcore.config import structure
from mlcore.errors import ConfigError
from mlcore.training.config import TrainerConfig, usable_cpus


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"lr": 1e308}, r"^trainer\.lr=1e\+308 is out of range \(allowed: \(0\.0, 100\.0\]\)$"),
        ({"lr": float("inf")}, r"^trainer\.lr=inf is out of range"),
        ({"lr": float("nan")}, r"^trainer\.lr=nan is out of range"),
        ({"lr": 0.0}, r"^trainer\.lr=0\.0 is out of range"),
        ({"weight_decay": 1e300}, r"^trainer\.weight_decay=1e\+300 is out of range \(allowed: \[0\.0, 100\.0\]\)$"),
        ({"grad_clip": float("inf")}, r"^trainer\.grad_clip=inf is out of range"),
        ({"max_time_minutes": -1.0}, r"^trainer\.max_time_minutes=-1\.0 is out of range"),
        ({"lr": 1e-3, "min_lr": 0.1}, r"^trainer\.min_lr=0\.1 is above lr=0\.001 \(allowed: min_lr <= lr\)$"),
    ],
)
def test_absurd_numbers_are_one_line_config_errors(values: dict[str, float], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as exc:
        structure(TrainerConfig, values, where="trainer.")
    assert "\n" not in str(exc.value)


def test_num_workers_is_bounded_by_the_usable_cpus() -> None:
    cpus = usable_cpus()
    assert structure(TrainerConfig, {"num_workers": cpus}, where="trainer.").num_workers == cpus
    with pytest.raises(ConfigError) as exc:
        structure(TrainerConfig, {"num_workers": 100_000}, where="trainer.")
    assert str(exc.value) == (
        f"trainer.num_workers=100000 is more than the {cpus} CPUs this process may use (allowed: 0..{cpus})"
    )
    with pytest.raises(ConfigError, match=r"^trainer\.num_workers=-1 is out of range"):
        structure(TrainerConfig, {"num_workers": -1}, where="trainer.")


def test_largest_sensible_values_are_accepted() -> None:
    cfg = structure(TrainerConfig, {"lr": 100.0, "weight_decay": 100.0, "min_lr": 100.0}, where="trainer.")
    assert (cfg.lr, cfg.weight_decay, cfg.min_lr) == (100.0, 100.0, 100.0)
