"""Layer selection."""

from __future__ import annotations

import pytest

from mlcore_printer_corrector.layers import check_layer_spec, select_layers


def test_sampled_spreads_from_first_to_last():
    layers = list(range(100))
    assert select_layers("sampled:5", layers) == [0, 25, 50, 74, 99]
    assert select_layers("sampled:500", layers) == layers
    assert select_layers("first:3", layers) == [0, 1, 2]
    assert select_layers("3, 7,200", layers) == [3, 7]
    assert select_layers("all", layers) == layers


@pytest.mark.parametrize("bad", ["sampled", "sampled:0", "every:3", "1-5", ""])
def test_bad_specs_name_the_allowed_forms(bad):
    with pytest.raises(ValueError, match=r"allowed: all, sampled:N, first:N, or 0,5,10"):
        check_layer_spec(bad)
