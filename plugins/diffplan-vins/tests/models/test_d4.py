"""D4 group convolutions: group law, conventions shared with the action set, exact equivariance."""

from __future__ import annotations

import itertools

import pytest
import torch

from mlcore_diffplan_vins.actions import ACTION_OFFSETS
from mlcore_diffplan_vins.models import d4

G = range(d4.ORDER)


def test_compose_is_the_group_of_the_image_transforms() -> None:
    x = torch.arange(25.0).reshape(5, 5)
    for a, b in itertools.product(G, G):
        assert torch.equal(d4.transform(x, d4.compose(a, b)), d4.transform(d4.transform(x, b), a))
    assert all(d4.compose(g, d4.inverse(g)) == 0 for g in G)
    # eight distinct transforms: the group is D4, not a quotient of it
    assert len({tuple(d4.transform(x, g).flatten().tolist()) for g in G}) == 8


@pytest.mark.parametrize("num_actions", [4, 8])
def test_action_permutation_moves_the_action_offsets_like_the_map(num_actions: int) -> None:
    """A marker one step along action ``a`` lands one step along ``perm[a]`` after ``T_g``."""
    centre = 2
    for g in G:
        perm = d4.action_permutation(g, num_actions)
        for a, (dr, dc) in enumerate(ACTION_OFFSETS[num_actions]):
            image = torch.zeros(5, 5)
            image[centre + dr, centre + dc] = 1.0
            dr2, dc2 = ACTION_OFFSETS[num_actions][perm[a]]
            assert d4.transform(image, g)[centre + dr2, centre + dc2] == 1.0, (g, a)


def _regular_field_input(seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randn(2, 3 * d4.ORDER, 7, 7, dtype=torch.float64)


def test_lifting_conv_is_equivariant_for_every_element() -> None:
    torch.manual_seed(0)
    layer = d4.LiftingConv(2, 3, 3, bias=True).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 2, 7, 7, dtype=torch.float64)
    y = layer(x)
    for g in G:
        assert (layer(d4.transform(x, g)) - d4.transform_regular(y, g)).abs().max() < 1e-12, g


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_group_conv_is_equivariant_for_every_element(kernel_size: int) -> None:
    torch.manual_seed(1)
    layer = d4.GroupConv(3, 4, kernel_size, bias=True).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = _regular_field_input()
    y = layer(x)
    for g in G:
        assert (layer(d4.transform_regular(x, g)) - d4.transform_regular(y, g)).abs().max() < 1e-12, g


def test_group_conv_kernel_matches_the_definition() -> None:
    """The one-gather kernel equals ``T_g(w[o, i, g^{-1} g'])`` built with explicit loops."""
    torch.manual_seed(2)
    layer = d4.GroupConv(2, 3, 3)
    w = layer.weight
    full = layer.full_weight().reshape(3, d4.ORDER, 2, d4.ORDER, 3, 3)
    for g, h in itertools.product(G, G):
        expected = d4.transform(w[:, :, d4.compose(d4.inverse(g), h)], g)
        assert torch.equal(full[:, g, :, h], expected), (g, h)


def test_a_plain_conv_is_not_equivariant() -> None:
    """The checks above can fail: an unconstrained kernel breaks them."""
    torch.manual_seed(3)
    conv = torch.nn.Conv2d(3 * d4.ORDER, 3 * d4.ORDER, 3, padding=1).double()
    x = _regular_field_input()
    assert (conv(d4.transform_regular(x, 1)) - d4.transform_regular(conv(x), 1)).abs().max() > 1e-3


@pytest.mark.parametrize("num_actions", [4, 8])
def test_action_head_is_equivariant_for_every_element(num_actions: int) -> None:
    torch.manual_seed(4)
    head = d4.ActionHead(3, num_actions).double()
    x = _regular_field_input()
    y = head(x)
    assert y.shape == (2, num_actions, 7, 7)
    for g in G:
        assert (head(d4.transform_regular(x, g)) - d4.transform_actions(y, g)).abs().max() < 1e-12, g


@pytest.mark.parametrize("mode", ["max", "mean"])
def test_group_pool_is_invariant(mode: str) -> None:
    x = _regular_field_input()
    y = d4.group_pool(x, mode)
    assert y.shape == (2, 3, 7, 7)
    for g in G:
        assert torch.allclose(d4.group_pool(d4.transform_regular(x, g), mode), d4.transform(y, g))


def test_layers_are_equivariant_on_real_mazes(mazes_15: tuple[torch.Tensor, torch.Tensor]) -> None:
    maps = mazes_15[0].double()
    torch.manual_seed(5)
    lift, conv, head = d4.LiftingConv(2, 4).double(), d4.GroupConv(4, 4).double(), d4.ActionHead(4, 4).double()

    def net(x: torch.Tensor) -> torch.Tensor:
        return head(torch.relu(conv(torch.relu(lift(x)))))

    y = net(maps)
    for g in G:
        assert (net(d4.transform(maps, g)) - d4.transform_actions(y, g)).abs().max() < 1e-12, g


def test_even_kernels_and_bad_action_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="kernel_size=2"):
        d4.GroupConv(1, 1, 2)
    with pytest.raises(ValueError, match="num_actions=6"):
        d4.action_permutation(1, 6)
