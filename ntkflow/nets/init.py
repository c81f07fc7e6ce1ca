"""Named initialization schemes for affine layers (fan_in = inputs per output unit).

- ``"torch"``: PyTorch's default for Linear and Conv2d (``kaiming_uniform_(a=√5)``):
  weight and bias ~ U(−1/√fan_in, 1/√fan_in).
- ``"ntk"``: weight ~ N(0, 1), bias 0 — the NTK parameterization's draw, meant for a net
  built with ``parameterization="ntk"`` (the layer multiplies by 1/√fan_in) and the
  paper's two-layer net (Sec. 3.1: w_r ~ N(0, I)). On a standard-parameterization net it
  is the same draw without the 1/√fan_in (pre-activations grow like √fan_in).
- ``"ibp"``: the thesis's IBP initialization (wang2022_thesis Sec. 3.2.1):
  weight ~ N(0, σ²) with σ = √(2π)/fan_in, so the "difference gain" (n_i/2)·E|W| of Eq. 3.4
  is exactly 1; bias 0.

Frozen weights (``fixed``) are never drawn: they belong to the net. All entries come from
ONE draw of the scheme's base distribution, carved into the layers' arrays: XLA compiles
a single random draw in well under a second, but about a second per draw for several.
"""

from __future__ import annotations

import math

import jax
import numpy as np

__all__ = ["INITS", "init_params"]

# scheme → (base draw, multiplier of a weight, multiplier of a bias), multipliers as functions of fan_in
INITS = {
    "torch": ("uniform", lambda fan: 1 / math.sqrt(fan), lambda fan: 1 / math.sqrt(fan)),
    "ntk": ("normal", lambda fan: 1.0, lambda fan: 0.0),
    "ibp": ("normal", lambda fan: math.sqrt(2 * math.pi) / fan, lambda fan: 0.0),
}


def init_params(scheme: str, key, layers, in_shapes, dtype) -> tuple:
    """Params (one dict per layer) drawn with ``scheme``; ``in_shapes[i]`` is layer i's input shape."""
    base, w_mult, b_mult = INITS[scheme]
    specs = [(layer.param_shapes(s), layer.fan_in(s) if layer.kind == "affine" else 1)
             for layer, s in zip(layers, in_shapes)]
    total = sum(int(np.prod(shape)) for shapes, _ in specs for shape in shapes.values())
    if base == "uniform":
        flat = jax.random.uniform(key, (total,), dtype, -1.0, 1.0)
    else:
        flat = jax.random.normal(key, (total,), dtype)
    out, at = [], 0
    for shapes, fan in specs:
        p = {}
        for name in sorted(shapes):
            size = int(np.prod(shapes[name]))
            mult = w_mult(fan) if name == "weight" else b_mult(fan)
            p[name] = mult * flat[at: at + size].reshape(shapes[name])
            at += size
        out.append(p)
    return tuple(out)
