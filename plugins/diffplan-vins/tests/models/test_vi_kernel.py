"""The sparse-backward value iteration equals unrolled conv2d + max, values and gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mlcore_diffplan_vins.models.vi_kernel import from_rows, neighbourhoods, to_rows, value_iteration


def unrolled(qr: torch.Tensor, w: torch.Tensor, steps: int, batch: int, size: int, ks: int) -> torch.Tensor:
    """The textbook loop in NCHW with conv2d, from the same [l_q, B*M*M] inputs."""
    lq = qr.shape[0]
    qr_img = from_rows(qr, batch, size)
    kernel = w.reshape(lq, 1, ks, ks)
    v = qr_img.max(dim=1, keepdim=True).values
    for _ in range(steps):
        v = (qr_img + F.conv2d(v, kernel, padding=ks // 2)).max(dim=1, keepdim=True).values
    return to_rows(v).reshape(-1)


def test_kernel_times_neighbourhoods_is_conv2d() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 1, 7, 7, dtype=torch.float64)
    kernel = torch.randn(5, 1, 3, 3, dtype=torch.float64)
    ours = kernel.reshape(5, -1) @ neighbourhoods(to_rows(x).reshape(-1), 3, 7, 3)
    torch.testing.assert_close(from_rows(ours, 3, 7), F.conv2d(x, kernel, padding=1))


def test_values_and_gradients_match_autograd_unrolled() -> None:
    torch.manual_seed(1)
    for ks, steps, batch in ((3, 6, 2), (5, 3, 3), (3, 0, 1)):
        qr = torch.randn(6, batch * 9 * 9, dtype=torch.float64, requires_grad=True)
        w = torch.randn(6, ks * ks, dtype=torch.float64, requires_grad=True)
        ours = value_iteration(qr, w, steps, batch, 9, ks)
        ref = unrolled(qr, w, steps, batch, 9, ks)
        torch.testing.assert_close(ours, ref)
        weights = torch.randn_like(ours)
        g_ours = torch.autograd.grad((ours * weights).sum(), (qr, w))
        g_ref = torch.autograd.grad((ref * weights).sum(), (qr, w), allow_unused=True, materialize_grads=True)
        for a, b in zip(g_ours, g_ref):
            torch.testing.assert_close(a, b)


def test_gradcheck() -> None:
    torch.manual_seed(2)
    qr = torch.randn(3, 2 * 5 * 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: value_iteration(a, b, 4, 2, 5, 3), (qr, w))
