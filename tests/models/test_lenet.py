"""LeNet-5 as in the 1998 paper: the parameter budget, the sparse C3 table, the RBF output."""

from __future__ import annotations

import pytest
import torch

import cnnlab
from cnnlab.models.lenet import C3_TABLE


def _lenet(**kw):
    torch.manual_seed(0)
    return cnnlab.create_model("lenet5", num_classes=10, in_chans=1, **kw)


def test_layer_budget_matches_the_paper():
    m = _lenet()
    count = {name: sum(p.numel() for p in getattr(m, name).parameters()) for name in
             ("c1", "s2", "c3", "s4", "c5", "f6")}
    assert count == {"c1": 156, "s2": 12, "c3": 1_516, "s4": 32, "c5": 48_120, "f6": 10_164}
    assert sum(count.values()) == 60_000
    assert not any(p.requires_grad for p in m.rbf.parameters())  # centres are a fixed buffer


def test_c3_only_sees_the_maps_of_its_table_row():
    dense = _lenet().c3[0].dense_weight()
    for out_map, inputs in enumerate(C3_TABLE):
        used = dense[out_map].abs().sum(dim=(1, 2)) > 0
        assert used.nonzero().flatten().tolist() == sorted(inputs)


def test_layer_shapes_at_32():
    m = _lenet().eval()
    x = torch.randn(2, 1, 32, 32)
    shapes = []
    for name in ("c1", "s2", "c3", "s4", "c5"):
        x = getattr(m, name)(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1)]


def test_rbf_temperature_scales_logits_but_not_predictions():
    paper, tempered = _lenet(rbf_temperature=1.0).eval(), _lenet().eval()
    tempered.load_state_dict(paper.state_dict())
    x = torch.randn(8, 1, 32, 32)
    with torch.no_grad():
        a, b = paper(x), tempered(x)
    assert torch.allclose(a, b * 50.0, rtol=1e-5, atol=1e-3)
    assert torch.equal(a.argmax(1), b.argmax(1))
    assert (a <= 0).all()  # minus a squared distance


def test_bad_temperature_is_one_clear_line():
    with pytest.raises(cnnlab.CnnlabError, match="rbf_temperature must be > 0"):
        _lenet(rbf_temperature=0)
