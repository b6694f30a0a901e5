"""D4 group convolutions on the square grid, written by hand.

Why by hand: the reference planners use e2cnn/escnn, and neither installs with numpy 2 (escnn's
``lie_learn`` needs numpy < 2 and a Fortran build; e2cnn calls removed numpy APIs). On the pixel
grid the dihedral group D4 (4 rotations by 90°, 4 reflections) acts by exact permutations, so
its group convolutions (Cohen & Welling 2016) are plain ``conv2d`` calls with a kernel built
from rotated/reflected copies of a smaller learned kernel.

Conventions (every module of this package relies on them):

- A group element ``g = k + 4 f`` (``k`` in 0..3, ``f`` in 0..1) acts on an image as
  ``T_g x = rot90^k(flip^f(x))``: first a left-right mirror (last axis) if ``f``, then ``k``
  quarter turns counter-clockwise (:func:`transform`, ``torch.rot90`` on the last two axes).
- A *regular* feature field has 8 channels, one per group element; ``C`` fields are stored as
  ``C * 8`` channels, field-major (channel ``c * 8 + g``). ``T_h`` acts on it by moving the
  pixels and permuting the group channels: ``(T_h f)[g] = T_h(f[h^{-1} g])``
  (:func:`transform_regular`).
- Actions ``0..A-1`` are in counter-clockwise order starting at N (A = 4: N, W, S, E; A = 8:
  N, NW, W, SW, S, SE, E, NE), so ``T_g`` maps action ``a`` to
  ``(A/4) k + (-1)^f a (mod A)`` (:func:`action_permutation`).

The layers build their full kernel once per forward call with one gather (index tables are
precomputed buffers) and then run one ``conv2d``; :class:`LiftingConv` (trivial → regular),
:class:`GroupConv` (regular → regular), :func:`group_pool` (regular → trivial) and
:class:`ActionHead` (regular → action logits, a 1×1 equivariant map) are what the symmetric
planners use.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ORDER",
    "ActionHead",
    "GroupConv",
    "LiftingConv",
    "action_permutation",
    "compose",
    "group_pool",
    "inverse",
    "transform",
    "transform_actions",
    "transform_regular",
]

#: Order of D4.
ORDER = 8


def _parts(g: int) -> tuple[int, int]:
    return g % 4, g // 4


def compose(a: int, b: int) -> int:
    """Index of the product ``a b`` (apply ``b`` first): ``R^k1 F^f1 R^k2 F^f2 = R^(k1 ± k2) F^(f1+f2)``."""
    k1, f1 = _parts(a)
    k2, f2 = _parts(b)
    k = (k1 + (-k2 if f1 else k2)) % 4
    return k + 4 * ((f1 + f2) % 2)


def inverse(g: int) -> int:
    """Index of ``g^{-1}``."""
    return next(h for h in range(ORDER) if compose(g, h) == 0)


def transform(x: Tensor, g: int) -> Tensor:
    """``T_g x`` on the last two axes: mirror left-right if ``g >= 4``, then ``g % 4`` quarter turns CCW."""
    k, f = _parts(g)
    if f:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, k, dims=(-2, -1)) if k else x


def transform_regular(x: Tensor, g: int) -> Tensor:
    """``T_g`` on regular fields ``[B, C * 8, H, W]``: move the pixels, permute each field's group channels."""
    b, c8, h, w = x.shape
    perm = [compose(inverse(g), e) for e in range(ORDER)]  # new channel e holds old channel g^{-1} e
    fields = x.reshape(b, c8 // ORDER, ORDER, h, w)[:, :, perm]
    return transform(fields.reshape(b, c8, h, w), g)


def action_permutation(g: int, num_actions: int) -> list[int]:
    """Where ``T_g`` sends each action: ``perm[a]`` is the image of action ``a`` (A = 4 or 8, CCW from N)."""
    if num_actions not in (4, 8):
        raise ValueError(f"num_actions={num_actions} is not allowed (allowed: 4, 8)")
    k, f = _parts(g)
    step = num_actions // 4
    return [(step * k + (-a if f else a)) % num_actions for a in range(num_actions)]


def transform_actions(logits: Tensor, g: int) -> Tensor:
    """``T_g`` on per-cell action maps ``[B, A, H, W]``: move the pixels and relabel the actions."""
    perm = action_permutation(g, logits.shape[1])
    out = torch.empty_like(logits)
    out[:, perm] = logits
    return transform(out, g)


def group_pool(x: Tensor, mode: str = "max") -> Tensor:
    """Regular fields ``[B, C * 8, H, W]`` → invariant fields ``[B, C, H, W]`` (max or mean over the group)."""
    b, c8, h, w = x.shape
    fields = x.reshape(b, c8 // ORDER, ORDER, h, w)
    if mode == "max":
        return fields.amax(dim=2)
    if mode == "mean":
        return fields.mean(dim=2)
    raise ValueError(f"mode={mode!r} is not allowed (allowed: max, mean)")


def _spatial_index(kernel_size: int) -> Tensor:
    """``[8, k*k]``: flat positions such that ``(T_g w).flatten() == w.flatten()[index[g]]``."""
    grid = torch.arange(kernel_size * kernel_size).reshape(kernel_size, kernel_size)
    return torch.stack([transform(grid, g).reshape(-1) for g in range(ORDER)])


def _init_uniform(weight: Tensor, fan_in: int) -> None:
    # the bound of nn.Conv2d's default init (kaiming_uniform with a = sqrt(5))
    bound = 1.0 / math.sqrt(fan_in)
    nn.init.uniform_(weight, -bound, bound)


class LiftingConv(nn.Module):
    """Trivial → regular D4 convolution: ``out[o, g] = x ⋆ T_g(w[o])`` (odd kernel, zero "same" padding).

    ``T_h x`` gives ``T_h`` of the output in the regular representation (:func:`transform_regular`).
    """

    _index: Tensor

    def __init__(self, in_channels: int, out_fields: int, kernel_size: int = 3, *, bias: bool = True) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size={kernel_size} must be odd (the group acts about the kernel centre)")
        self.in_channels, self.out_fields, self.kernel_size = in_channels, out_fields, kernel_size
        self.weight = nn.Parameter(torch.empty(out_fields, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_fields)) if bias else None
        _init_uniform(self.weight, in_channels * kernel_size * kernel_size)
        self.register_buffer("_index", _spatial_index(kernel_size), persistent=False)

    def full_weight(self) -> Tensor:
        """The ``[out_fields * 8, in_channels, k, k]`` kernel of the equivalent ``conv2d``."""
        o, i, k, _ = self.weight.shape
        w = self.weight.reshape(o, i, k * k)[:, :, self._index.reshape(-1)]  # [o, i, 8 * k * k]
        return w.reshape(o, i, ORDER, k, k).transpose(1, 2).reshape(o * ORDER, i, k, k)

    def full_bias(self) -> Tensor | None:
        """One bias per field, shared by its 8 group channels (required for equivariance)."""
        return None if self.bias is None else self.bias.repeat_interleave(ORDER)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in_channels, H, W]`` → ``[B, out_fields * 8, H, W]``."""
        return F.conv2d(x, self.full_weight(), self.full_bias(), padding=self.kernel_size // 2)


class GroupConv(nn.Module):
    """Regular → regular D4 convolution: ``out[o, g] = Σ_{i, g'} x[i, g'] ⋆ T_g(w[o, i, g^{-1} g'])``.

    The learned kernel ``w`` has ``in_fields * 8`` input channels; the full kernel
    (``[out_fields * 8, in_fields * 8, k, k]``) is one gather of it.
    """

    _index: Tensor

    def __init__(self, in_fields: int, out_fields: int, kernel_size: int = 3, *, bias: bool = False) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size={kernel_size} must be odd (the group acts about the kernel centre)")
        self.in_fields, self.out_fields, self.kernel_size = in_fields, out_fields, kernel_size
        self.weight = nn.Parameter(torch.empty(out_fields, in_fields, ORDER, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_fields)) if bias else None
        _init_uniform(self.weight, in_fields * ORDER * kernel_size * kernel_size)
        kk = kernel_size * kernel_size
        spatial = _spatial_index(kernel_size)  # [8, kk]
        # index[g, g', p]: flat position in w[o, i] (over (g'', y, x)) of T_g(w[o, i, g^{-1} g'])[p]
        rel = torch.tensor([[compose(inverse(g), e) for e in range(ORDER)] for g in range(ORDER)])
        index = rel[:, :, None] * kk + spatial[:, None, :]
        self.register_buffer("_index", index.reshape(-1), persistent=False)

    def full_weight(self) -> Tensor:
        """The ``[out_fields * 8, in_fields * 8, k, k]`` kernel of the equivalent ``conv2d``."""
        o, i, _, k, _ = self.weight.shape
        w = self.weight.reshape(o, i, ORDER * k * k)[:, :, self._index]  # [o, i, 8 (g), 8 (g'), k*k]
        return w.reshape(o, i, ORDER, ORDER, k, k).transpose(1, 2).reshape(o * ORDER, i * ORDER, k, k)

    def full_bias(self) -> Tensor | None:
        """One bias per field, shared by its 8 group channels (required for equivariance)."""
        return None if self.bias is None else self.bias.repeat_interleave(ORDER)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in_fields * 8, H, W]`` → ``[B, out_fields * 8, H, W]``."""
        return F.conv2d(x, self.full_weight(), self.full_bias(), padding=self.kernel_size // 2)


class ActionHead(nn.Module):
    """Regular fields → per-cell action logits, equivariant: ``T_g`` of the input relabels the actions.

    The only equivariant 1×1 maps from the regular representation to the permutation
    representation of the actions are ``logit[a] = Σ_{c, g} κ[c, g^{-1}·a] x[c, g]``: ``A`` free
    weights per input field. A bias would have to be equal for all actions, so there is none.
    """

    _index: Tensor

    def __init__(self, in_fields: int, num_actions: int) -> None:
        super().__init__()
        self.in_fields, self.num_actions = in_fields, num_actions
        self.weight = nn.Parameter(torch.empty(in_fields, num_actions))
        _init_uniform(self.weight, in_fields * ORDER)
        index = torch.tensor(
            [[action_permutation(inverse(g), num_actions)[a] for g in range(ORDER)] for a in range(num_actions)]
        )  # [A, 8]: kappa index of (a, g)
        self.register_buffer("_index", index, persistent=False)

    def full_weight(self) -> Tensor:
        """The ``[A, in_fields * 8, 1, 1]`` kernel of the equivalent 1×1 ``conv2d``."""
        w = self.weight[:, self._index]  # [C, A, 8]
        return w.permute(1, 0, 2).reshape(self.num_actions, self.in_fields * ORDER, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in_fields * 8, H, W]`` → ``[B, A, H, W]``."""
        return F.conv2d(x, self.full_weight())
