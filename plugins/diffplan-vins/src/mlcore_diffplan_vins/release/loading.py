"""``load_pretrained``: a released model, ready for inference, from a release directory or archive.

Never touches the network. The source is, in order: the ``source`` argument, the environment
variable ``MLCORE_PRETRAINED``, ``./pretrained_models`` (or ``./pretrained_models.tar.gz`` when the
directory does not exist). A source may be a release directory, the run directory of the
``release`` pipeline (which holds ``pretrained_models/``) or a ``.tar.gz`` archive of a release.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import attrs

from mlcore.errors import CheckpointError, DataError, MlcoreError

__all__ = ["ENV_VAR", "Pretrained", "default_source", "load_pretrained", "release_root"]

#: The environment variable naming the default source of :func:`load_pretrained`.
ENV_VAR = "MLCORE_PRETRAINED"
_DEFAULT = "pretrained_models"


@attrs.define
class Pretrained:
    """A loaded released model.

    Attributes:
        name: its release name (``VIN_maze15``).
        model: the network in ``eval()`` mode on the requested device.
        config: the training run's config (the ``config.toml`` document).
        info: the ``<name>_info.json`` content (algorithm, accuracies, sizes, notes...).
        checkpoint: the checkpoint dict (weights and meta).
        source: where it was loaded from (the model directory, or ``archive.tar.gz:member``).
    """

    name: str
    model: Any
    config: dict[str, Any]
    info: dict[str, Any]
    checkpoint: dict[str, Any]
    source: str


def default_source() -> Path:
    """``$MLCORE_PRETRAINED``, else ``./pretrained_models`` (or its ``.tar.gz`` when only that exists)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    here = Path(_DEFAULT)
    archive = Path(f"{_DEFAULT}.tar.gz")
    return archive if not here.exists() and archive.is_file() else here


def is_archive(path: Path) -> bool:
    """Whether ``path`` names a tar archive (by its name: ``.tar.gz``, ``.tgz``, ``.tar``)."""
    return path.name.endswith((".tar.gz", ".tgz", ".tar"))


def release_root(path: str | Path) -> Path:
    """The release directory at ``path``: ``path`` itself or its ``pretrained_models/``; DataError if neither."""
    from mlcore_diffplan_vins.release.layout import released_models

    p = Path(path)
    if not p.exists():
        raise DataError(
            f"pretrained models not found: {p} (pass source=..., set {ENV_VAR}, or build a release with "
            "`mlcore run --plugin diffplan-vins --pipeline release`)"
        )
    if not p.is_dir():
        raise DataError(f"{p}: not a release directory or a .tar.gz archive")
    inner = p / _DEFAULT
    if not released_models(p) and inner.is_dir():
        return inner
    return p


def load_pretrained(name: str, source: str | Path | None = None, *, device: Any = "cpu") -> Pretrained:
    """Load the released model ``name`` (``"VIN_maze15"``) in ``eval()`` mode with its config and info.

    ``source``: a release directory, a release run directory or a ``.tar.gz`` archive (default:
    :func:`default_source`). Errors are one line: an unknown name lists the released ones; a missing
    source or archive names the path; a corrupt checkpoint, or one holding another model, says so.
    """
    src = Path(source) if source is not None else default_source()
    if is_archive(src):
        from mlcore_diffplan_vins.release.archive import extract_release

        if not src.is_file():
            raise DataError(f"release archive not found: {src}")
        with tempfile.TemporaryDirectory(prefix="mlcore-pretrained-") as tmp:
            root = extract_release(src, tmp)
            try:
                loaded = _load_from(root, name, device)
            except MlcoreError as exc:  # name the archive, not the temporary directory
                raise type(exc)(str(exc).replace(str(root), f"{src}:{root.name}")) from None
            loaded.source = f"{src}:{root.name}/{Path(loaded.source).relative_to(root)}"
            return loaded
    return _load_from(release_root(src), name, device)


def _load_from(root: Path, name: str, device: Any) -> Pretrained:
    from mlcore.config import load_file
    from mlcore.training.checkpoint import build_model, load_checkpoint
    from mlcore_diffplan_vins.release.layout import (
        CHECKPOINT,
        check_checkpoint_release,
        info_path,
        read_info,
        released_models,
    )

    models = released_models(root)
    if name not in models:
        listed = ", ".join(models) or "none"
        raise DataError(f"no released model {name!r} in {root} (released: {listed})")
    directory = models[name]
    info = read_info(info_path(directory, name))
    path = directory / CHECKPOINT
    ckpt = load_checkpoint(path)
    check_checkpoint_release(ckpt, name, str(path))
    expected = info.get("model")
    try:
        model = build_model(ckpt, expect=expected if isinstance(expected, str) else None, device=device)
    except CheckpointError:
        raise
    except MlcoreError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    config = load_file(directory / "config.toml") if (directory / "config.toml").exists() else {}
    return Pretrained(name=name, model=model, config=config, info=info, checkpoint=ckpt, source=str(directory))
