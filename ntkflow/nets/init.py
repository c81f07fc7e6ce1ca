"""Named initialization schemes for affine layers, with PyTorch's fans.

fan_in = inputs per output unit (Dense: in_features; Conv2d: in_channels·kh·kw); fan_out as
``torch.nn.init._calculate_fan_in_and_fan_out`` (Dense: out_features; Conv2d:
out_channels·kh·kw).

- ``"torch"``: PyTorch's default for Linear and Conv2d (``kaiming_uniform_(a=√5)``):
  weight and bias ~ U(−1/√fan_in, 1/√fan_in).
- ``"xavier_uniform"``: ``xavier_uniform_`` (Glorot & Bengio 2010, gain 1):
  weight ~ U(±√(6/(fan_in + fan_out))); bias 0.
- ``"xavier_normal"``: ``xavier_normal_``: weight ~ N(0, 2/(fan_in + fan_out)); bias 0.
- ``"kaiming_uniform"``: ``kaiming_uniform_(nonlinearity="relu", mode="fan_in")`` (He et al.
  2015, gain √2): weight ~ U(±√(6/fan_in)); bias 0.
- ``"kaiming_normal"``: ``kaiming_normal_`` likewise: weight ~ N(0, 2/fan_in); bias 0.
- ``"orthogonal"``: ``orthogonal_`` (Saxe et al. 2013, gain 1) per affine layer on the
  weight reshaped to (out, fan_in): Q of the QR of a Gaussian matrix, signs fixed by
  diag(R) (Haar-distributed); orthonormal rows if out ≤ fan_in, else orthonormal
  columns; bias 0.
- ``"ntk"``: weight ~ N(0, 1), bias 0 — the NTK parameterization's draw, meant for a net
  built with ``parameterization="ntk"`` (the layer multiplies by 1/√fan_in) and the
  paper's two-layer net (Sec. 3.1: w_r ~ N(0, I)). On a standard-parameterization net it
  is the same draw without the 1/√fan_in (pre-activations grow like √fan_in).
- ``"ibp"``: the thesis's IBP initialization (wang2022_thesis Sec. 3.2.1):
  weight ~ N(0, σ²) with σ = √(2π)/fan_in, so the "difference gain" (n_i/2)·E|W| of Eq. 3.4
  is exactly 1; bias 0.

Biases: PyTorch's ``nn.init`` functions set weights only (a module keeps its default
bias U(±1/√fan_in)); every scheme here but ``"torch"`` sets biases to 0, so that the
scheme alone fixes the distribution of the net. The thesis's own code (ibp_init) keeps
PyTorch's default biases and last layer; here a scheme covers every trainable layer.

Frozen weights (``fixed``) are never drawn: they belong to the net. BatchNorm layers are
not drawn either: every scheme starts them as PyTorch does (γ = 1, β = 0, running mean 0,
running variance 1), as Shi et al. 2021's IBP initialization leaves them. All entries come from
ONE draw of the scheme's base distribution, carved into the layers' arrays: XLA compiles
a single random draw in well under a second, but about a second per draw for several.
``"orthogonal"`` carves its Gaussian draw the same way and orthogonalizes each weight.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["INITS", "Scheme", "init_params", "draw_params", "multipliers", "orthogonalize"]


class Scheme(NamedTuple):
    """``base`` draw ("uniform": U(−1, 1); "normal": N(0, 1)) times ``weight(fan_in, fan_out)``
    (weights) or ``bias(fan_in, fan_out)`` (biases); ``orthogonal``: each weight, reshaped to
    (out, fan_in), is replaced by ``orthogonalize`` of its draw."""

    base: str
    weight: Callable
    bias: Callable
    orthogonal: bool = False


def _zero(fan_in, fan_out):
    return 0.0


INITS = {
    "torch": Scheme("uniform", lambda i, o: 1 / math.sqrt(i), lambda i, o: 1 / math.sqrt(i)),
    "xavier_uniform": Scheme("uniform", lambda i, o: math.sqrt(6 / (i + o)), _zero),
    "xavier_normal": Scheme("normal", lambda i, o: math.sqrt(2 / (i + o)), _zero),
    "kaiming_uniform": Scheme("uniform", lambda i, o: math.sqrt(6 / i), _zero),
    "kaiming_normal": Scheme("normal", lambda i, o: math.sqrt(2 / i), _zero),
    "orthogonal": Scheme("normal", lambda i, o: 1.0, _zero, orthogonal=True),
    "ntk": Scheme("normal", lambda i, o: 1.0, _zero),
    "ibp": Scheme("normal", lambda i, o: math.sqrt(2 * math.pi) / i, _zero),
}


def orthogonalize(G):
    """``torch.nn.init.orthogonal_`` applied to a Gaussian matrix G (rows, cols): the Q factor
    of G (or of Gᵀ when rows < cols, transposed back) with signs fixed so that diag(R) > 0."""
    flip = G.shape[0] < G.shape[1]
    A = G.T if flip else G
    q, r = jnp.linalg.qr(A)
    q = q * jnp.sign(jnp.diagonal(r))[None, :]
    return q.T if flip else q


def multipliers(scheme: str, layers, in_shapes) -> tuple:
    """(weight multiplier, bias multiplier) of every layer under ``scheme``, as Python floats."""
    s = INITS[scheme]
    fans = [(layer.fan_in(shape), layer.fan_out(shape)) if layer.kind == "affine" else (1, 1)
            for layer, shape in zip(layers, in_shapes)]
    return tuple((float(s.weight(i, o)), float(s.bias(i, o))) for i, o in fans)


def draw_params(base: str, orthogonal: bool, key, layers, in_shapes, dtype, mults) -> tuple:
    """Params from ONE draw of ``base``, carved into the layers' arrays and scaled by ``mults``
    (from ``multipliers``; they may be traced, so schemes with the same base draw share a
    compiled init)."""
    # BatchNorm layers start as PyTorch's (γ = 1, β = 0, unit running statistics), outside the draw
    specs = [{} if layer.kind == "batchnorm" else layer.param_shapes(shape) for layer, shape in zip(layers, in_shapes)]
    total = sum(int(np.prod(shape)) for shapes in specs for shape in shapes.values())
    if base == "uniform":
        flat = jax.random.uniform(key, (total,), dtype, -1.0, 1.0)
    else:
        flat = jax.random.normal(key, (total,), dtype)
    out, at = [], 0
    for shapes, (w_mult, b_mult) in zip(specs, mults):
        p = {}
        for name in sorted(shapes):
            size = int(np.prod(shapes[name]))
            draw = flat[at: at + size]
            at += size
            if name == "weight" and orthogonal:
                draw = orthogonalize(draw.reshape(shapes[name][0], -1))
            p[name] = (w_mult if name == "weight" else b_mult) * draw.reshape(shapes[name])
        out.append(p)
    out = [layer.initial_params(dtype) if layer.kind == "batchnorm" else p for layer, p in zip(layers, out)]
    return tuple(out)


def init_params(scheme: str, key, layers, in_shapes, dtype) -> tuple:
    """Params (one dict per layer) drawn with ``scheme``; ``in_shapes[i]`` is layer i's input shape."""
    s = INITS[scheme]
    return draw_params(s.base, s.orthogonal, key, layers, in_shapes, dtype, multipliers(scheme, layers, in_shapes))
