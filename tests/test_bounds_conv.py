"""The matrix-product forms of a convolution and its transpose (nets/conv.py) against lax's, in float64.

The backward pass of the bounds pushes every (sample × row) through a Conv2d with
``conv_transpose_gemm``; it must equal the vjp of the layer's own ``lax.conv_general_dilated``
(the generic ``affine_back_vjp``), its gradient in the weights too, and the bounds built on it
stay sound at random points and corners.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkflow.bounds as B
import ntkflow.nets as N
from ntkflow.bounds.ops import affine_back, affine_back_vjp
from ntkflow.nets.conv import conv_gemm, conv_transpose_gemm

pytestmark = pytest.mark.usefixtures("x64")

# (in_shape, Conv2d): strides 1/2/3, paddings 0/1/2, dilation 2, a non-square kernel, a bias-free layer
CONVS = [
    ((2, 7, 7), N.layers.Conv2d(3, 3, 1, 0)),
    ((1, 9, 8), N.layers.Conv2d(4, 4, 2, 0)),
    ((3, 8, 9), N.layers.Conv2d(2, (3, 2), (2, 3), (1, 2))),
    ((2, 9, 9), N.layers.Conv2d(3, 3, 1, 1, dilation=2, bias=False)),
    ((2, 6, 6), N.layers.Conv2d(2, 2, 1, 1, scale="fan_in")),
]


def _layer_params(layer, in_shape, seed):
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(rng.standard_normal(s)) for k, s in layer.param_shapes(in_shape).items()}


@pytest.mark.parametrize("k", range(len(CONVS)))
def test_conv_gemm_equals_lax_convolution(k):
    in_shape, layer = CONVS[k]
    p = _layer_params(layer, in_shape, k)
    x = jnp.asarray(np.random.default_rng(10 + k).standard_normal(in_shape))
    want = layer._conv(p["weight"], x)
    got = conv_gemm(x, p["weight"], layer.stride, layer.padding, layer.dilation)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k", range(len(CONVS)))
def test_transposed_rows_equal_the_vjp_of_the_layer_and_so_do_their_weight_gradients(k):
    in_shape, layer = CONVS[k]
    p = _layer_params(layer, in_shape, k)
    out_shape = layer.out_shape(in_shape)
    A = jnp.asarray(np.random.default_rng(20 + k).standard_normal((5, *out_shape)))
    At, c = affine_back(layer, p, A, in_shape)
    Av, cv = affine_back_vjp(layer, p, A, in_shape)
    assert At.shape == (5, *in_shape)
    np.testing.assert_allclose(At, Av, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c, cv, rtol=1e-12, atol=1e-12)
    # the definition: <A_s, L x> = <(A∘L)_s, x> for a random x
    x = jnp.asarray(np.random.default_rng(30 + k).standard_normal(in_shape))
    Lx = layer.linear(p["weight"], x)
    np.testing.assert_allclose(jnp.einsum("s...,...->s", A, Lx), jnp.einsum("s...,...->s", At, x), rtol=1e-11)
    T = jnp.asarray(np.random.default_rng(40 + k).standard_normal(At.shape))
    g = lambda f: jax.grad(lambda W, A: jnp.sum(jnp.sin(f({**p, "weight": W}, A)[0]) * T), argnums=(0, 1))  # noqa: E731
    gw, ga = g(lambda q, A: affine_back(layer, q, A, in_shape))(p["weight"], A)
    vw, va = g(lambda q, A: affine_back_vjp(layer, q, A, in_shape))(p["weight"], A)
    np.testing.assert_allclose(gw, vw, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(ga, va, rtol=1e-11, atol=1e-11)


def test_transposed_rows_batch_over_samples_under_vmap():
    in_shape, layer = CONVS[1]
    p = _layer_params(layer, in_shape, 1)
    A = jnp.asarray(np.random.default_rng(3).standard_normal((4, 3, *layer.out_shape(in_shape))))
    got = jax.vmap(lambda a: affine_back(layer, p, a, in_shape)[0])(A)
    want = conv_transpose_gemm(A.reshape(12, *A.shape[2:]), p["weight"], layer.stride, layer.padding,
                               layer.dilation, in_shape).reshape(4, 3, *in_shape)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["crown_ibp", "crown", "cap_ibp"])
def test_backward_bounds_through_strided_padded_convs_are_sound_at_points_and_corners(method):
    net = N.conv_net([(3, 3, 2, 1), (2, 2, 1, 0)], [5], 3, (1, 5, 5))
    rng = np.random.default_rng(7)
    params = net.init(7, (1, 5, 5))
    X, y, eps = rng.uniform(0, 1, (3, 1, 5, 5)), np.array([0, 1, 2]), 0.15
    lb = np.asarray(B.margin_bounds(net, params, X, y, eps, method, clip=(0.0, 1.0)))
    for i in range(3):
        lo, hi = np.maximum(X[i] - eps, 0), np.minimum(X[i] + eps, 1)
        corners = rng.integers(0, 2, (64, lo.size)).astype(float)
        pts = np.concatenate([rng.uniform(size=(200, lo.size)), corners])
        P = lo.reshape(1, -1) + pts * (hi - lo).reshape(1, -1)
        f = np.asarray(net.apply(params, P.reshape(-1, 1, 5, 5)))
        margins = f[:, [y[i]]] - np.delete(f, y[i], axis=1)
        assert np.all(lb[i] <= margins.min(axis=0) + 1e-10)
