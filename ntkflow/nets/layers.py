"""The layers a sequential net is made of: Dense, Conv2d, BatchNorm1d/2d, ReLU, Flatten (PyTorch semantics).

Every layer acts on ONE sample (a vector (d,) or an image (C, H, W)); nets vmap it.
Weights are stored in PyTorch layout: Dense (out, in), Conv2d (O, I, kh, kw).
An affine layer computes ``scale · (W x) + b``: ``scale`` is 1 for the standard
parameterization, ``"fan_in"`` (1/√fan_in, from the weight's shape) for the NTK
parameterization, or a number (the paper's 1/√m on its output layer). ``fixed``
holds a frozen weight that is part of the net, not of the trainable params (the
paper's output weights ``a``).

Layers are frozen dataclasses registered as pytrees: configuration is static, and
the only array (``fixed``) is a leaf, so a net can be passed to ``jax.jit``.

A BatchNorm layer is a per-channel affine map y = s·x + t with s = γ/√(var + ε) and
t = β − s·mean, where (mean, var) are the statistics its params carry under PyTorch's
buffer names ``running_mean`` / ``running_var`` (eval mode). Train mode is the same
map with the clean batch's statistics put there by ``nets.with_batch_stats``
(``ntkflow.nets.batchnorm``), so every rule (forward, IBP, CROWN, gain) sees one fixed map.

``Patched`` lets the Gram code differentiate with respect to a block of a weight's
rows only (see ``ntkflow.kernels``): ``row_apply`` computes the other rows with
the gradient stopped, so the Jacobian of a block never materializes the full weight's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._core.errors import NtkflowError
from .._jax import HIGHEST

__all__ = ["Dense", "Conv2d", "BatchNorm1d", "BatchNorm2d", "ReLU", "Flatten", "Patched", "row_apply", "weight_abs",
           "weight_shape", "scale_value", "AFFINE", "BATCHNORM", "BUFFERS", "LAYER_TYPES"]


# ----------------------------------------------------------------------------- row blocks of a weight
class Patched(NamedTuple):
    """A weight equal to ``full`` except rows [start, start + len(block)), which are ``block``.

    Only ``block`` carries a gradient: ``full`` enters through ``stop_gradient``.
    """

    full: Any
    block: Any
    start: Any


def row_apply(op, W, x):
    """``op(W, x)`` where the output's axis 0 follows W's axis 0 (Dense rows, Conv2d output channels)."""
    if isinstance(W, Patched):
        base = op(jax.lax.stop_gradient(W.full), x)
        return jax.lax.dynamic_update_slice_in_dim(base, op(W.block, x).astype(base.dtype), W.start, axis=0)
    return op(W, x)


def weight_abs(W):
    """|W| elementwise, also for a ``Patched`` weight."""
    if isinstance(W, Patched):
        return Patched(jnp.abs(W.full), jnp.abs(W.block), W.start)
    return jnp.abs(W)


def weight_shape(W) -> tuple:
    return tuple(W.full.shape if isinstance(W, Patched) else W.shape)


def scale_value(scale, fan_in: int):
    """The multiplier of an affine layer: ``scale``, or 1/√fan_in for ``scale="fan_in"``."""
    return 1.0 / math.sqrt(fan_in) if scale == "fan_in" else scale


def _check_scale(scale):
    # Interval rules push |W| through ``linear``, which is only right for a positive multiplier.
    if scale != "fan_in" and not (isinstance(scale, (int, float)) and scale > 0):
        raise NtkflowError(f"scale: must be a positive number or 'fan_in', got {scale!r}")


def _pair(v, name: str) -> tuple[int, int]:
    t = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(t) != 2 or not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in t):
        raise NtkflowError(f"{name}: must be an integer or a pair of integers, got {v!r}")
    return int(t[0]), int(t[1])


# ----------------------------------------------------------------------------- layers
@dataclass(frozen=True)
class Dense:
    """``y = scale · (W x) + b`` on a vector; W (out, in) as ``torch.nn.Linear``."""

    out_features: int
    in_features: int | None = None
    bias: bool = True
    scale: Any = 1.0
    fixed: Any = None  # frozen weight (out, in), not in params

    kind = "affine"

    def __post_init__(self):
        _check_scale(self.scale)

    def out_shape(self, in_shape: tuple) -> tuple:
        if len(in_shape) != 1:
            raise NtkflowError(f"net: Dense({self.out_features}) needs a vector input, got shape {in_shape} "
                             "(put a Flatten before it)")
        if self.in_features is not None and in_shape[0] != self.in_features:
            raise NtkflowError(f"net: Dense expects {self.in_features} input features, got {in_shape[0]}")
        return (self.out_features,)

    def param_shapes(self, in_shape: tuple) -> dict:
        shapes = {} if self.fixed is not None else {"weight": (self.out_features, in_shape[0])}
        if self.bias:
            shapes["bias"] = (self.out_features,)
        return shapes

    def fan_in(self, in_shape: tuple) -> int:
        return int(in_shape[0])

    def fan_out(self, in_shape: tuple) -> int:
        """PyTorch's fan_out (``torch.nn.init._calculate_fan_in_and_fan_out``): output units."""
        return int(self.out_features)

    def weight(self, p):
        return self.fixed if self.fixed is not None else p["weight"]

    def scale_of(self, W):
        return scale_value(self.scale, weight_shape(W)[1])

    def linear(self, W, x):
        """scale · W x for one sample (no bias)."""
        return self.scale_of(W) * row_apply(lambda w, v: jnp.matmul(w, v, precision=HIGHEST), W, x)

    def bias_full(self, p, out_shape: tuple):
        return p["bias"] if self.bias else None


