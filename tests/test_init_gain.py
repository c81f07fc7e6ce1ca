"""Init schemes (PyTorch's definitions) and the thesis's difference gain (wang2022_thesis
Definition 1, Eq. 3.4, Table 3.1): closed forms against Monte Carlo, and CNN-7's values.

Monte Carlo tolerances are about 5 per-trial standard deviations, measured once over 16
inits (seeds 100–115) on the same inputs; each test here uses one init per scheme."""

import math

import numpy as np
import pytest

import ntkflow.nets as N
import ntkflow.analysis as NA
from ntkflow.analysis.gain import affine_indices

SCHEMES = ("torch", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal", "ntk", "ibp")
UNIFORM_BOUND = {  # U(±b): b(fan_in, fan_out)
    "torch": lambda i, o: 1 / math.sqrt(i),
    "xavier_uniform": lambda i, o: math.sqrt(6 / (i + o)),
    "kaiming_uniform": lambda i, o: math.sqrt(6 / i),
}
NORMAL_STD = {
    "xavier_normal": lambda i, o: math.sqrt(2 / (i + o)),
    "kaiming_normal": lambda i, o: math.sqrt(2 / i),
    "ntk": lambda i, o: 1.0,
    "ibp": lambda i, o: math.sqrt(2 * math.pi) / i,
}


def _weights(net, params, shape):
    """[(W, bias, fan_in, fan_out)] of the affine layers."""
    shapes = net.shapes(shape)
    return [(np.asarray(params[k]["weight"], np.float64), np.asarray(params[k]["bias"]),
             net.layers[k].fan_in(shapes[k]), net.layers[k].fan_out(shapes[k])) for k in affine_indices(net)]


def test_schemes_have_pytorchs_distributions(x64):
    # a conv (fan_in 45, fan_out 108), a dense 300 → 400 and a dense 400 → 10
    net, shape = N.conv_net([(12, 3, 1, 0)], [400], 10, (5, 7, 7)), (5, 7, 7)
    for s in SCHEMES:
        for W, b, fi, fo in _weights(net, net.init(1, shape, init=s), shape):
            se = 5 / math.sqrt(W.size)  # 5 relative standard errors of a mean of W.size entries (CV ≤ 1)
            assert np.all(b == 0) == (s != "torch"), s
            assert abs(np.abs(W).mean() / NA.mean_abs_weight(s, fi, fo, rows=W.shape[0]) - 1) < se, (s, W.shape)
            if s in UNIFORM_BOUND:
                bound = UNIFORM_BOUND[s](fi, fo)
                assert bound * (1 - 20 / W.size) < np.abs(W).max() <= bound, (s, W.shape)
                assert abs(W.var() / (bound ** 2 / 3) - 1) < 1.5 * se
            elif s in NORMAL_STD:
                assert abs(W.std() / NORMAL_STD[s](fi, fo) - 1) < se, (s, W.shape)
            else:  # orthogonal, per layer on (out, fan_in): orthonormal rows (conv 12×45, dense 10×400)
                M = W.reshape(W.shape[0], -1)  # or columns (dense 400×300)
                G = M @ M.T if M.shape[0] <= M.shape[1] else M.T @ M
                np.testing.assert_allclose(G, np.eye(len(G)), atol=1e-12)
    with pytest.raises(ValueError, match="init: unknown scheme 'xavier'.*kaiming_normal, orthogonal"):
        net.init(0, shape, init="xavier")


def test_table_3_1_closed_forms_and_its_slips():
    fans, table = NA.TABLE_3_1["fans"], NA.TABLE_3_1
    cf = NA.difference_gain_closed_form
    for n in fans:  # equal fans, square orthogonal: the table's setting
        assert cf("xavier_uniform", n) == pytest.approx(math.sqrt(3) / 4 * math.sqrt(n), rel=1e-12)
        assert cf("xavier_uniform", n, variant="print") == pytest.approx(cf("torch", n), rel=1e-12)  # the slip
        assert cf("xavier_normal", n) == pytest.approx(cf("xavier_normal", n, variant="print"), rel=1e-12)
        assert cf("kaiming_uniform", n) == pytest.approx(math.sqrt(6) / 4 * math.sqrt(n), rel=1e-12)
        assert cf("kaiming_normal", n) == pytest.approx(math.sqrt(n / math.pi), rel=1e-12)
        assert cf("ibp", n) == pytest.approx(1.0, rel=1e-12)
    # the printed numbers (the thesis's means of 100 trials) agree with the derived closed forms:
    # within 0.1 % (+ half a printed digit) for n_i ≥ 576, within 1 % at n_i = 27 (the largest
    # misses there: Kaiming (uniform) 3.20 vs (√6/4)√27 = 3.18, IBP 1.01 vs 1)
    for s in ("torch", "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal", "ibp"):
        for n, v in zip(fans, table[s]):
            digit = 0.5 * 10.0 ** -len(repr(v).split(".")[1])
            assert abs(cf(s, n) / v - 1) <= (0.01 if n == 27 else 0.001) + digit / v, (s, n, cf(s, n), v)
    # the printed Kaiming cells, read literally, miss their own numbers by far
    for s in ("kaiming_uniform", "kaiming_normal"):
        assert all(abs(cf(s, n, variant="print") / v - 1) > 0.5 for n, v in zip(fans, table[s]))
    # orthogonal: exact sphere marginal, slightly above Xavier (Gaussian)'s √n/√(2π) — as printed
    assert cf("orthogonal", 27) == pytest.approx(math.sqrt(27 / (2 * math.pi)) * (1 + 1 / 108), rel=1e-3)
    with pytest.raises(ValueError, match="scheme: Table 3.1 prints no closed form"):
        cf("orthogonal", 27, variant="print")
    with pytest.raises(ValueError, match="variant"):
        cf("torch", 27, variant="printed")
    with pytest.raises(ValueError, match="fan_in"):
        cf("torch", 0)


def test_closed_forms_match_monte_carlo_on_a_wide_mlp():
    n = 256
    net = N.mlp((n, n, n))
    X = np.random.default_rng(0).standard_normal((8, n)).astype(np.float32)
    cf = NA.difference_gain_closed_form
    for s in ("torch", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal", "ibp"):
        g = NA.difference_gain(net, net.init(5, (n,), init=s, dtype=np.float32), X, 0.1)
        assert g.shape == (2,)
        np.testing.assert_allclose(g, cf(s, n), rtol=0.06, err_msg=s)  # per-trial sd ≤ 1.2 % (16 inits)
        np.testing.assert_allclose(NA.expected_difference_gain(net, (n,), s), cf(s, n), rtol=1e-12)  # no padding
        if s in ("xavier_uniform", "kaiming_uniform", "kaiming_normal"):  # the print does not fit
            assert np.all(np.abs(g / cf(s, n, variant="print") - 1) > 0.3), s
        if s == "torch":  # ... PyTorch's default does fit Table 3.1's "Xavier (uniform)" ¼√n
            np.testing.assert_allclose(g, cf("xavier_uniform", n, variant="print"), rtol=0.06)


def test_orthogonal_gain_at_fan_in_32768_is_the_tables_72_22():
    # CNN-7's FC layer has fan-in 32768 and 512 rows; the gain depends on the fan-in only
    # (rows ≤ fan-in), so a 64-row layer measures it at a fraction of the QR's cost.
    net = N.mlp((32768, 64))
    X = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    g = NA.difference_gain(net, net.init(0, (8,), init="orthogonal", dtype=np.float32), X, 0.1)
    assert NA.difference_gain_closed_form("orthogonal", 32768, rows=512) == pytest.approx(72.22, abs=0.005)
    assert g[0] == pytest.approx(72.22, rel=0.02)


# per affine layer after the first: conv2, conv3 (stride 2), conv4, conv5, FC 32768→512, logits
CNN7_RTOL = np.array([0.15, 0.15, 0.025, 0.02, 0.02, 0.06])  # ≈ 5 × per-trial sd (2.9, 2.9, 0.5, 0.3, 0.3, 1.2 %)


def test_cnn7_measured_gains_match_the_expectation_and_table_3_1():
    net = N.cnn7()
    shape = (3, 32, 32)
    X = np.random.default_rng(0).standard_normal((1, *shape)).astype(np.float32)  # like normalized images
    fans = [27, 576, 576, 1152, 1152, 32768, 512]
    # uniform and Gaussian schemes alike are rescalings of one draw, so four schemes cover
    # the table's rows (kaiming_normal and xavier_uniform: on the MLP above)
    for s in ("torch", "xavier_normal", "kaiming_uniform", "ibp"):
        g = NA.difference_gain(net, net.init(7, shape, init=s, dtype=np.float32), X, 8 / 255)
        e = NA.expected_difference_gain(net, shape, s)
        assert np.all(np.abs(g / e - 1) < CNN7_RTOL), (s, g, e)
        # zero padding: the convs' expected gains sit below (n_i/2)E|W|, the dense layers' on it
        closed = np.array([NA.difference_gain_closed_form(s, n, fo)
                           for n, fo in zip(fans[1:], [576, 1152, 1152, 1152, 512, 10])])  # PyTorch's fan_out
        assert np.all(e[:4] / closed[:4] < 0.99) and np.all(e[:4] / closed[:4] > 0.9)
        np.testing.assert_allclose(e[4:], closed[4:], rtol=1e-12)
        fc = g[4]  # fan-in 32768: Table 3.1's last column
        if not s.startswith("xavier"):
            assert fc == pytest.approx(NA.TABLE_3_1[s][3], rel=0.02), s
        else:  # Glorot with CNN-7's real fans (32768 in, 512 out) fits neither Xavier row of the table
            assert fc == pytest.approx(NA.difference_gain_closed_form(s, 32768, 512), rel=0.02)
            assert abs(fc / NA.TABLE_3_1["torch"][3] - 1) > 0.3 and abs(fc / NA.TABLE_3_1["xavier_normal"][3] - 1) > 0.3


def test_difference_gain_rejects_bad_input(x64):
    net = N.mlp((4, 3))
    p = net.init(0, (5,))
    X = np.ones((2, 5))
    for eps in (0.0, -1.0, float("nan"), "a"):
        with pytest.raises(ValueError, match="eps"):
            NA.difference_gain(net, p, X, eps)
    with pytest.raises(ValueError, match="X"):
        NA.difference_gain(net, p, np.ones(5), 0.1)
    with pytest.raises(ValueError, match="params"):
        NA.difference_gain(net, p, np.ones((2, 6)), 0.1)
    with pytest.raises(ValueError, match="two affine"):
        one = N.mlp((3,))
        NA.difference_gain(one, one.init(0, (5,)), X, 0.1)
    with pytest.raises(ValueError, match="scheme"):
        NA.expected_difference_gain(net, (5,), "he")
    g = NA.difference_gain(net, p, X, 0.1)
    assert isinstance(g, np.ndarray) and g.dtype == np.float64 and g.shape == (1,)
