"""The scratch LeNet-5 against cnnlab's torch ``lenet5_relu``: outputs, gradients, MACs; numpy only."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab import scratch as S

# conv 28*28*25*6 + 10*10*150*16 + C5 1*1*400*120 + F6 120*84 + out 84*10 per image
LENET_MACS = 117_600 + 240_000 + 48_000 + 10_080 + 840


def twins():
    ref = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1).double().eval()
    ours = S.lenet5(dtype=np.float64)
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    return ours, ref


def test_lenet5_equals_torch_lenet5_relu_forward_and_backward():
    ours, ref = twins()
    x, y = np.random.default_rng(0).standard_normal((4, 1, 32, 32)), np.array([0, 3, 9, 3])
    loss_fn = S.SoftmaxCrossEntropy()
    loss = loss_fn(ours.train().forward(x), y)
    ours.backward(loss_fn.backward())
    ref_loss = torch.nn.functional.cross_entropy(ref(torch.tensor(x)), torch.tensor(y))
    ref_loss.backward()
    assert abs(loss - ref_loss.item()) < 1e-10
    grads = {k: p.grad for k, p in ref.named_parameters()}
    for k, p in ours.named_params().items():
        assert np.max(np.abs(p.grad - grads[k].numpy())) < 1e-10, k
    assert ours.num_params() == sum(p.numel() for p in ref.parameters()) == 61_706


def test_mac_count_formula():
    model = S.lenet5()
    assert model.mac_count((1, 32, 32)) == LENET_MACS
    assert model.mac_count((1, 32, 32), batch=3) == 3 * LENET_MACS
    assert (
        S.Sequential([S.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)]).mac_count((4, 9, 9))
        == 3 * 3 * 2 * 6 * 5 * 5
    )


def test_macs_equal_analysis_profile():
    analysis = pytest.importorskip("cnnlab.analysis")
    if not hasattr(analysis, "profile"):
        pytest.skip("cnnlab.analysis.profile is not there yet")
    ref = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1)
    prof = analysis.profile(ref, input_size=(1, 32, 32))
    counted = {n for n, m in ref.named_modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)}
    theirs = {r.name: r.macs for r in prof.rows if r.name in counted}
    ours = dict(S.lenet5().mac_rows((1, 32, 32)))
    assert ours == theirs and len(ours) == 5
    assert S.lenet5().mac_count() == prof.macs


def test_load_state_dict_rejects_wrong_names():
    with pytest.raises(KeyError, match="missing"):
        S.lenet5().load_state_dict({})


def test_scratch_package_never_imports_torch():
    code = ("import sys, cnnlab.scratch, cnnlab.scratch.gradcheck, cnnlab.scratch.train; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_fit_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0, :4].sum(axis=(1, 2)) > x[:, 0, 4:].sum(axis=(1, 2))).astype(int)
    model = S.Sequential([S.Conv2d(1, 4, 3, padding=1, rng=rng), S.BatchNorm2d(4), S.ReLU(), S.AvgPool2d(2),
                          S.Flatten(), S.Dropout(0.1, rng=rng), S.Linear(64, 2, rng=rng)])
    data = S.Arrays(x[:384], y[:384], x[384:], y[384:])
    seen = []
    history = S.fit(model, S.Adam(model.params(), lr=0.01), data, epochs=10, batch_size=32,
                    penalty=S.L2Penalty(1e-4), on_epoch=seen.append)
    assert seen == history and len(history) == 10
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].val_top1 >= 75  # %, chance is 50
