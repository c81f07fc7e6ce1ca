"""The thesis's *difference gain* (wang2022_thesis Sec. 3.1.0.1, Definition 1, Table 3.1).

Δ_i = h̄_i − h̲_i is the IBP interval width of affine layer i's pre-activations (Eq. 3.2).
At initialization, with W_i independent of the layers below and symmetric about 0,

    E(Δ_i) = n_i E|W_i| E(δ_{i−1}),   E(δ_{i−1}) = ½ E(Δ_{i−1})   (Eq. 3.3),

where δ_{i−1} is the width after the ReLU and n_i the fan-in, so the difference gain from
layer i−1 to layer i is E(Δ_i)/E(Δ_{i−1}) = (n_i/2)·E|W_i| (Eq. 3.4). The ½ is exact (not
only for wide layers): flipping the sign of a unit's weight row and bias maps its centre c
to −c and keeps its radius r, and relu(c+r) − relu(c−r) + relu(−c+r) − relu(−c−r) = 2r.

- ``difference_gain`` measures Ê(Δ_i)/Ê(Δ_{i−1}) on a batch (the thesis's empirical Ê).
- ``difference_gain_closed_form`` is Table 3.1's "Closed form" column; ``variant="print"``
  is the column as printed, ``"derived"`` is (n_i/2)·E|W| of the scheme as implemented in
  ``ntkflow.nets.init`` (PyTorch's definitions). They differ (Table 3.1's slips):
    * "Xavier (uniform)" prints ¼√n_i. That is PyTorch's *default* U(±1/√n_i) ("torch"),
      not Glorot's uniform, whose gain with equal fans is (√3/4)√n_i.
    * The Kaiming cells are garbled: "Kaiming (uniform)" prints √((1/2π)√n_i)/((√3/4)√n_i)
      and "Kaiming (Gaussian)" √((1/π)√n_i); the printed numbers (3.20/14.70/20.77/110.85,
      2.93/13.54/19.15/102.13) fit the derivations (√6/4)√n_i and √n_i/√π instead. The
      print variant evaluates the cells literally.
    * Orthogonal: the print omits a closed form ("non-trivial"). Derived: a row (or column)
      of a Haar orthogonal matrix is uniform on the unit sphere of R^k, k = max(rows, n_i),
      so E|W| = Γ(k/2)/(√π Γ((k+1)/2)); for a square matrix the gain ≈ √n_i/√(2π)·(1 + 1/(4n_i)),
      which gives the printed empirical 2.09/9.58/13.54/72.22.
  Table 3.1 evaluates the Xavier rows with fan_out = fan_in (and orthogonal as square),
  which is not CNN-7's fully connected layer (fan_in 32768, fan_out 512).
- ``expected_difference_gain`` is the exact expectation of the measured ratio at init for
  a given net: the closed form times the share of a conv kernel that falls inside the
  image (zero padding), which the thesis's closed forms leave out.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from .._core.errors import NtkflowError
from .._jax import x64
from ..bounds.ibp import ibp_intervals
from ..nets.base import Net
from ..nets.init import INITS

__all__ = ["difference_gain", "difference_gain_closed_form", "expected_difference_gain", "mean_abs_weight",
           "affine_indices", "TABLE_3_1"]

#: Table 3.1's empirical columns as printed (n_i = 27, 576, 1152, 32768), by our scheme names;
#: "torch" is the table's "Xavier (uniform)" row (see the module docstring).
TABLE_3_1 = {
    "fans": (27, 576, 1152, 32768),
    "torch": (1.30, 6.00, 8.48, 45.25),
    "xavier_normal": (2.07, 9.57, 13.54, 72.2),
    "kaiming_uniform": (3.20, 14.70, 20.77, 110.85),
    "kaiming_normal": (2.93, 13.54, 19.15, 102.13),
    "orthogonal": (2.09, 9.58, 13.54, 72.22),
    "ibp": (1.01, 1.00, 1.00, 1.00),
}


def affine_indices(net) -> list[int]:
    """Positions in ``net.layers`` of the affine layers (Dense, Conv2d)."""
    return [k for k, layer in enumerate(net.layers) if layer.kind == "affine"]


# ----------------------------------------------------------------------------- closed forms
def _sphere_mean_abs(k: int) -> float:
    """E|x_1| for x uniform on the unit sphere of R^k: Γ(k/2)/(√π Γ((k+1)/2))."""
    return math.exp(math.lgamma(k / 2) - math.lgamma((k + 1) / 2)) / math.sqrt(math.pi)


def mean_abs_weight(scheme: str, fan_in: int, fan_out: int | None = None, rows: int | None = None) -> float:
    """E|W_ij| of a weight drawn by ``scheme`` (exact). ``fan_out``: PyTorch's fan_out (Xavier
    only; default fan_in); ``rows``: rows of the (rows, fan_in) matrix (orthogonal only;
    default fan_in: square)."""
    i = _fan("fan_in", fan_in)
    o = i if fan_out is None else _fan("fan_out", fan_out)
    r = i if rows is None else _fan("rows", rows)
    half_normal = math.sqrt(2 / math.pi)  # E|z| for z ~ N(0, 1)
    forms = {
        "torch": lambda: 0.5 / math.sqrt(i),  # U(±b): E|w| = b/2
        "xavier_uniform": lambda: 0.5 * math.sqrt(6 / (i + o)),
        "xavier_normal": lambda: half_normal * math.sqrt(2 / (i + o)),
        "kaiming_uniform": lambda: 0.5 * math.sqrt(6 / i),
        "kaiming_normal": lambda: half_normal * math.sqrt(2 / i),
        "orthogonal": lambda: _sphere_mean_abs(max(r, i)),
        "ntk": lambda: half_normal,
        "ibp": lambda: half_normal * math.sqrt(2 * math.pi) / i,
    }
    if scheme not in forms:
        raise NtkflowError(f"scheme: unknown init scheme {scheme!r}; choose one of {', '.join(forms)}")
    return forms[scheme]()


def _fan(name, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise NtkflowError(f"{name}: must be an integer >= 1, got {v!r}")
    return int(v)


# Table 3.1's "Closed form" cells read literally, as functions of n = n_i.
_PRINTED = {
    "xavier_uniform": lambda n: math.sqrt(n) / 4,
    "xavier_normal": lambda n: math.sqrt(1 / (2 * math.pi)) * math.sqrt(n),
    "kaiming_uniform": lambda n: math.sqrt(math.sqrt(n) / (2 * math.pi)) / (math.sqrt(3) / 4 * math.sqrt(n)),
    "kaiming_normal": lambda n: math.sqrt(math.sqrt(n) / math.pi),
    "ibp": lambda n: 1.0,
}


def difference_gain_closed_form(scheme: str, fan_in: int, fan_out: int | None = None, *, rows: int | None = None,
                                variant: str = "derived") -> float:
    """Table 3.1's closed-form difference gain (n_i/2)·E|W_i| (Eq. 3.4) of ``scheme``.

    Args:
        scheme: a key of ``ntkflow.nets.INITS``.
        fan_in: n_i. fan_out: PyTorch's fan_out, for the Xavier schemes (default fan_in, as
            Table 3.1). rows: rows of the (rows, fan_in) weight, for "orthogonal" (default
            fan_in: square).
        variant: "derived" — (n_i/2)·``mean_abs_weight``; "print" — the table's cell as
            printed (only for the table's rows: xavier_uniform, xavier_normal,
            kaiming_uniform, kaiming_normal, ibp). See the module docstring for the slips.
    """
    if variant == "derived":
        return fan_in / 2 * mean_abs_weight(scheme, fan_in, fan_out, rows)
    if variant != "print":
        raise NtkflowError(f"variant: must be 'derived' or 'print', got {variant!r}")
    if scheme not in _PRINTED:
        raise NtkflowError(f"scheme: Table 3.1 prints no closed form for {scheme!r}; "
                         f"variant='print' has {', '.join(_PRINTED)}")
    return _PRINTED[scheme](_fan("fan_in", fan_in))


# ----------------------------------------------------------------------------- measured
@x64
def difference_gain(net, params, X, eps) -> np.ndarray:
    """Ê(Δ_i)/Ê(Δ_{i−1}) for every affine layer i after the first (Definition 1, Eq. 3.4).

    Δ_i is the IBP width h̄_i − h̲_i of affine layer i's output (the logits included) on the
    box [x − ε, x + ε] around each sample of X (no clipping to a data range); Ê averages it
    over the samples and the layer's units (channels and positions of a conv).

    Args:
        net, params: an ``ntkflow.nets.Net`` and its params.
        X: (n, *input_shape) inputs. eps: the radius ε > 0.
    Returns:
        (L − 1,) float64 for a net with L affine layers.
    """
    X = jnp.asarray(X)
    if not isinstance(net, Net):
        raise NtkflowError(f"net: expected an ntkflow.nets.Net, got {type(net).__name__}")
    if X.ndim < 2 or X.shape[0] == 0 or not jnp.issubdtype(X.dtype, jnp.floating):
        raise NtkflowError(f"X: expected floats of shape (n, *input_shape) with n ≥ 1, got {X.dtype} {X.shape}")
    net.check_params(params, X.shape[1:])
    if not np.all(np.isfinite(np.asarray(X))):
        raise NtkflowError("X: contains NaN or inf")
    try:
        e = float(eps)
    except (TypeError, ValueError):
        raise NtkflowError(f"eps: must be a positive number, got {eps!r}") from None
    if not (np.isfinite(e) and e > 0):
        raise NtkflowError(f"eps: must be a positive finite number (the gain is 0/0 at ε = 0), got {e}")
    if len(affine_indices(net)) < 2:
        raise NtkflowError("net: needs at least two affine layers to have a difference gain")
    widths = np.asarray(mean_widths(net, params, X - e, X + e), np.float64)
    return widths[1:] / widths[:-1]


@jax.jit
def mean_widths(net, params, lo, hi):
    """Ê(Δ) of every affine layer's output over the boxes [lo, hi] (n, *input_shape): (L,)."""
    ivals = jax.vmap(lambda l, u: ibp_intervals(net, params, l, u, stop=len(net.layers)))(lo, hi)
    return jnp.stack([jnp.mean(ivals[k + 1][1] - ivals[k + 1][0]) for k in affine_indices(net)])


