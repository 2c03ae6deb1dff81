"""The loop in one process: exact continuation from a state, the non-finite stop, auxiliary heads,
frozen parameters and the train-mode hook."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from cnnlab.engine import FitConfig, Hooks, NonFiniteLoss, Trainer, evaluate, fit, split_output
from cnnlab.engine.distributed import DistInfo, ShardedBatches


def _data(n: int = 72, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long() + 2 * (x.mean((1, 2, 3)) > 0).long()
    return TensorDataset(x, y)


class Noisy(torch.utils.data.Dataset):
    """Adds torch-random noise to each sample: an 'augmentation' that draws from the global generator."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        return x + 0.1 * torch.randn_like(x), y


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 4))


class Capture(Hooks):
    def __init__(self):
        self.states = {}

    def checkpoint(self, trainer, state, reason):
        self.states[state["step"]] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in state.items()}
        self.states[state["step"]]["model"] = {k: v.clone() for k, v in state["model"].items()}


def _trainer(hooks=None, **kw) -> Trainer:
    torch.manual_seed(0)
    cfg = FitConfig(epochs=3, batch_size=8, optimizer="momentum", lr=0.05, checkpoint_every=2, progress=False,
                    **kw)
    return Trainer(_net(), Noisy(_data()), _data(31, 1), cfg, num_classes=4, hooks=hooks)


def test_continuing_from_a_saved_state_is_bitwise_exact():
    import copy

    hooks = Capture()
    reference = _trainer(hooks)
    states = []
    orig = hooks.checkpoint

    def keep(trainer, state, reason):  # a deep copy, as the state file would hold
        states.append(copy.deepcopy(state))
        orig(trainer, state, reason)

    hooks.checkpoint = keep
    reference.fit()
    mid = next(s for s in states if s["batch_in_epoch"] not in (0, reference.batches_per_epoch)
               and s["epoch"] == 1)
    resumed = _trainer()
    resumed.load_state_dict(mid)
    resumed.fit()
    for k, v in reference.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert resumed.history[-1] == pytest.approx(
        reference.history[-1]
        | {"seconds": resumed.history[-1]["seconds"], "images_per_s": resumed.history[-1]["images_per_s"]}
    )


class NaNAfter(nn.Module):
    def __init__(self, calls: int):
        super().__init__()
        self.fc, self.calls, self.seen = nn.Linear(64, 4), calls, 0

    def forward(self, x):
        out = self.fc(x.flatten(1))
        if self.training:
            self.seen += 1
            if self.seen >= self.calls:
                return out * float("nan")
        return out


def test_non_finite_loss_stops_naming_the_step_without_updating():
    model = NaNAfter(calls=5)
    cfg = FitConfig(epochs=2, batch_size=8, progress=False)
    trainer = Trainer(model, _data(), _data(31, 1), cfg, num_classes=4)
    before = {}

    def remember(*a):
        before.update({k: v.clone() for k, v in model.state_dict().items()})

    trainer.hooks.epoch_end = remember
    with pytest.raises(NonFiniteLoss, match=r"the loss became nan at step 5 \(epoch 1, batch 5\)"):
        trainer.fit()
    assert trainer.step == 4
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_aux_heads_add_weighted_losses():
    main, aux = torch.randn(6, 3), torch.randn(6, 3)
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    ce = nn.CrossEntropyLoss()
    logits, loss, objective = split_output((main, aux, aux), target, ce, 0.3)
    assert logits is main and torch.allclose(objective, ce(main, target) + 0.6 * ce(aux, target))


class FrozenBackbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())
        self.head = nn.Linear(144, 4)

    def forward(self, x):
        return self.head(self.backbone(x))


def test_frozen_parts_and_train_mode_hook():
    torch.manual_seed(0)
    model = FrozenBackbone()
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    frozen = {k: v.clone() for k, v in model.backbone.state_dict().items()}

    def set_train_mode(m):
        m.train()
        m.backbone.eval()  # frozen BatchNorm keeps its running statistics

    result = fit(
        model,
        _data(),
        _data(31, 1),
        FitConfig(epochs=2, batch_size=8, progress=False),
        num_classes=4,
        set_train_mode=set_train_mode,
    )
    assert len(result.history) == 2
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, frozen[k]), k


def test_features_head_and_param_groups():
    """A head trained on precomputed feature tensors, with its own lr group."""
    feats = TensorDataset(torch.randn(40, 16), torch.randint(0, 3, (40,)))
    head = nn.Linear(16, 3)
    groups = [{"params": [head.weight], "lr": 0.0}, {"params": [head.bias]}]
    w0 = head.weight.detach().clone()
    fit(
        head,
        feats,
        feats,
        FitConfig(epochs=1, batch_size=8, progress=False),
        num_classes=3,
        param_groups=groups,
    )
    assert torch.equal(head.weight.detach(), w0)


def test_sharded_evaluation_counts_each_sample_once():
    data = _data(31, 1)
    model = _net().eval()
    whole = evaluate(model, data, batch_size=4, num_classes=4, device=torch.device("cpu"))
    assert whole.count == 31 and int(whole.confusion.sum()) == 31
    seen = sorted(i for r in range(3) for batch in ShardedBatches(31, 4, DistInfo(r, r, 3)) for i in batch)
    assert seen == list(range(31))


def test_resume_with_more_epochs_starts_from_the_new_schedule():
    data = _data()
    cfg = FitConfig(epochs=1, batch_size=8, lr=0.1, optimizer="sgd", schedule="cosine", progress=False)
    first = Trainer(_net(), data, data, cfg, num_classes=4)
    first.fit()
    state = first.state_dict()
    assert first.optimizer.param_groups[0]["lr"] < 1e-3  # a finished cosine run ends near 0
    longer = Trainer(_net(), data, data, FitConfig(**{**cfg.__dict__, "epochs": 2}), num_classes=4)
    longer.load_state_dict(state)
    steps, total = state["step"], 2 * state["step"]
    expected = 0.1 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * steps / total))).item()  # half way: 0.05
    assert longer.optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-6)
    same = Trainer(_net(), data, data, cfg, num_classes=4)
    same.load_state_dict(state)  # an unchanged schedule: exactly the saved lr
    assert same.optimizer.param_groups[0]["lr"] == first.optimizer.param_groups[0]["lr"]
