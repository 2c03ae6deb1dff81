"""``cnnlab.workflows.evaluate``: single-view equals the training loop's validation; ensembles against
direct computation; the CLI after a real ``cnnlab train``."""

from __future__ import annotations

import copy
import json
import logging

import pytest
import torch

from cnnlab.cli.main import main
from cnnlab.config import apply_overrides
from cnnlab.engine.evaluate import evaluate as engine_evaluate
from cnnlab.workflows.evaluate import Member, evaluate, load_member
from cnnlab.workflows.train import TrainConfig
from cnnlab.workflows.train_setup import data_setup, open_data

from .conftest import run_cli


def _reference(run):
    """The run's model, validation set and transform, built the way ``cnnlab train`` builds them."""
    config = apply_overrides(
        TrainConfig(),
        {k: v for k, v in json.loads((run / "config.json").read_text()).items() if k not in ("name", "out")},
    )
    splits, chans = open_data(config)
    member = load_member(f"lenet5:{run}")
    setup = data_setup(config, splits, member.model)
    splits.val.transform = setup.eval_transform
    return member, splits


def _perturbed(member: Member, seed: int = 1) -> Member:
    """Another model with the same classes: the run's weights plus noise."""
    other = copy.deepcopy(member)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.model.parameters():
            p.add_(0.3 * p.std() * torch.randn(p.shape, generator=gen))
    other.label = "perturbed"
    return other


def test_single_view_reproduces_the_training_validation_exactly(digits_run):
    member, splits = _reference(digits_run)
    ref = engine_evaluate(member.model, splits.val, batch_size=32, num_classes=10, device=torch.device("cpu"))
    got = evaluate(f"lenet5:{digits_run}", "digits", tta="none", batch_size=32, device="cpu")
    line = got.members[0]
    assert line.count == ref.count == 359 and got.ensemble is None
    assert line.top1 == ref.top1 and line.top5 == ref.top5
    assert line.loss == pytest.approx(ref.loss, rel=1e-6)
    summary = json.loads((digits_run / "summary.json").read_text())
    assert line.top1 == pytest.approx(summary["best"]["val_top1"], abs=1e-9)  # the run's own figure
    per_class = ref.confusion.diag().double() / ref.confusion.sum(1).double() * 100
    assert [c["top1"] for c in line.per_class.values()] == pytest.approx(per_class.tolist())
    assert [c["count"] for c in line.per_class.values()] == ref.confusion.sum(1).tolist()


