"""Every scratch layer against PyTorch in float64 on random shapes (odd sizes, padding, stride > 1)."""

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab import scratch as S
from cnnlab.scratch.im2col import col2im, conv_output_size, im2col

from .torch_oracle import TOL, assert_matches_torch, max_diff, t

FAST = settings(max_examples=25, deadline=None)
F64 = np.float64


def rand(seed: int, *shape) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    k, s, p, d = (draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(0, 2)),
                  draw(st.integers(1, 2)))
    lo = max(1, d * (k - 1) + 1 - 2 * p)
    h, w = draw(st.integers(lo, lo + 8)), draw(st.integers(lo, lo + 8))
    return dict(n=draw(st.integers(1, 3)), cin=cin, cout=cout, k=k, s=s, p=p, d=d, g=groups, h=h, w=w,
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


@FAST
@given(conv_cases())
def test_conv2d_matches_torch(c):
    rng = np.random.default_rng(c["seed"])
    layer = S.Conv2d(c["cin"], c["cout"], c["k"], c["s"], c["p"], c["d"], c["g"], c["bias"], rng, F64)
    if c["bias"]:
        layer.bias.data[...] = rng.standard_normal(c["cout"])
    x = rand(c["seed"], c["n"], c["cin"], c["h"], c["w"])
    assert_matches_torch(layer, lambda x, weight, bias=None: F.conv2d(
        x, weight, bias, c["s"], c["p"], c["d"], c["g"]), x, c["seed"])


@FAST
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(0, 2), st.integers(1, 4),
       st.integers(0, 2), st.integers(0, 9), st.integers(0, 9))
def test_im2col_col2im_are_adjoint(n, c, k, p, s, d, dh, dw):
    h, w = max(1, d * (k - 1) + 1 - 2 * p) + dh, max(1, d * (k - 1) + 1 - 2 * p) + dw
    x, rng = rand(0, n, c, h, w), np.random.default_rng(1)
    cols = im2col(x, k, k, s, p, d)
    assert cols.shape == (c * k * k, n * conv_output_size(h, k, s, p, d) * conv_output_size(w, k, s, p, d))
    y = rng.standard_normal(cols.shape)  # <im2col(x), y> == <x, col2im(y)>
    assert abs((cols * y).sum() - (x * col2im(y, x.shape, k, k, s, p, d)).sum()) < 1e-9


