"""The realtime_corrector model."""

from __future__ import annotations

import pytest
import torch

from mlcore_printer_corrector.model import RealtimeCorrector, RealtimeCorrectorConfig


def test_shapes_and_example_input():
    m = RealtimeCorrector(RealtimeCorrectorConfig(sequence_length=20, hidden_size=16, num_layers=2)).eval()
    assert m(m.example_input(3)).shape == (3, 2)
    assert m.example_input(1).shape == (1, 20, 4)


def test_the_prediction_uses_the_last_sample_of_the_window():
    torch.manual_seed(0)
    m = RealtimeCorrector(RealtimeCorrectorConfig(sequence_length=10, hidden_size=8, linear_skip=False)).eval()
    x = torch.randn(1, 10, 4)
    y = x.clone()
    y[0, -1] += 1.0
    assert not torch.allclose(m(x), m(y))


def test_linear_skip_is_a_linear_map_of_the_window():
    m = RealtimeCorrector(RealtimeCorrectorConfig(sequence_length=5, hidden_size=8)).eval()
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.zero_()
    x = torch.randn(4, 5, 4)
    assert torch.allclose(m(2 * x) - m.skip.bias, 2 * (m(x) - m.skip.bias), atol=1e-5)
    plain = RealtimeCorrector(RealtimeCorrectorConfig(linear_skip=False))
    assert plain.skip is None


@pytest.mark.parametrize("field, value", [("num_layers", 4), ("hidden_size", 0), ("dropout", 1.0)])
def test_out_of_range_config_is_refused(field, value):
    with pytest.raises(ValueError, match=field):
        RealtimeCorrectorConfig(**{field: value})
