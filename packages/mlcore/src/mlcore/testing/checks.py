"""The conformance checks as plain functions: usable from any test runner or script, no pytest needed.

Like stable-baselines3's ``check_env``: each public ``check_*`` function takes built components
(and a real batch), returns quietly or a measured value when they honour the mlcore contract,
and raises :class:`ContractError` with a message that says what to fix otherwise::

    from mlcore.testing import check_model_forward, first_batch
    from mlcore.testing.toys import ToyData, ToyNet

    data = ToyData().prepare()
    check_model_forward(ToyNet(), first_batch(data))

The loss is computed exactly as the trainer computes it (:mod:`mlcore.training.batches`:
``model.compute_loss(batch, loss_fn)`` when the model defines it, else ``loss_fn(model(inputs),
targets)``). :class:`mlcore.testing.PluginContract` turns these checks into pytest tests for
every component of a plugin; :mod:`mlcore.testing.component_checks` holds the checks of losses,
evaluators, trainers, pipelines, trackers and callbacks.
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcore.errors import MlcoreError
from mlcore.testing._tree import all_finite, as_mapping, outputs_close, same, tensors

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mlcore.data import DataModule

__all__ = [
    "ContractError",
    "check_batch_independence",
    "check_checkpoint_roundtrip",
    "check_dataset",
    "check_dataset_seed",
    "check_example_input",
    "check_model_forward",
    "check_model_loss",
    "check_model_trains",
    "check_output_shape",
    "first_batch",
    "model_loss",
    "train_steps",
]


class ContractError(AssertionError):
    """A component does not honour the mlcore contract; the message says what and how to fix it."""


# --------------------------------------------------------------------------- building blocks


def first_batch(data: DataModule, batch_size: int = 8) -> Any:
    """The first collated batch of ``data.train_set()`` (no shuffling), as the trainer would see it."""
    from torch.utils.data import DataLoader

    loader = DataLoader(data.train_set(), batch_size=batch_size, shuffle=False, collate_fn=data.collate_fn)
    try:
        return next(iter(loader))
    except StopIteration:
        raise ContractError(f"{type(data).__name__}.train_set() yields no batch") from None


def _split(batch: Any, who: str) -> tuple[Any, Any]:
    """``(inputs, targets)`` of a batch, as the trainer splits it."""
    from mlcore.training.batches import split_inputs_targets

    try:
        return split_inputs_targets(batch, who)
    except MlcoreError as exc:
        raise ContractError(str(exc)) from None


def model_loss(model: nn.Module, batch: Any, loss_fn: Callable[..., Any] | None) -> torch.Tensor:
    """The scalar loss the trainer would optimise on ``batch`` (see :class:`mlcore.training.batches.LossModule`)."""
    from mlcore.training.batches import LossModule, split_loss

    try:
        loss, _ = split_loss(LossModule(model, loss_fn)(batch))
    except MlcoreError as exc:
        raise ContractError(f"{type(model).__name__}: {exc}") from None
    return loss


def _eval_forward(model: nn.Module, inputs: Any, seed: int = 0) -> Any:
    import torch

    model.eval()
    torch.manual_seed(seed)
    with torch.no_grad():
        return model(inputs)


def train_steps(
    model: nn.Module,
    batch: Any,
    loss_fn: Callable[..., Any] | None,
    *,
    steps: int = 20,
    lr: float = 3e-3,
    seed: int = 0,
) -> None:
    """``steps`` Adam steps on one batch (seeded); fails if the loss becomes non-finite."""
    __tracebackhide__ = True
    import torch

    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for step in range(steps):
        torch.manual_seed(seed + 1 + step)
        optimizer.zero_grad(set_to_none=True)
        loss = model_loss(model, batch, loss_fn)
        if not bool(torch.isfinite(loss.detach()).all()):
            raise ContractError(f"{type(model).__name__}: the loss became non-finite at training step {step + 1}")
        loss.backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


# --------------------------------------------------------------------------- data


def check_dataset(data: DataModule, rebuild: Callable[[], DataModule] | None = None, *, batch_size: int = 4) -> None:
    """Check a data module: it prepares, has a non-empty training split of ``(inputs, targets)``
    items that collate, and a ``state_dict`` that survives ``torch.load(weights_only=True)`` and
    ``load_state_dict`` on a fresh instance made by ``rebuild``."""
    __tracebackhide__ = True
    import torch

    from mlcore.data import DataModule
    from mlcore.training.checkpoint import plain

    name = type(data).__name__
    if not isinstance(data, DataModule):
        raise ContractError(f"{name} must derive from mlcore.data.DataModule")
    data.prepare()
    train = data.train_set()
    try:
        n = len(train)  # type: ignore[arg-type]
    except TypeError:
        raise ContractError(f"{name}.train_set() must be a sized torch Dataset") from None
    if n == 0:
        raise ContractError(f"{name}.train_set() is empty")
    item = train[0]
    inputs, targets = _split(item, f"{name}.train_set()[0]")
    if not tensors(inputs) or not tensors(targets):
        raise ContractError(f"{name}: items must hold tensors in both inputs and targets")
    if not all_finite(item):
        raise ContractError(f"{name}.train_set()[0] holds NaN or inf")
    _split(first_batch(data, batch_size), name)
    state = data.state_dict()
    if not isinstance(state, Mapping):
        raise ContractError(f"{name}.state_dict() must return a dict, got {type(state).__name__}")
    buf = io.BytesIO()
    try:
        torch.save(plain(dict(state), "data_state"), buf)
        buf.seek(0)
        loaded = torch.load(buf, weights_only=True)
    except Exception as exc:
        raise ContractError(f"{name}.state_dict() cannot be stored in a checkpoint: {exc}") from None
    if rebuild is not None:
        fresh = rebuild()
        fresh.load_state_dict(loaded)
        fresh.prepare()
        if not same(plain(dict(fresh.state_dict())), plain(dict(state))):
            raise ContractError(f"{name}: state_dict() differs after load_state_dict() + prepare() on a fresh instance")


def _first_items(build: Callable[[int], DataModule], seed: int, global_seed: int, count: int) -> tuple[str, list[Any]]:
    import random

    import numpy as np
    import torch

    random.seed(global_seed)
    np.random.seed(global_seed)
    torch.manual_seed(global_seed)
    data = build(seed).prepare()
    train = data.train_set()
    return type(data).__name__, [train[i] for i in range(min(count, len(train)))]  # type: ignore[arg-type]


def check_dataset_seed(build: Callable[[int], DataModule], seed: int = 0, *, items: int = 4) -> None:
    """``build(seed)`` twice gives the same first ``items`` training items, ``build(seed + 1)`` different ones.

    ``build`` makes the data module with its config's ``seed`` set to the argument. The global
    RNGs (``random``, NumPy, torch) are seeded differently for the two same-seed builds, so a data
    module that draws from them instead of its own seed fails too; they are restored afterwards.
    """
    __tracebackhide__ = True
    from mlcore.seeding import rng_state, set_rng_state

    saved = rng_state()
    try:
        name, first = _first_items(build, seed, 0, items)
        _, again = _first_items(build, seed, 1, items)
        _, other = _first_items(build, seed + 1, 0, items)
    finally:
        set_rng_state(saved)
    if not first:
        raise ContractError(f"{name}.train_set() is empty")
    if not same(first, again):
        raise ContractError(
            f"{name}: two builds with seed={seed} give different training items; draw every random number "
            "from a generator seeded by config.seed (torch.Generator().manual_seed(seed), "
            "numpy.random.default_rng(seed)), not from the global RNGs"
        )
    if same(first, other):
        raise ContractError(
            f"{name}: seed={seed} and seed={seed + 1} give the same first {len(first)} training items; "
            "the data must depend on config.seed"
        )


# --------------------------------------------------------------------------- models


def check_model_forward(model: nn.Module, batch: Any) -> Any:
    """Forward the batch's inputs in eval mode; the outputs must hold finite tensors. Returns them."""
    __tracebackhide__ = True
    from torch import nn

    name = type(model).__name__
    if not isinstance(model, nn.Module):
        raise ContractError(f"{name} must be a torch.nn.Module")
    if not any(p.requires_grad for p in model.parameters()):
        raise ContractError(f"{name} has no trainable parameters")
    inputs, _ = _split(batch, name)
    out = _eval_forward(model, inputs)
    if not tensors(out):
        raise ContractError(f"{name}.forward returned no tensor (got {type(out).__name__})")
    if not all_finite(out):
        raise ContractError(f"{name}.forward returned NaN or inf on a real batch")
    return out