@st.composite
def pool_cases(draw):
    k = draw(st.integers(1, 4))
    p, s = draw(st.integers(0, k // 2)), draw(st.integers(1, 3))
    lo = max(1, k - 2 * p)
    return dict(
        k=k,
        s=s,
        p=p,
        n=draw(st.integers(1, 2)),
        c=draw(st.integers(1, 3)),
        h=draw(st.integers(lo, lo + 8)),
        w=draw(st.integers(lo, lo + 8)),
        seed=draw(st.integers(0, 999)),
    )


@FAST
@given(pool_cases())
def test_maxpool_matches_torch(c):
    x = rand(c["seed"], c["n"], c["c"], c["h"], c["w"])
    layer = S.MaxPool2d(c["k"], c["s"], c["p"])
    assert_matches_torch(layer, lambda x: F.max_pool2d(x, c["k"], c["s"], c["p"]), x, c["seed"])


@FAST
@given(pool_cases())
def test_avgpool_matches_torch(c):
    x = rand(c["seed"], c["n"], c["c"], c["h"], c["w"])
    layer = S.AvgPool2d(c["k"], c["s"], c["p"])
    assert_matches_torch(layer, lambda x: F.avg_pool2d(x, c["k"], c["s"], c["p"]), x, c["seed"])


@settings(max_examples=15, deadline=None)
@given(pool_cases())
def test_maxpool_ties_route_like_torch(c):
    x = np.random.default_rng(c["seed"]).integers(0, 2, (c["n"], c["c"], c["h"], c["w"])).astype(F64)
    layer = S.MaxPool2d(c["k"], c["s"], c["p"])
    assert_matches_torch(layer, lambda x: F.max_pool2d(x, c["k"], c["s"], c["p"]), x, c["seed"])


@FAST
@given(st.integers(1, 5), st.integers(1, 9), st.integers(1, 9), st.booleans(), st.integers(0, 999))
def test_linear_matches_torch(n, fin, fout, bias, seed):
    layer = S.Linear(fin, fout, bias, np.random.default_rng(seed), F64)
    assert_matches_torch(
        layer, lambda x, weight, bias=None: F.linear(x, weight, bias), rand(seed, n, fin), seed
    )


ACTIVATIONS = {
    "relu": (S.ReLU, F.relu),
    "leaky_relu": (lambda: S.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)),
    "sigmoid": (S.Sigmoid, torch.sigmoid),
    "tanh": (S.Tanh, torch.tanh),
    "flatten": (S.Flatten, lambda x: torch.flatten(x, 1)),
}


@FAST
@given(st.sampled_from(sorted(ACTIVATIONS)), st.lists(st.integers(1, 5), min_size=2, max_size=4),
       st.integers(0, 999))
def test_elementwise_matches_torch(name, shape, seed):
    make, fn = ACTIVATIONS[name]
    x = rand(seed, *shape) * 5
    x[..., 0] = 0.0  # the kink itself: torch's gradient convention at 0
    assert_matches_torch(make(), fn, x, seed)


@FAST
@given(st.sampled_from([(3,), (3, 4), (3, 4, 5)]), st.integers(2, 5), st.booleans(), st.integers(0, 999))
def test_batchnorm_matches_torch(tail, n, training, seed):
    shape = (n, *tail)
    layer = (S.BatchNorm2d if len(shape) == 4 else S.BatchNorm1d)(shape[1], momentum=0.1, dtype=F64)
    rng = np.random.default_rng(seed)
    layer.weight.data[...], layer.bias.data[...] = (
        rng.uniform(0.5, 2, shape[1]),
        rng.standard_normal(shape[1]),
    )
    layer.running_mean[...], layer.running_var[...] = (
        rng.standard_normal(shape[1]),
        rng.uniform(0.5, 2, shape[1]),
    )
    rm, rv = t(layer.running_mean.copy()), t(layer.running_var.copy())
    layer.training = training

    def torch_bn(x, weight, bias):
        return F.batch_norm(x, rm, rv, weight, bias, training=training, momentum=0.1, eps=1e-5)

    assert_matches_torch(layer, torch_bn, rand(seed, *shape), seed)
    assert max_diff(layer.running_mean, rm) <= TOL and max_diff(layer.running_var, rv) <= TOL


def test_dropout_is_inverted_and_masks_backward():
    x = np.ones((200, 100))
    layer = S.Dropout(0.3, rng=np.random.default_rng(0))
    out = layer.forward(x)
    assert set(np.unique(out)) == {0.0, 1 / 0.7}
    assert abs(out.mean() - 1.0) < 0.02  # expectation kept
    dx = layer.backward(np.full_like(x, 2.0))
    np.testing.assert_array_equal(dx, 2.0 * out)
    layer.training = False
    np.testing.assert_array_equal(layer.forward(x), x)


@FAST
@given(st.integers(1, 6), st.integers(2, 7), st.integers(0, 999))
def test_softmax_cross_entropy_matches_torch(n, k, seed):
    logits = rand(seed, n, k) * 10
    labels = np.random.default_rng(seed).integers(0, k, n)
    loss_fn = S.SoftmaxCrossEntropy()
    loss = loss_fn(logits, labels)
    lt = t(logits, grad=True)
    ref = F.cross_entropy(lt, torch.tensor(labels))
    ref.backward()
    assert abs(loss - ref.item()) <= TOL
    assert max_diff(loss_fn.backward(), lt.grad) <= TOL


def test_penalties_match_torch_autograd():
    w = rand(0, 4, 5)
    for penalty, ref in ((S.L2Penalty(0.3), lambda v: 0.15 * (v * v).sum()),
                         (S.L1Penalty(0.3), lambda v: 0.3 * v.abs().sum())):
        p = S.Param(w.copy())
        value = penalty([p])
        wt = t(w, grad=True)
        r = ref(wt)
        r.backward()
        assert abs(value - r.item()) <= TOL and max_diff(p.grad, wt.grad) <= TOL
