"""The two-layer ReLU network of Eq. 1 and its IBP lower margin (Eq. 3).

Shapes: ``W`` (m, d), ``a`` (m,) in {±1}, ``X`` (n, d), ``y`` (n,) in {±1}.
Public functions take numpy or JAX arrays and return float64 numpy arrays.
Internals (``_name``) are jitted pure functions that assume valid float input.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as V
from .._jax import mmt, x64

__all__ = ["init_params", "margin", "ibp_lower_margin", "indicators"]


# ----------------------------------------------------------------------------- internals
def _signs(a, y):
    """s_ir = y_i a_r, shape (n, m)."""
    return y[:, None] * a[None, :]


def _ibp_preact(W, a, X, y, eps, l1=None):
    """IBP pre-activation bound of neuron r on sample i, (n, m).

    w_rᵀx_i − ε‖w_r‖₁ where y_i a_r = +1 (a lower bound is needed) and
    w_rᵀx_i + ε‖w_r‖₁ where y_i a_r = −1 (an upper bound is needed).
    ``l1`` = ‖w_r‖₁ when the caller has it: XLA on CPU fuses that row reduction into
    the product's epilogue and runs the product 3× slower, so training carries it.
    """
    s = _signs(a, y)
    if l1 is None:
        l1 = jnp.sum(jnp.abs(W), axis=1)
    return mmt(X, W) - s * (eps * l1)[None, :], s


def _signed_relu_sum(z, s):
    """Σ_r s_ir relu(z_ir), (n,): the margin (z = X Wᵀ) or its IBP bound (z of ``_ibp_preact``)
    before the m^-1/2 of Eq. 1."""
    return jnp.sum(s * jax.nn.relu(z), axis=1)


@jax.jit
def _margin(W, a, X, y):
    return _signed_relu_sum(mmt(X, W), _signs(a, y)) / jnp.sqrt(W.shape[0])


@jax.jit
def _ibp_lower_margin(W, a, X, y, eps, l1=None):
    return _signed_relu_sum(*_ibp_preact(W, a, X, y, eps, l1)) / jnp.sqrt(W.shape[0])


@jax.jit
def _active(W, a, X, y, eps, l1=None):
    """A_ri = A⁺_ri + A⁻_ri as a boolean (n, m) array, and the signs s_ir."""
    z, s = _ibp_preact(W, a, X, y, eps, l1)
    return z > 0, s


# ----------------------------------------------------------------------------- public API
#: Largest width m or input dimension d ``init_params`` draws (a 32-bit signed size).
SIZE_MAX = 2**31 - 1


def init_params(seed: int, m: int, d: int):
    """Random initialization of Sec. 3.1: w_r ~ N(0, I_d), a_r ~ unif{±1}.

    Returns ``(W, a)`` as float64 arrays of shapes (m, d) and (m,).
    The same ``seed`` gives the same numbers.
    """
    seed = V.seed(seed)
    m = V.positive_int("m", m, maximum=SIZE_MAX)
    d = V.positive_int("d", d, maximum=SIZE_MAX)
    return tuple(np.asarray(v) for v in _init_params(seed, m, d))


@x64
def _init_params(seed, m, d):
    kw, ka = jax.random.split(jax.random.PRNGKey(seed))
    return sample_neurons(kw, ka, m, d)


def sample_neurons(kw, ka, m: int, d: int):
    """m neurons from the initialization distribution (internal; inside x64)."""
    W = jax.random.normal(kw, (m, d), dtype=jnp.float64)
    a = jnp.where(jax.random.bernoulli(ka, 0.5, (m,)), 1.0, -1.0).astype(jnp.float64)
    return W, a


@x64
def margin(W, a, X, y):
    """u_i = y_i f(W, a, x_i) with f of Eq. 1: f = m^-1/2 Σ_r a_r relu(w_rᵀx). Shape (n,)."""
    W, a, X, y, _, _ = V.device_problem(W, a, X, y)
    return np.asarray(_margin(W, a, X, y))


@x64
def ibp_lower_margin(W, a, X, y, eps):
    """IBP lower bound u̲_i of the margin over the ℓ∞ ball of radius ε (Eq. 3). Shape (n,).

    u̲_i = m^-1/2 Σ_r [1(y_i a_r = 1) relu(w_rᵀx_i − ε‖w_r‖₁) − 1(y_i a_r = −1) relu(w_rᵀx_i + ε‖w_r‖₁)].

    Departs from the printed Eq. 3, which *adds* the y_i a_r = −1 term: a term with
    y_i a_r = −1 enters the margin as −relu(·), so its lower bound is minus the upper
    interval bound. The paper's own derivative ∂u̲_i/∂w_r (Sec. 3.4) and Eq. 6 need
    this minus sign; with the printed plus sign u̲ would not lower-bound the margin.
    """
    W, a, X, y, eps, l1 = V.device_problem(W, a, X, y, eps)
    return np.asarray(_ibp_lower_margin(W, a, X, y, eps, l1))


@x64
def indicators(W, a, X, y, eps):
    """Indicators of Sec. 3.4 as boolean (n, m) arrays ``(A_plus, A_minus)``.

    A⁺_ri = 1(y_i a_r = 1, w_rᵀx_i − ε‖w_r‖₁ > 0),  A⁻_ri = 1(y_i a_r = −1, w_rᵀx_i + ε‖w_r‖₁ > 0).
    """
    W, a, X, y, eps, l1 = V.device_problem(W, a, X, y, eps)
    act, s = _active(W, a, X, y, eps, l1)
    return np.asarray(act & (s > 0)), np.asarray(act & (s < 0))



# Public names of the internals above, for the bound engine's two-layer fast path (ntkflow.bounds).
ibp_lower_margin_raw = _ibp_lower_margin
