"""The convolution cost calculator against the notes' worked examples (REFERENCE.md section 2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.analysis import cost
from cnnlab.errors import CnnlabError


def test_bottleneck_example():
    cmp = cost.bottleneck("28x28x192", 32, 5, 16)
    assert cmp.baseline.output == (28, 28, 32) and cmp.baseline.macs == 120_422_400
    assert [c.macs for c in cmp.alternative] == [2_408_448, 10_035_200] and cmp.alt_macs == 12_443_648


def test_bottleneck_weights_example():
    cmp = cost.bottleneck("28x28x128", 128, 3, 32)
    assert (cmp.baseline.weights, cmp.alt_weights) == (147_456, 40_960)


def test_separable_example():
    cmp = cost.separable("6x6x3", 5, 3)
    assert cmp.baseline.output == (4, 4, 5) and cmp.baseline.macs == 2_160
    assert [c.macs for c in cmp.alternative] == [432, 240] and cmp.alt_macs == 672
    assert cmp.mac_ratio == pytest.approx(cost.mac_ratio_formula(5, 3)) == pytest.approx(1 / 5 + 1 / 9)


def test_stack_example():
    cmp = cost.stack(128, [3, 3], 5)
    assert (cmp.alt_weights, cmp.baseline.weights) == (294_912, 409_600)
    assert cmp.weight_ratio == pytest.approx(0.72) and cmp.receptive_field == (5, 5)
    assert cost.receptive_field_of_stack([3, 3, 3]) == 7


def test_output_size_formula_and_dilation():
    assert cost.output_size(224, 7, 2, 3) == (112, 6)
    assert cost.output_size(32, 3, 1, 2, dilation=2) == (32, 4)  # k_eff = 5
    assert cost.output_size(227, 11, 4, 0) == (55, 0)
    assert cost.output_size(225, 3, 2, "same") == (113, 2)


@pytest.mark.parametrize("kwargs, message", [
    ({"input_hwc": "4x4x3", "out_channels": 5, "kernel": 7}, "larger than the padded input"),
    ({"input_hwc": "8x8x6", "out_channels": 5, "kernel": 3, "groups": 4}, "not divisible by groups"),
    ({"input_hwc": "8x8x3", "out_channels": 0, "kernel": 3}, "out channels must be"),
    ({"input_hwc": "8x8", "out_channels": 4, "kernel": 3}, "HxWxC"),
    ({"input_hwc": "8x8x3", "out_channels": 4, "kernel": 3, "padding": -1}, "padding must be"),
])
def test_impossible_geometry(kwargs, message):
    with pytest.raises(CnnlabError, match=message):
        cost.conv_cost(**kwargs)


@settings(deadline=None, max_examples=60)
@given(n=st.integers(1, 64), k=st.integers(1, 9), s=st.integers(1, 4), p=st.integers(0, 4),
       d=st.integers(1, 3))
def test_output_size_matches_torch(n, k, s, p, d):
    import torch

    k_eff = d * (k - 1) + 1
    if n + 2 * p < k_eff:
        with pytest.raises(CnnlabError):
            cost.output_size(n, k, s, p, d)
        return
    conv = torch.nn.Conv2d(1, 1, k, s, p, d, device="meta")
    assert cost.output_size(n, k, s, p, d)[0] == conv(torch.empty(1, 1, n, n, device="meta")).shape[-1]