# ----------------------------------------------------------------------------- expected at init
def expected_difference_gain(net, input_shape, scheme: str) -> np.ndarray:
    """E(Δ_i)/E(Δ_{i−1}) at initialization by ``scheme`` for every affine layer after the first:
    the exact expectation of what ``difference_gain`` estimates (up to its ratio-of-means bias).

    Propagates the expected width map: E(Δ) of an affine layer's output is the layer applied
    (without bias) with every weight replaced by E|W| (a frozen weight by its |W|) to the
    expected width of its input; a ReLU halves it (exact, see the module docstring); the
    input box has the same width everywhere. With zero padding a conv's border units see
    fewer inputs, so the gain of a padded conv is below (n_i/2)·E|W|. A BatchNorm layer is
    taken in eval mode at init (γ = 1, running variance 1: widths times 1/√(1 + ε)); in train
    mode its scale γ/√(var_batch + ε) depends on the data — measure that with
    ``difference_gain`` on ``nets.with_batch_stats``'s params.
    """
    if not isinstance(net, Net):
        raise NtkflowError(f"net: expected an ntkflow.nets.Net, got {type(net).__name__}")
    if scheme not in INITS:
        raise NtkflowError(f"scheme: unknown init scheme {scheme!r}; choose one of {', '.join(INITS)}")
    shapes = net.shapes(tuple(input_shape))
    with jax.enable_x64(True):
        m = jnp.ones(shapes[0], jnp.float64)
        means = []
        for layer, shape in zip(net.layers, shapes[:-1]):
            if layer.kind == "affine":
                m = layer.linear(_expected_abs_weight(layer, shape, scheme), m)
                means.append(float(jnp.mean(m)))
            elif layer.kind == "relu":
                m = m / 2
            elif layer.kind == "reshape":
                m = m.reshape(-1)
            elif layer.kind == "batchnorm":  # at init (γ = 1, running variance 1): s = 1/√(1 + ε)
                m = m / math.sqrt(1 + layer.eps)
            else:
                raise NotImplementedError(f"gain: no rule for layer kind {layer.kind!r} "
                                          f"({type(layer).__name__}); add one in ntkflow/analysis/gain.py")
    means = np.asarray(means)
    return means[1:] / means[:-1]


def _expected_abs_weight(layer, in_shape, scheme):
    if layer.fixed is not None:
        return jnp.abs(jnp.asarray(layer.fixed, jnp.float64))
    shape = layer.param_shapes(in_shape)["weight"]
    e = mean_abs_weight(scheme, layer.fan_in(in_shape), layer.fan_out(in_shape), rows=shape[0])
    return jnp.full(shape, e, jnp.float64)