def test_ensemble_probabilities_are_the_weighted_mean_of_direct_member_probabilities(digits_run):
    member, splits = _reference(digits_run)
    other = _perturbed(member)
    got = evaluate([member, other], splits, tta="flip", member_weights=[3, 1], batch_size=50, device="cpu",
                   keep_probs=True)
    # direct computation: every image's single-view tensor and its mirror, softmax, weighted mean
    x = torch.stack([splits.val[i][0] for i in range(len(splits.val))])
    y = torch.tensor(splits.val.targets)
    with torch.no_grad():
        probs = [(m.model.eval()(x).softmax(1) + m.model(x.flip(-1)).softmax(1)) / 2 for m in (member, other)]
    mixed = 0.75 * probs[0] + 0.25 * probs[1]
    torch.testing.assert_close(got.members[0].probs, probs[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.members[1].probs, probs[1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.ensemble.probs, mixed, atol=1e-5, rtol=1e-4)
    assert got.ensemble.top1 == pytest.approx(100 * (mixed.argmax(1) == y).double().mean().item())
    assert got.ensemble.loss == pytest.approx(-mixed[torch.arange(len(y)), y].log().mean().item(), rel=1e-5)
    assert got.members[0].probs.sum(1).sub(1).abs().max() < 1e-5
    # mean_logit: one softmax of the weighted mean logits over the views and the members
    logit = evaluate(
        [member, other],
        splits,
        tta="flip",
        member_weights=[3, 1],
        combine="mean_logit",
        batch_size=50,
        device="cpu",
        keep_probs=True,
    )
    with torch.no_grad():
        z = [(m.model(x) + m.model(x.flip(-1))) / 2 for m in (member, other)]
    torch.testing.assert_close(
        logit.ensemble.probs, (0.75 * z[0] + 0.25 * z[1]).softmax(1), atol=1e-5, rtol=1e-4
    )


def test_an_ensemble_of_a_model_with_itself_is_the_model(digits_run):
    member, splits = _reference(digits_run)
    got = evaluate([member, member], splits, tta="10crop", batch_size=64, device="cpu", keep_probs=True)
    alone, ens = got.members[0], got.ensemble
    assert (ens.top1, ens.top5, ens.count) == (alone.top1, alone.top5, alone.count)
    assert ens.loss == pytest.approx(alone.loss, rel=1e-6)
    torch.testing.assert_close(ens.probs, alone.probs, atol=1e-6, rtol=1e-5)
    assert alone.views == 10 and "shorter side 37" in alone.tta  # AlexNet's side for a whole-image model


def test_cli_train_then_evaluate_with_flip_json_and_table(digits_run, tmp_path):
    proc = run_cli(
        [
            "evaluate",
            f"lenet5:{digits_run}",
            "--data",
            "digits",
            "--tta",
            "flip",
            "--out",
            "r.json",
            "--batch-size",
            "64",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((tmp_path / "r.json").read_text())
    line = saved["members"][0]
    assert saved["count"] == 359 and saved["tta"] == "flip" and line["views"] == 2
    member, splits = _reference(digits_run)
    direct = evaluate(member, splits, tta="flip", batch_size=64, device="cpu")
    assert line["top1"] == pytest.approx(direct.members[0].top1)
    assert f"{line['top1']:6.2f}" in proc.stdout and "flip: 2 view(s)" in proc.stdout
    assert not list(tmp_path.glob(".*")), "temporary files left behind"


@pytest.mark.parametrize("args, message", [
    (["--tta", "7crop"], "unknown test-time augmentation '7crop'"),
    (["--scales", "40,x"], "--scales '40,x' must be comma-separated ints"),
    (["--combine", "vote"], "--combine 'vote' is not one of mean_prob, mean_logit"),
    (["--member-weights", "1,2"], "ensemble weights [1.0, 2.0] must be 1 non-negative numbers"),
    (["--data", "no/such/dir"], "unknown data 'no/such/dir'"),
])
def test_bad_input_is_one_line_exit_2(digits_run, capsys, args, message):
    assert main(["evaluate", f"lenet5:{digits_run}", *args]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and message in err[0], err


def test_classes_must_match_and_an_untrained_member_warns(digits_run, tmp_path, capsys, caplog):
    from PIL import Image

    for split in ("train", "val"):
        for name in ("cat", "dog"):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(2):
                Image.new("L", (32, 32), 40 * i).save(tmp_path / split / name / f"{i}.png")
    assert main(["evaluate", f"lenet5:{digits_run}", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained on other classes than the data's" in err[0] and "cat" in err[0], err
    with caplog.at_level(logging.WARNING, logger="cnnlab"):
        assert main(["evaluate", f"lenet5:{digits_run}", "lenet5", "--data", "digits", "--json"]) == 0
    assert any("untrained network is evaluated" in r.getMessage() for r in caplog.records)
    out = json.loads(capsys.readouterr().out)
    assert [m["label"] for m in out["members"]] == [f"lenet5:{digits_run}", "lenet5"] and out["ensemble"]


class _Wider(torch.nn.Module):
    """The digits model's outputs in reverse class order after two extra classes that never win."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        z = self.inner(x)
        return torch.cat([torch.full((len(z), 2), -1e4), z.flip(1)], dim=1)


def test_a_model_with_more_classes_is_scored_by_class_name(digits_run):
    member, splits = _reference(digits_run)
    wider = Member(_Wider(member.model), member.transform, ["cat", "dog", *reversed(splits.classes)], "wider")
    got = evaluate([member], splits, tta="flip", device="cpu")
    mapped = evaluate([wider], splits, tta="flip", device="cpu")
    assert mapped.members[0].top1 == got.members[0].top1 and mapped.members[0].top5 == got.members[0].top5
    assert mapped.members[0].loss == pytest.approx(got.members[0].loss, rel=1e-6)
    assert mapped.members[0].per_class == got.members[0].per_class
