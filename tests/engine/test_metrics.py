"""Accuracy counts against a direct computation."""

import torch

from cnnlab.engine.metrics import topk_correct


def test_topk_correct_matches_a_direct_count():
    g = torch.Generator().manual_seed(0)
    for classes in (3, 5, 10, 1000):
        logits = torch.randn(257, classes, generator=g)
        target = torch.randint(0, classes, (257,), generator=g)
        rank = (logits > logits.gather(1, target.view(-1, 1))).sum(1)  # how many logits beat the target's
        expected = [int((rank < min(k, classes)).sum()) for k in (1, 2, 5)]
        assert topk_correct(logits, target, ks=(1, 2, 5)) == expected
    assert topk_correct(torch.tensor([[0.0, 2.0, 1.0]]), torch.tensor([2])) == [
        0,
        1,
    ]  # top-5 capped at 3 classes