def check_output_shape(model: nn.Module, batch: Any) -> bool:
    """The output has the target's shape, so ``loss_fn(output, target)`` compares matching values.

    Floating-point targets must match exactly (an output of ``(N,)`` against targets of
    ``(N, 1)`` would broadcast to ``(N, N)`` through ``mse`` and train on the wrong pairs);
    integer targets (class labels) must match in the batch dimension. Models that pair outputs
    with targets themselves (``compute_loss``), and outputs or targets that are not single
    tensors, are not checked: returns ``False`` then, ``True`` when checked.
    """
    __tracebackhide__ = True
    import torch

    name = type(model).__name__
    if callable(getattr(model, "compute_loss", None)):
        return False
    inputs, targets = _split(batch, name)
    out = _eval_forward(model, inputs)
    if not (isinstance(out, torch.Tensor) and isinstance(targets, torch.Tensor)):
        return False
    got, want = tuple(out.shape), tuple(targets.shape)
    if targets.is_floating_point() or targets.is_complex():
        if got != want:
            try:
                joint = f"broadcasts them to {tuple(torch.broadcast_shapes(out.shape, targets.shape))}"
            except RuntimeError:
                joint = "cannot pair them"  # a loss would fail loudly; the shapes still differ
            raise ContractError(
                f"{name}: output shape {got} differs from target shape {want}; an elementwise loss {joint} "
                "(return the target's shape from forward, or pair them in compute_loss)"
            )
    elif not got or not want or got[0] != want[0]:
        raise ContractError(f"{name}: output shape {got} and label shape {want} differ in the batch dimension")
    return True