@dataclass(frozen=True)
class Conv2d:
    """``torch.nn.Conv2d`` on one (C, H, W) image: OIHW weight, integer stride/padding/dilation, zero padding."""

    out_channels: int
    kernel_size: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    in_channels: int | None = None
    bias: bool = True
    scale: Any = 1.0
    fixed: Any = None

    kind = "affine"

    def __post_init__(self):
        _check_scale(self.scale)
        for f in ("kernel_size", "stride", "padding", "dilation"):
            object.__setattr__(self, f, _pair(getattr(self, f), f))

    def out_shape(self, in_shape: tuple) -> tuple:
        if len(in_shape) != 3:
            raise NtkflowError(f"net: Conv2d needs (C, H, W) inputs, got shape {in_shape}")
        if self.in_channels is not None and in_shape[0] != self.in_channels:
            raise NtkflowError(f"net: Conv2d expects {self.in_channels} input channels, got {in_shape[0]}")
        hw = []
        for n, k, s, p, d in zip(in_shape[1:], self.kernel_size, self.stride, self.padding, self.dilation):
            o = (n + 2 * p - d * (k - 1) - 1) // s + 1
            if o < 1:
                raise NtkflowError(f"net: Conv2d kernel {self.kernel_size} does not fit input {in_shape}")
            hw.append(o)
        return (self.out_channels, *hw)

    def param_shapes(self, in_shape: tuple) -> dict:
        shapes = {} if self.fixed is not None else {"weight": (self.out_channels, in_shape[0], *self.kernel_size)}
        if self.bias:
            shapes["bias"] = (self.out_channels,)
        return shapes

    def fan_in(self, in_shape: tuple) -> int:
        return int(in_shape[0] * self.kernel_size[0] * self.kernel_size[1])

    def fan_out(self, in_shape: tuple) -> int:
        """PyTorch's fan_out: output channels × kernel area (not the number of weight rows)."""
        return int(self.out_channels * self.kernel_size[0] * self.kernel_size[1])

    def weight(self, p):
        return self.fixed if self.fixed is not None else p["weight"]

    def _conv(self, W, x):
        dt = jnp.result_type(W, x)  # lax.conv does not promote (a float32 file, float64 inputs)
        return jax.lax.conv_general_dilated(
            x[None].astype(dt), W.astype(dt), self.stride, [(p, p) for p in self.padding], rhs_dilation=self.dilation,
            dimension_numbers=("NCHW", "OIHW", "NCHW"), precision=HIGHEST)[0]

    def scale_of(self, W):
        o, i, kh, kw = weight_shape(W)
        return scale_value(self.scale, i * kh * kw)

    def linear(self, W, x):
        """scale · (W ⋆ x) for one (C, H, W) image (no bias)."""
        return self.scale_of(W) * row_apply(self._conv, W, x)

    def bias_full(self, p, out_shape: tuple):
        return p["bias"][:, None, None] if self.bias else None


