"""The engine's validation boundary: bad input to bounds, attacks and kernels is a one-line
ValueError naming the argument — never a silently dropped imaginary part, never NaN bounds."""

import subprocess
import sys

import jax
import numpy as np
import pytest

from ntkflow import attacks, bounds, kernels, nets
from ntkflow.cli import main


@pytest.fixture(scope="module")
def small():
    net = nets.mlp((5, 3), input_shape=(4,))
    params = net.init(0, (4,))
    X = np.random.default_rng(0).uniform(0.2, 0.8, (3, 4))
    return net, params, X, np.array([0, 1, 2])


ENGINE = {
    "margin_bounds": lambda net, p, X, y: bounds.margin_bounds(net, p, X, y, 0.01),
    "pgd_margin": lambda net, p, X, y: attacks.pgd_margin(net, p, X, y, 0.01, steps=2),
    "margin_gram": lambda net, p, X, y: kernels.margin_gram(net, p, X, y, 0.01),
}


@pytest.mark.parametrize("fn", ENGINE)
def test_complex_inputs_are_refused(small, fn):
    net, params, X, y = small
    with pytest.raises(ValueError, match="^X: complex"):
        ENGINE[fn](net, params, X + 1e-3j, y)


@pytest.mark.parametrize("fn", ENGINE)
@pytest.mark.parametrize("how, match", [("complex", "complex weights"), ("text", "real number array")])
def test_bad_params_are_refused_naming_the_leaf(small, fn, how, match):
    net, params, X, y = small
    bad = [dict(layer) for layer in params]
    w = np.asarray(bad[1]["weight"])
    bad[1]["weight"] = {"complex": w + 1j, "text": w.astype(str)}[how]
    with pytest.raises(ValueError, match=rf"params\[1\]\['weight'\].*{match}"):
        ENGINE[fn](net, tuple(bad), X, y)


def test_a_weight_beyond_float32_is_refused_in_a_float32_run(small):
    net, params, X, y = small
    bad = [dict(layer) for layer in params]
    bad[1]["weight"] = np.asarray(bad[1]["weight"], np.float64) * 1e300
    with pytest.raises(ValueError, match="overflows float32"):
        bounds.margin_bounds(net, tuple(bad), X.astype(np.float32), y, 0.01)
    with jax.enable_x64(True):  # the same weights are representable in a float64 run
        lo = bounds.margin_bounds(net, tuple(bad), X.astype(np.float64), y, 0.01)
    assert not np.any(np.isnan(np.asarray(lo)))


def test_a_bad_cli_option_is_one_line_naming_it():
    r = subprocess.run([sys.executable, "-m", "ntkflow.cli", "flow", "--widths", "abc"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "--widths" in r.stderr and "usage" not in r.stderr
    with pytest.raises(SystemExit) as e:
        main(["check", "--width", "many"])
    assert e.value.code == 2
