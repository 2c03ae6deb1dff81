"""EfficientNet compound scaling: the formula and the report beside the released B0-B7."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnnlab.analysis.scaling import compound_scaling, scaling_table


def test_compound_scaling_formula():
    d, w, r = compound_scaling(1)
    assert (d, w, r) == pytest.approx((1.2, 1.1, 1.15))
    assert d * w**2 * r**2 == pytest.approx(1.92, abs=0.01)  # "about 2": MACs double per phi
    assert compound_scaling(0) == (1.0, 1.0, 1.0)


def test_scaling_table_shows_formula_and_release():
    table = scaling_table()
    assert "efficientnet_b7" in table and "1.2^phi" in table
    b7 = next(line for line in table.splitlines() if line.startswith("efficientnet_b7"))
    assert "3.1" in b7 and "600" in b7 and "3.58" in b7  # released depth, resolution; 1.2^7 = 3.58


def test_cli_models_scaling():
    out = subprocess.run([sys.executable, "-m", "cnnlab", "models", "--scaling"], capture_output=True,
                         text=True, check=True).stdout
    assert out.count("efficientnet_b") == 8
