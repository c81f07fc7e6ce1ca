"""The thesis's warm-up regularizers (wang2022_thesis Eqs. 3.5, 3.6; λ schedule after Eq. 3.8)
against a numpy reference with hand-written interval arithmetic (Eq. 3.1's W₊/W₋ form)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkflow.nets as N
from ntkflow.objectives.regularizers import relu_balance, tightness, warmup_lambda


def _np_relu_inputs(params, lo, hi):
    """IBP bounds of each hidden pre-activation of an MLP (Flatten, Dense, ReLU, ..., Dense), Eq. 3.1."""
    dense = [p for p in params if p]
    out, l, u = [], lo.reshape(len(lo), -1), hi.reshape(len(hi), -1)
    for p in dense[:-1]:
        W, b = np.asarray(p["weight"]), np.asarray(p["bias"])
        Wp, Wm = np.maximum(W, 0), np.minimum(W, 0)
        hl, hu = l @ Wp.T + u @ Wm.T + b, u @ Wp.T + l @ Wm.T + b
        out.append((hl, hu))
        l, u = np.maximum(hl, 0), np.maximum(hu, 0)
    return out


def np_tightness(params, lo, hi, tau):
    d0 = np.mean(hi - lo)
    terms = [max(tau - d0 / np.mean(hu - hl), 0.0) for hl, hu in _np_relu_inputs(params, lo, hi)]
    return sum(terms) / (tau * len(terms))


def np_relu_balance(params, lo, hi, tau):
    total, layers = 0.0, _np_relu_inputs(params, lo, hi)
    for hl, hu in layers:
        c = (hl + hu) / 2
        act, inact = hl > 0, hu < 0
        if not (act.any() and inact.any()):
            continue
        alpha = c[act].sum() / -c[inact].sum()
        beta = ((c[act] - c.mean()) ** 2).sum() / ((c[inact] - c.mean()) ** 2).sum()
        total += max(tau - min(alpha, 1 / alpha), 0) + max(tau - min(beta, 1 / beta), 0)
    return total / (tau * len(layers))


def _case(seed, eps, n=6, d=4, widths=(7, 6, 3), bias_shift=0.0):
    net = N.mlp(widths)
    p = net.init(seed, (d,), init="kaiming_normal")
    rng = np.random.default_rng(seed)
    p = tuple({k: v + bias_shift * rng.standard_normal(v.shape) if k == "bias" else v for k, v in q.items()}
              for q in p)
    X = rng.standard_normal((n, d))
    return net, p, X - eps, X + eps


def _finite_grad(f, p):
    g = jax.jit(jax.grad(f))(p)  # one compile: eager op-by-op gradients were most of the time
    return all(np.all(np.isfinite(np.asarray(v))) for v in jax.tree_util.tree_leaves(g)), g


def test_regularizers_match_the_numpy_reference(x64):
    jt, jr = jax.jit(tightness), jax.jit(relu_balance)  # same shapes throughout: one compile each
    hit = {"balanced_layer": 0, "skipped_layer": 0, "tight_positive": 0}
    for seed in range(6):
        for eps in (0.05, 0.3, 1.5):
            net, p, lo, hi = _case(seed, eps, bias_shift=1.0)
            for tau in (0.3, 0.9):
                want_t, want_r = np_tightness(p, lo, hi, tau), np_relu_balance(p, lo, hi, tau)
                assert float(jt(net, p, lo, hi, tau)) == pytest.approx(want_t, rel=1e-12, abs=1e-15)
                assert float(jr(net, p, lo, hi, tau)) == pytest.approx(want_r, rel=1e-12, abs=1e-15)
                hit["tight_positive"] += want_t > 0
            for hl, hu in _np_relu_inputs(p, lo, hi):
                both = (hl > 0).any() and (hu < 0).any()
                hit["balanced_layer" if both else "skipped_layer"] += 1
    assert all(v > 0 for v in hit.values()), hit  # the cases exercise every branch


def test_regularizers_are_zero_when_the_conditions_hold(x64):
    # tightness: τ·Ê(Δ_i) ≤ Ê(Δ_0) for every layer (weights scaled down)
    net, p, lo, hi = _case(1, 0.2)
    small = jax.tree_util.tree_map(lambda v: 0.1 * v, p)
    assert float(tightness(net, small, lo, hi, 1.0)) == 0.0
    # balance: mirrored units (w, b) and (−w, −b) with |c| > r give α_i = β_i = 1
    w = np.array([[1.0, -0.5]])
    mirror = N.mlp((2, 1))
    q = ({}, {"weight": jnp.asarray(np.vstack([w, -w])), "bias": jnp.asarray([2.0, -2.0])}, {},
         {"weight": jnp.ones((1, 2)), "bias": jnp.zeros(1)})
    X = np.random.default_rng(0).uniform(-0.5, 0.5, (5, 2))
    assert float(relu_balance(mirror, q, X - 0.1, X + 0.1, 1.0)) == pytest.approx(0.0, abs=1e-14)
    assert np_relu_balance(q, X - 0.1, X + 0.1, 1.0) == pytest.approx(0.0, abs=1e-14)


def test_gradients_are_finite_and_match_finite_differences(x64):
    net, p, lo, hi = _case(3, 0.3, bias_shift=1.0)
    tau = 0.9
    tight, balance = jax.jit(tightness), jax.jit(relu_balance)  # eager op-by-op calls took seconds
    for fn in (tight, balance):
        ok, g = _finite_grad(lambda q: fn(net, q, lo, hi, tau), p)
        assert ok
        # directional derivative along a random direction vs a central difference (masks fixed at h = 1e-6)
        leaves, tree = jax.tree_util.tree_flatten(p)
        rng = np.random.default_rng(0)
        v = jax.tree_util.tree_unflatten(tree, [rng.standard_normal(x.shape) for x in leaves])
        h = 1e-6
        shift = lambda s: jax.tree_util.tree_map(lambda a, b: a + s * b, p, v)  # noqa: E731
        fd = (float(fn(net, shift(h), lo, hi, tau)) - float(fn(net, shift(-h), lo, hi, tau))) / (2 * h)
        ad = sum(float(jnp.vdot(a, b)) for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(v)))
        assert ad == pytest.approx(fd, rel=1e-5, abs=1e-8)
        assert abs(ad) > 1e-6  # the case is not on a flat piece
    # degenerate cases: zero-width boxes (ε = 0: 0/0 in Eq. 3.5) and no inactive neuron anywhere
    net0, p0, lo0, hi0 = _case(3, 0.0)
    for fn in (tight, balance):
        assert np.isfinite(float(fn(net0, p0, lo0, hi0, tau))) and _finite_grad(lambda q: fn(net0, q, lo0, hi0, tau), p0)[0]
    assert float(tight(net0, p0, lo0, hi0, tau)) == 0.0
    up = tuple({k: v + 100.0 if k == "bias" else jnp.abs(v) for k, v in q.items()} for q in p)  # all active
    assert float(balance(net, up, lo, hi, tau)) == 0.0 and _finite_grad(lambda q: balance(net, q, lo, hi, tau), up)[0]


def test_jit_with_traced_tau_and_bad_input(x64):
    net, p, lo, hi = _case(2, 0.3, bias_shift=1.0)
    for fn in (tightness, relu_balance):
        jitted = jax.jit(lambda q, t, fn=fn: fn(net, q, lo, hi, t))
        assert float(jitted(p, 0.7)) == pytest.approx(float(fn(net, p, lo, hi, 0.7)), rel=1e-13)
        for tau in (0.0, 1.5, float("nan")):
            with pytest.raises(ValueError, match="tau"):
                fn(net, p, lo, hi, tau)
    with pytest.raises(ValueError, match="no ReLU"):
        lin = N.mlp((3,))
        tightness(lin, lin.init(0, (4,)), lo, hi, 0.5)


def test_warmup_lambda():
    assert float(warmup_lambda(0.5, 0.0, 0.4)) == 0.5
    assert float(warmup_lambda(0.5, 0.1, 0.4)) == pytest.approx(0.375)
    assert float(warmup_lambda(0.5, 0.4, 0.4)) == 0.0 and float(warmup_lambda(0.5, 0.6, 0.4)) == 0.0
    assert float(jax.jit(lambda e: warmup_lambda(2.0, e, 0.5))(0.25)) == pytest.approx(1.0)
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="eps_target"):
            warmup_lambda(0.5, 0.1, bad)
