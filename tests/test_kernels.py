"""ntkflow.kernels.margin_gram: generic J·Jᵀ of any bound's margins, and its Eq. 6 fast path."""

import jax
import jax.flatten_util
import numpy as np
import pytest
from hypothesis import given, strategies as st

import ntkflow as nf
import ntkflow.kernels as K
import ntkflow.nets as N
from conftest import make_problem
from ntkflow.nets import inputs as NI
from ntkflow.bounds.engine import sample_bounds

CNN = (N.conv_net([(2, 2, 1, 0)], [4], 3, (1, 4, 4)), (1, 4, 4))


pytestmark = pytest.mark.usefixtures("x64")


def direct_gram(net, params, X, y, eps, method):
    """Reference: the full Jacobian of the flattened margins w.r.t. ravel(params), then J Jᵀ."""
    pb = NI.problem(net, params, X, y, eps)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    f = lambda v: jax.vmap(lambda c, l, h: sample_bounds(net, unravel(v), c, l, h, method))(pb.C, pb.lo, pb.hi)  # noqa: E731
    J = np.asarray(jax.jit(jax.jacrev(f))(flat)).reshape(-1, flat.size)
    return J @ J.T


def test_two_layer_fast_path_equals_the_generic_chunked_path():
    W, a, X, y = make_problem(n=6, m=40, d=5)
    net, params = N.two_layer(W, a)
    pb = NI.problem(net, params, X, y, 0.05)
    fast = np.asarray(K.margin_gram(net, params, X, y, 0.05))
    np.testing.assert_array_equal(fast, nf.gram_matrix(W, a, X, y, 0.05))
    for budget in (6 * 5 * 7, 1 << 20):  # 7-row blocks of W (6 chunks, one short), or W whole
        generic = np.asarray(K.jacobian_gram(net, params, pb.C, pb.lo, pb.hi, "ibp", budget=budget))
        np.testing.assert_allclose(generic, fast, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["ibp", "crown"])
def test_chunked_gram_equals_the_full_jacobian_and_its_trace_form(method):
    net, shape = CNN
    params = net.init(0, shape)
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (3, *shape)), np.array([0, 2, 1])
    # budget 300: every leaf whole in one group except the 4×18 hidden weight, taken in 2-row blocks
    H = np.asarray(K.margin_gram(net, params, X, y, 0.05, method, budget=300))
    np.testing.assert_allclose(H, direct_gram(net, params, X, y, 0.05, method), rtol=1e-10, atol=1e-12)
    Ht = np.asarray(K.margin_gram(net, params, X, y, 0.05, method, trace=True, budget=300))
    np.testing.assert_allclose(Ht, np.einsum("ikjk->ij", H.reshape(3, 2, 3, 2)), rtol=1e-10, atol=1e-12)


MLP = N.mlp((5, 4, 3))


@given(seed=st.integers(0, 10_000), eps=st.floats(0.0, 0.3))
def test_gram_is_symmetric_psd(seed, eps):
    params = MLP.init(seed, (4,))
    rng = np.random.default_rng(seed)
    X, y = rng.uniform(0, 1, (4, 4)), rng.integers(0, 3, 4)
    H = np.asarray(K.margin_gram(MLP, params, X, y, eps, "crown_ibp"))
    assert H.shape == (8, 8) and H.dtype == np.float64
    np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-12)
    assert np.linalg.eigvalsh(H).min() >= -1e-10 * max(1.0, np.abs(H).max())


def test_old_module_names_still_import():
    import ntkflow.paper.gram
    import ntkflow.paper.hinf

    assert K.h_inf is ntkflow.paper.hinf.h_inf and K.gram_matrix is ntkflow.paper.gram.gram_matrix
