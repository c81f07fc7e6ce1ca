"""The fast public paths equal the generic paths they replace.

``device_problem`` moves W without jax's slow copy and hands ‖w_r‖₁ to the internals;
the flow carries ‖w_r‖₁ through its steps. Both must give today's numbers (≤ 1e-12).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkflow as nf
from conftest import make_problem
from ntkflow._jax import row_norms, to_device
from ntkflow.paper.flow import _fixed_segment
from ntkflow.paper.loss import _robust_loss, _robust_loss_and_grad
from ntkflow.paper.model import _ibp_lower_margin


def _generic(fn, *args):
    with jax.enable_x64(True):
        return np.asarray(fn(*(jnp.asarray(v) if isinstance(v, np.ndarray) else v for v in args)))


def _layouts(W):
    """W as a user may hold it: numpy's own (16-byte aligned), 64-byte aligned, shifted off any
    alignment, Fortran order, a strided view, float32."""
    buf = np.empty(W.size + 9)
    shifted = buf[1:1 + W.size].reshape(W.shape)  # 8 bytes off whatever numpy gave
    shifted[...] = W
    wide = np.zeros((W.shape[0], 2 * W.shape[1]))
    wide[:, ::2] = W
    with jax.enable_x64(True):
        aligned = np.asarray(jnp.asarray(W))  # jax's own memory: aligned, read-only
    return {"numpy": W.copy(), "aligned": aligned, "shifted": shifted, "fortran": np.asfortranarray(W),
            "strided": wide[:, ::2], "float32": W.astype(np.float32)}


@pytest.mark.parametrize("eps", [0.0, 0.07])
def test_public_gradient_equals_generic_path(eps):
    W, a, X, y = make_problem(seed=3, n=9, m=300, d=11)
    for name, Wl in _layouts(W).items():
        ref = _generic(lambda *v: _robust_loss_and_grad(*v)[1], np.array(Wl, np.float64), a, X, y, eps)
        np.testing.assert_allclose(nf.robust_loss_grad(Wl, a, X, y, eps), ref, rtol=0, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(nf.robust_loss(W, a, X, y, eps), _generic(_robust_loss, W, a, X, y, eps),
                               rtol=1e-13)
    np.testing.assert_allclose(nf.ibp_lower_margin(W, a, X, y, eps), _generic(_ibp_lower_margin, W, a, X, y, eps),
                               rtol=0, atol=1e-12)


def test_to_device_keeps_values_and_leaves_the_input_alone():
    W = np.random.default_rng(0).standard_normal((37, 13))
    for name, Wl in _layouts(W).items():
        before = np.array(Wl)
        with jax.enable_x64(True):
            d = to_device(np.asarray(Wl, np.float64))
            assert d.dtype == jnp.float64 and d.shape == W.shape
            np.testing.assert_array_equal(np.asarray(d), before.astype(np.float64), err_msg=name)
            np.testing.assert_allclose(np.asarray(row_norms(d)), np.abs(before.astype(np.float64)).sum(1), rtol=1e-14)
        np.testing.assert_array_equal(Wl, before)  # the input is untouched


def _old_segment(W, a, X, y, eps, h, k, method):
    """The flow's reference fixed-step loop: ‖w_r‖₁ recomputed from W inside the product."""
    f = lambda w: -_robust_loss_and_grad(w, a, X, y, eps)[1]  # noqa: E731

    def step(_, W):
        if method == "euler":
            return W + h * f(W)
        k1 = f(W)
        k2 = f(W + h / 2 * k1)
        k3 = f(W + h / 2 * k2)
        k4 = f(W + h * k3)
        return W + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    return jax.lax.fori_loop(0, k, step, W)


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_flow_segment_equals_generic_steps(method):
    W, a, X, y = make_problem(seed=5, n=8, m=200, d=7)
    with jax.enable_x64(True):
        args = [jnp.asarray(v) for v in (W, a, X, y)]
        new = np.asarray(_fixed_segment(*args, 0.05, 1e-2, 25, method))
        generic = np.asarray(_fixed_segment(*args, 0.05, 1e-2, 25, method, carry_norms=False))
        old = np.asarray(jax.jit(_old_segment, static_argnames=("method",))(*args, 0.05, 1e-2, 25, method=method))
    assert np.linalg.norm(new - W) > 1e-3  # the weights moved
    np.testing.assert_allclose(new, old, rtol=0, atol=1e-12)
    np.testing.assert_allclose(generic, old, rtol=0, atol=1e-12)


def test_gradient_flow_unchanged_by_fast_path():
    """A whole flow (validation, device transfer, carried norms) against the generic loop."""
    W, a, X, y = make_problem(seed=6, n=6, m=60, d=5)
    tr = nf.gradient_flow(W, a, X, y, 0.05, 0.2, solver="rk4", dt=0.01, save_at=[0.0, 0.2], certify=False,
                          track_gram=False)
    with jax.enable_x64(True):
        old = np.asarray(_old_segment(*(jnp.asarray(v) for v in (W, a, X, y)), 0.05, 0.01, 20, "rk4"))
    np.testing.assert_allclose(tr.W, old, rtol=0, atol=1e-12)