@dataclass(frozen=True)
class _BatchNorm:
    """Shared by BatchNorm1d / BatchNorm2d: per-channel (axis 0 of one sample) y = s·x + t.

    params: ``weight`` (γ) and ``bias`` (β) when ``affine``; the buffers ``running_mean``,
    ``running_var`` and ``num_batches_tracked`` (a float scalar here, so ``jax.grad`` over
    params accepts it; an integer in PyTorch and in the npz file). The buffers are not
    trained: their gradient is zero in train mode (the batch's statistics replace them),
    and ``nets.update_running_stats`` sets them after each step.
    """

    num_features: int
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True

    kind = "batchnorm"
    ranks = ()  # per-sample ranks the layer accepts

    def __post_init__(self):
        n = self.num_features
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise NtkflowError(f"num_features: must be an integer >= 1, got {n!r}")
        if not (isinstance(self.eps, (int, float)) and not isinstance(self.eps, bool) and self.eps > 0):
            raise NtkflowError(f"eps: must be a positive number, got {self.eps!r}")
        m = self.momentum
        if m is not None and not (isinstance(m, (int, float)) and not isinstance(m, bool) and 0 <= m <= 1):
            raise NtkflowError(f"momentum: must be a number in [0, 1] or None (cumulative average), got {m!r}")
        if self.track_running_stats is not True:
            # PyTorch then normalizes every batch, in eval mode too, by that batch's own statistics:
            # a certificate of one sample would depend on the batch it is evaluated in.
            raise NtkflowError("track_running_stats: only True is supported (without running statistics "
                               "eval mode normalizes by each batch's own statistics)")
        object.__setattr__(self, "num_features", int(n))
        object.__setattr__(self, "affine", bool(self.affine))

    def out_shape(self, in_shape: tuple) -> tuple:
        if len(in_shape) not in self.ranks:
            raise NtkflowError(f"net: {type(self).__name__}({self.num_features}) needs per-sample inputs of rank "
                             f"{' or '.join(map(str, self.ranks))}, got shape {tuple(in_shape)}")
        if in_shape[0] != self.num_features:
            raise NtkflowError(f"net: {type(self).__name__} expects {self.num_features} channels, got {in_shape[0]}")
        return tuple(in_shape)

    def param_shapes(self, in_shape: tuple) -> dict:
        c = (self.num_features,)
        shapes = {"weight": c, "bias": c} if self.affine else {}
        shapes.update(running_mean=c, running_var=c, num_batches_tracked=())
        return shapes

    def initial_params(self, dtype) -> dict:
        """PyTorch's fresh module: γ = 1, β = 0, running_mean = 0, running_var = 1, 0 batches."""
        c = (self.num_features,)
        p = {"weight": jnp.ones(c, dtype), "bias": jnp.zeros(c, dtype)} if self.affine else {}
        p.update(running_mean=jnp.zeros(c, dtype), running_var=jnp.ones(c, dtype),
                 num_batches_tracked=jnp.zeros((), dtype))
        return p

    def scale_shift(self, p):
        """(s, t), each (num_features,): y = s·x + t is (x − mean)/√(var + ε)·γ + β."""
        mean, var = p["running_mean"], p["running_var"]
        s = 1.0 / jnp.sqrt(var + self.eps)
        if self.affine:
            s = p["weight"] * s
        t = -s * mean
        return s, (t + p["bias"] if self.affine else t)

    @staticmethod
    def per_channel(v, ndim: int):
        """A (C,) vector shaped to broadcast along axis 0 of an array of rank ``ndim``."""
        return v.reshape((-1,) + (1,) * (ndim - 1))

    def channel_affine(self, p, ndim: int):
        """``scale_shift`` with (s, t) shaped to broadcast over one sample of rank ``ndim``."""
        s, t = self.scale_shift(p)
        return self.per_channel(s, ndim), self.per_channel(t, ndim)

    def apply(self, p, x):
        """y = s·x + t for one sample (C,), (C, L) or (C, H, W)."""
        s, t = self.channel_affine(p, x.ndim)
        return s * x + t


@dataclass(frozen=True)
class BatchNorm1d(_BatchNorm):
    """``torch.nn.BatchNorm1d`` on one sample (C,) or (C, L): statistics per channel (axis 0)."""

    ranks = (1, 2)


@dataclass(frozen=True)
class BatchNorm2d(_BatchNorm):
    """``torch.nn.BatchNorm2d`` on one (C, H, W) image: statistics per channel."""

    ranks = (3,)


@dataclass(frozen=True)
class ReLU:
    kind = "relu"

    def out_shape(self, in_shape: tuple) -> tuple:
        return tuple(in_shape)

    def param_shapes(self, in_shape: tuple) -> dict:
        return {}


@dataclass(frozen=True)
class Flatten:
    """``torch.nn.Flatten()`` per sample: (C, H, W) → (C·H·W,) in C-major (row-major) order."""

    kind = "reshape"

    def out_shape(self, in_shape: tuple) -> tuple:
        return (int(np.prod(in_shape)),)

    def param_shapes(self, in_shape: tuple) -> dict:
        return {}


AFFINE = (Dense, Conv2d)
BATCHNORM = (BatchNorm1d, BatchNorm2d)
#: BatchNorm's buffers: in params (PyTorch's state_dict names), never trained.
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
LAYER_TYPES = {"Linear": Dense, "Conv2d": Conv2d, "BatchNorm1d": BatchNorm1d, "BatchNorm2d": BatchNorm2d, "ReLU": ReLU,
               "Flatten": Flatten}

for _cls, _meta in ((Dense, ["out_features", "in_features", "bias", "scale"]),
                    (Conv2d, ["out_channels", "kernel_size", "stride", "padding", "dilation", "in_channels", "bias",
                              "scale"])):
    jax.tree_util.register_dataclass(_cls, data_fields=["fixed"], meta_fields=_meta)
for _cls in BATCHNORM:
    jax.tree_util.register_dataclass(_cls, data_fields=[], meta_fields=[f.name for f in fields(_BatchNorm)])
for _cls in (ReLU, Flatten):
    jax.tree_util.register_dataclass(_cls, data_fields=[], meta_fields=[])
