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

Frozen weights (``fixed``) are never drawn: they belong to the net.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["INITS", "init_layer"]


def _torch(key, shapes, fan_in, dtype):
    bound = 1.0 / math.sqrt(fan_in)
    keys = jax.random.split(key, len(shapes))
    return {k: jax.random.uniform(kk, s, dtype, -bound, bound) for kk, (k, s) in zip(keys, sorted(shapes.items()))}


def _gaussian(std_fn):
    def draw(key, shapes, fan_in, dtype):
        out = {}
        if "weight" in shapes:
            out["weight"] = std_fn(fan_in) * jax.random.normal(key, shapes["weight"], dtype)
        if "bias" in shapes:
            out["bias"] = jnp.zeros(shapes["bias"], dtype)
        return out
    return draw


INITS = {
    "torch": _torch,
    "ntk": _gaussian(lambda fan_in: 1.0),
    "ibp": _gaussian(lambda fan_in: math.sqrt(2 * math.pi) / fan_in),
}


def init_layer(name: str, key, layer, in_shape: tuple, dtype) -> dict:
    """Params of one layer drawn with scheme ``name`` (an empty dict for parameter-free layers)."""
    if name not in INITS:
        raise ValueError(f"init: unknown scheme {name!r}; choose one of {', '.join(INITS)}")
    shapes = layer.param_shapes(in_shape)
    if not shapes:
        return {}
    return INITS[name](key, shapes, layer.fan_in(in_shape), dtype)
