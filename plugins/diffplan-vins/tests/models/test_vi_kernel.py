"""The sparse-backward value iteration equals unrolled conv2d + max, values and gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mlcore_diffplan_vins.models.vi_kernel import neighbourhoods, value_iteration


def unrolled(qr: torch.Tensor, w: torch.Tensor, steps: int, size: int, ks: int) -> torch.Tensor:
    """The textbook loop in NCHW with conv2d, from the same channels-last inputs."""
    b, _, lq = qr.shape
    qr_img = qr.transpose(1, 2).reshape(b, lq, size, size)
    kernel = w.t().reshape(lq, 1, ks, ks)
    v = qr_img.max(dim=1, keepdim=True).values
    for _ in range(steps):
        v = (qr_img + F.conv2d(v, kernel, padding=ks // 2)).max(dim=1, keepdim=True).values
    return v.reshape(b, -1)


def test_neighbourhoods_times_kernel_is_conv2d() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 7 * 7, dtype=torch.float64)
    kernel = torch.randn(5, 1, 3, 3, dtype=torch.float64)
    ours = neighbourhoods(x, 7, 3) @ kernel.reshape(5, -1).t()
    ref = F.conv2d(x.view(3, 1, 7, 7), kernel, padding=1)
    torch.testing.assert_close(ours.transpose(1, 2).reshape(3, 5, 7, 7), ref)


def test_values_and_gradients_match_autograd_unrolled() -> None:
    torch.manual_seed(1)
    for ks, steps in ((3, 6), (5, 3), (3, 0)):
        qr = torch.randn(2, 9 * 9, 6, dtype=torch.float64, requires_grad=True)
        w = torch.randn(ks * ks, 6, dtype=torch.float64, requires_grad=True)
        ours = value_iteration(qr, w, steps, 9, ks)
        ref = unrolled(qr, w, steps, 9, ks)
        torch.testing.assert_close(ours, ref)
        weights = torch.randn_like(ours)
        g_ours = torch.autograd.grad((ours * weights).sum(), (qr, w))
        g_ref = torch.autograd.grad((ref * weights).sum(), (qr, w), allow_unused=True, materialize_grads=True)
        for a, b in zip(g_ours, g_ref):
            torch.testing.assert_close(a, b)


def test_gradcheck() -> None:
    torch.manual_seed(2)
    qr = torch.randn(1, 5 * 5, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: value_iteration(a, b, 4, 5, 3), (qr, w))
