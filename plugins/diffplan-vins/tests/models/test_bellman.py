"""The fused Bellman-max step: same values and gradients as conv2d + max over the fields."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mlcore_diffplan_vins.models.bellman import bellman_max, cell_patches, to_cells


def _dense(q_r: torch.Tensor, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    b, cg, m, n = q_r.shape
    g = v.shape[1]
    q = q_r + F.conv2d(v, w, padding=w.shape[-1] // 2)
    return q.reshape(b, cg // g, g, m, n).amax(dim=1)


def _inputs(
    group: int, fields: int = 3, kernel: int = 3, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(group + kernel)
    q_r = torch.randn(2, fields * group, 5, 6, dtype=dtype, requires_grad=True)
    v = torch.randn(2, group, 5, 6, dtype=dtype, requires_grad=True)
    w = torch.randn(fields * group, group, kernel, kernel, dtype=dtype, requires_grad=True)
    return q_r, v, w


@pytest.mark.parametrize(("group", "kernel"), [(1, 3), (8, 3), (8, 1), (1, 5)])
def test_gradcheck(group: int, kernel: int) -> None:
    q_r, v, w = _inputs(group, fields=2, kernel=kernel)
    fn = lambda a, b, c: bellman_max(to_cells(a, group), b, c)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q_r, v, w), fast_mode=group > 1)


@pytest.mark.parametrize("group", [1, 8])
def test_values_and_gradients_equal_the_dense_step(group: int) -> None:
    q_r, v, w = _inputs(group, fields=5, dtype=torch.float32)
    out = bellman_max(to_cells(q_r, group), v, w)
    ref = _dense(q_r, v, w)
    assert torch.allclose(out, ref, atol=1e-5)
    upstream = torch.randn_like(ref)
    grads = torch.autograd.grad(out, (q_r, v, w), upstream)
    ref_grads = torch.autograd.grad(ref, (q_r, v, w), upstream)
    for got, want in zip(grads, ref_grads):
        assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()


def test_to_cells_puts_the_group_channel_first() -> None:
    q = torch.arange(2 * 3 * 2 * 1 * 1.0).reshape(1, 6, 1, 2)  # 3 fields of 2 channels, 1x2 cells
    cells = to_cells(q, 2)
    assert cells.shape == (1, 2, 6)
    # cell 0, group-major: (g0: c0 c1 c2), (g1: c0 c1 c2) = channels 0, 2, 4, 1, 3, 5
    assert cells[0, 0].tolist() == [0.0, 4.0, 8.0, 2.0, 6.0, 10.0]


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_cell_patches_equal_unfold(kernel: int) -> None:
    v = torch.randn(2, 3, 6, 5)
    expected = F.unfold(v, kernel, padding=kernel // 2).transpose(1, 2).reshape(2 * 6 * 5, -1)
    assert torch.equal(cell_patches(v, kernel), expected)