def check_batch_independence(model: nn.Module, batch: Any, *, seed: int = 0) -> bool:
    """In eval mode, changing one sample's inputs leaves the other samples' outputs unchanged.

    Sample 0 of every input tensor is changed (floating point: Gaussian noise at the tensor's
    scale; otherwise: set to the last sample's values); the outputs of samples 1.. must stay
    the same. Catches models that mix samples (batch statistics at inference, attention or a
    recurrent layer over the batch dimension, ``batch_first`` mix-ups). Returns ``False`` when
    nothing could be changed (a batch of one, identical samples), ``True`` when checked.
    """
    __tracebackhide__ = True
    import torch

    from mlcore.training.batches import batch_size_of

    name = type(model).__name__
    inputs, _ = _split(batch, name)
    n = batch_size_of(inputs)
    before = _eval_forward(model, inputs, seed)
    changed = copy.deepcopy(inputs)
    g = torch.Generator().manual_seed(seed)
    for t in tensors(changed):
        if t.dim() == 0 or t.shape[0] != n:
            continue
        if t.is_floating_point():
            scale = float(t.detach().float().std()) if t.numel() > 1 else 1.0
            noise = torch.randn(t[0].shape, generator=g).to(t.dtype)
            t[0] = t[0] + (scale if math.isfinite(scale) and scale > 0 else 1.0) * noise
        else:
            t[0] = t[-1]
    if n < 2 or same(changed, inputs):
        return False
    after = _eval_forward(model, changed, seed)
    for i, (a, b) in enumerate(zip(tensors(before), tensors(after), strict=False)):
        if a.dim() == 0 or a.shape[0] != n or b.shape != a.shape:
            continue
        moved = [j for j in range(1, n) if not torch.allclose(a[j], b[j], rtol=1e-4, atol=1e-6, equal_nan=True)]
        if moved:
            which = "the output" if len(tensors(before)) == 1 else f"output tensor {i}"
            raise ContractError(
                f"{name} mixes samples across the batch: changing sample 0's inputs changed {which} of "
                f"samples {moved} (eval mode, batch of {n}); each sample's output must depend on its own "
                "inputs only (check batch statistics in eval mode, batch_first, reductions over dim 0)"
            )
    return True


def check_model_loss(model: nn.Module, batch: Any, loss_fn: Callable[..., Any] | None) -> float:
    """The training loss on a batch is a finite scalar whose gradients are finite and reach the parameters."""
    __tracebackhide__ = True
    name = type(model).__name__
    model.train()
    model.zero_grad(set_to_none=True)
    loss = model_loss(model, batch, loss_fn)
    value = float(loss.detach())
    if not math.isfinite(value):
        raise ContractError(f"{name}: the loss is not finite ({value}) on a real batch")
    if not loss.requires_grad:
        raise ContractError(f"{name}: the loss does not require grad (is the output detached?)")
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    if not grads:
        raise ContractError(f"{name}: no parameter received a gradient from the loss")
    if not all(bool(g.isfinite().all()) for g in grads):
        raise ContractError(f"{name}: the loss produced NaN or inf gradients")
    model.zero_grad(set_to_none=True)
    return value


