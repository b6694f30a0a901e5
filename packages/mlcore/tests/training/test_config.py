"""Tests of mlcore.training.config: absurd numbers are one-line ConfigErrors at config time."""

from __future__ import annotations

from typing import Any

import pytest

from mlcore.config import structure
from mlcore.errors import ConfigError
from mlcore.registry import Registry
from mlcore.training.checkpoint import load_checkpoint
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


# --------------------------------------------------------------------------- configurable callbacks

ES = {"name": "early_stopping", "patience": 2, "monitor": "train_loss", "mode": "max"}


def test_callbacks_are_names_or_tables_and_round_trip_through_toml(test_registry: Registry) -> None:
    import tomllib

    from mlcore.config import apply_overrides, dumps_toml, unstructure

    cfg = structure(TrainerConfig, {"callbacks": ["lr_warmup_log", ES]}, where="trainer.")
    assert cfg.callbacks == ["lr_warmup_log", ES]
    text = dumps_toml({"trainer": unstructure(cfg)})
    assert structure(TrainerConfig, tomllib.loads(text)["trainer"], where="trainer.") == cfg
    # --set replaces the list, tables written inline
    data = apply_overrides({}, ['trainer.callbacks=["grad_histograms", {name = "early_stopping", patience = 3}]'])
    cfg = structure(TrainerConfig, data["trainer"], where="trainer.")
    assert cfg.callbacks == ["grad_histograms", {"name": "early_stopping", "patience": 3}]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"name": "early_stopping", "patiense": 2},
            r"^unknown key 'trainer\.callbacks\.early_stopping\.patiense'; did you mean 'patience'\?",
        ),
        ({"name": "early_stopping", "patience": 0}, r"^trainer\.callbacks\.early_stopping\.patience=0 is out of range"),
        ({"name": "early_stopping", "mode": "up"}, r"^trainer\.callbacks\.early_stopping\.mode='up' is not allowed"),
        (
            {"name": "lr_warmup_log", "every": 2},
            r"^trainer\.callbacks\.lr_warmup_log: callback 'lr_warmup_log' takes no options \(got every\)$",
        ),
        ({"name": "early_stoping", "patience": 2}, r"^trainer\.callbacks: no callback named 'early_stoping'.*did you"),
        ({"patience": 2}, r"^trainer\.callbacks\[0\]=\{'patience': 2\} needs a name = \"<callback>\" entry$"),
        ("", r"^trainer\.callbacks\[0\]='' must be a callback name or a table with a name$"),
    ],
)
def test_callback_table_errors_are_one_line(test_registry: Registry, entry: Any, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as exc:
        structure(TrainerConfig, {"callbacks": [entry]}, where="trainer.")
    assert "\n" not in str(exc.value)


def test_a_callback_named_twice_is_refused(test_registry: Registry) -> None:
    with pytest.raises(ConfigError, match=r"names 'early_stopping' twice"):
        structure(TrainerConfig, {"callbacks": ["early_stopping", ES]}, where="trainer.")


def test_configured_callback_changes_training(fit_tiny: Any) -> None:
    # train loss falls every epoch: with mode=max it never improves after epoch 1, so patience 2 stops at 3
    result, _, run_dir = fit_tiny(epochs=10, callbacks=[ES])
    assert result.stopped_reason == "early_stopping" and result.epochs_run == 3
    states = load_checkpoint(run_dir / "checkpoints" / "last.pt")["callbacks"]
    assert states["early_stopping"]["wait"] == 2
