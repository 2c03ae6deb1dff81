"""Finite differences agree with every analytic backward (float64, relative error < 1e-6), and the check
itself catches a wrong backward."""

import numpy as np
import pytest

from cnnlab import scratch as S
from cnnlab.scratch.gradcheck import CASES, TOLERANCE, _input, check_layer


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_numerical_gradients_agree(case):
    rng = np.random.default_rng(7)
    results = check_layer(case.make(rng), _input(rng, case.input_shape, case.distinct), rng, case.name)
    assert results and all(r.rel_error < TOLERANCE for r in results), results


class WrongTanh(S.Tanh):
    def backward(self, dout):
        return dout * (1 - self._out)  # missing square


def test_gradcheck_catches_a_wrong_backward():
    rng = np.random.default_rng(0)
    (result,) = check_layer(WrongTanh(), rng.standard_normal((3, 4)), rng)
    assert not result.ok and result.rel_error > 1e-2