def check_model_trains(
    model: nn.Module,
    batch: Any,
    loss_fn: Callable[..., Any] | None,
    *,
    steps: int = 20,
    lr: float = 3e-3,
    min_improvement: float = 0.01,
    seed: int = 0,
) -> tuple[float, float]:
    """``steps`` Adam steps on one batch must lower the (train-mode) loss by ``min_improvement`` (relative).

    Returns ``(loss_before, loss_after)``.
    """
    __tracebackhide__ = True
    import torch

    name = type(model).__name__

    def measure() -> float:
        torch.manual_seed(seed)  # same dropout masks for both measurements
        with torch.no_grad():
            return float(model_loss(model, batch, loss_fn).detach())

    model.train()
    before = measure()
    train_steps(model, batch, loss_fn, steps=steps, lr=lr, seed=seed)
    after = measure()
    if not (math.isfinite(before) and math.isfinite(after)):
        raise ContractError(f"{name}: the loss is not finite (before {before}, after {after})")
    if not after < before - min_improvement * abs(before):
        raise ContractError(
            f"{name} does not learn: {steps} Adam steps (lr {lr}) on one batch took the loss from "
            f"{before:.6g} to {after:.6g} (needed a {min_improvement:.0%} decrease)"
        )
    return before, after


def check_checkpoint_roundtrip(
    model: nn.Module,
    batch: Any,
    *,
    path: str | Path,
    plugin: str,
    model_name: str,
    model_config: Any,
    data: DataModule | None = None,
    dataset_name: str | None = None,
    dataset_config: Any = None,
) -> None:
    """Save with :func:`~mlcore.training.checkpoint.save_checkpoint`, load, :func:`build_model` and compare outputs."""
    __tracebackhide__ = True
    import torch

    from mlcore.training.checkpoint import build_model, load_checkpoint, make_meta, plain, save_checkpoint

    inputs, _ = _split(batch, type(model).__name__)
    expected = _eval_forward(model, inputs)
    components: dict[str, tuple[str, Any]] = {"model": (model_name, model_config)}
    if data is not None and dataset_name is not None:
        components["dataset"] = (dataset_name, dataset_config)
    meta = make_meta(plugin=plugin, components=components, data=data)
    save_checkpoint(Path(path), model=model, meta=meta)
    ckpt = load_checkpoint(Path(path))
    torch.manual_seed(12345)  # a rebuilt model that ignored the weights would differ
    rebuilt = build_model(ckpt, expect=model_name)
    if type(rebuilt) is not type(model):
        raise ContractError(f"checkpoint rebuilt a {type(rebuilt).__name__}, expected {type(model).__name__}")
    if not outputs_close(expected, _eval_forward(rebuilt, inputs)):
        raise ContractError(f"{type(model).__name__}: outputs differ after a checkpoint round trip")
    if data is not None and not same(ckpt["meta"].get("data_state", {}), plain(dict(data.state_dict()))):
        raise ContractError(f"{type(data).__name__}: the data state stored in the checkpoint differs from state_dict()")


def check_example_input(model: nn.Module, batch: Any | None = None) -> None:
    """``example_input(b)`` works for b = 1 and 3 and matches the real inputs' shapes and dtypes."""
    __tracebackhide__ = True
    import torch

    name = type(model).__name__
    factory = getattr(model, "example_input", None)
    if not callable(factory):
        raise ContractError(f"{name} defines no example_input(batch_size)")
    model.eval()
    structured = False
    for b in (1, 3):
        example = factory(b)
        found = tensors(example)
        # a structured batch (torch-geometric Batch...) counts its samples itself; its tensors are per node
        structured = as_mapping(example) is not None and isinstance(getattr(example, "batch_size", None), int)
        if structured:
            if example.batch_size != b:
                raise ContractError(f"{name}.example_input({b}) has batch_size {example.batch_size}, not {b}")
            with torch.no_grad():
                model(example)
            continue
        if not found or not isinstance(example, torch.Tensor | tuple):
            raise ContractError(f"{name}.example_input({b}) must return a tensor or a tuple of tensors")
        if any(t.dim() == 0 or t.shape[0] != b for t in found):
            raise ContractError(f"{name}.example_input({b}) must have batch size {b} in dim 0")
        args = example if isinstance(example, tuple) else (example,)
        with torch.no_grad():
            out = model(*args)
        if any(t.dim() > 0 and t.shape[0] != b for t in tensors(out)):
            raise ContractError(f"{name}: output of example_input({b}) does not keep the batch size")
    if batch is not None and not structured:
        inputs, _ = _split(batch, name)
        real, example = tensors(inputs), tensors(factory(2))
        if len(real) == len(example):
            for r, e in zip(real, example, strict=True):
                if r.shape[1:] != e.shape[1:] or r.dtype != e.dtype:
                    raise ContractError(
                        f"{name}.example_input gives {tuple(e.shape[1:])}/{e.dtype} per sample, "
                        f"the data gives {tuple(r.shape[1:])}/{r.dtype}"
                    )
