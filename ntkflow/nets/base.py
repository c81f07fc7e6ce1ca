"""The net protocol: a sequence of layers, ``init(seed, input_shape) -> params``, ``apply(params, X)``.

``params`` is a tuple with one dict per layer (``{"weight", "bias"}`` for affine layers;
γ, β and the running-statistics buffers under PyTorch's names for BatchNorm; ``{}``
otherwise): PyTorch's ``state_dict`` entry ``"<name>.weight"`` is ``params[i]["weight"]``
for the layer named ``names[i]``. Only trainable arrays and BatchNorm's buffers
(``layers.BUFFERS``: their gradient is zero in train mode; a trainer overwrites them with
``nets.update_running_stats``) are in params; a frozen weight lives in its layer
(``Dense(fixed=...)``), so ``jax.grad`` over params is the gradient over the trainable
parameters and nothing else.

The forward pass is written for one sample and vmapped. A net is a pytree (its frozen
weights are leaves, its configuration static), so it can be an argument of a jitted function.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .._core.errors import NtkflowError
from .init import INITS, draw_params, multipliers
from .layers import AFFINE

__all__ = ["Net", "float_dtype", "apply_layer"]


def float_dtype(dtype=None):
    """``dtype``, or JAX's default float (float64 when x64 is enabled, else float32)."""
    return jnp.dtype(dtype) if dtype is not None else jax.dtypes.canonicalize_dtype(jnp.float64)


@dataclass(frozen=True)
class Net:
    """A sequential net. ``layers``: Dense / Conv2d / BatchNorm1d / BatchNorm2d / ReLU / Flatten;
    ``input_shape`` per sample (optional); ``tag`` names a structure the engine has fast paths for (``"two_layer"``)."""

    layers: tuple
    input_shape: tuple | None = None
    names: tuple | None = None
    tag: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.names is None:
            object.__setattr__(self, "names", tuple(str(i) for i in range(len(self.layers))))
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        if not self.layers or not isinstance(self.layers[-1], AFFINE):
            raise NtkflowError("net: the last layer must be Dense (Linear) or Conv2d (the logits)")

    @property
    def num_outputs(self) -> int:
        last = self.layers[-1]
        return last.out_features if hasattr(last, "out_features") else last.out_channels

    # ------------------------------------------------------------------ shapes and params
    def shapes(self, input_shape: tuple) -> list[tuple]:
        """Per-sample shapes of every node: [input, output of layer 0, ..., logits]."""
        out = [tuple(input_shape)]
        for layer in self.layers:
            out.append(layer.out_shape(out[-1]))
        if len(out[-1]) != 1:
            raise NtkflowError(f"net: the logits must be a vector, got per-sample shape {out[-1]} (add a Flatten)")
        return out

    def input_shape_of(self, params) -> tuple | None:
        """The per-sample input shape, from ``input_shape`` or the first Dense layer's weight."""
        if self.input_shape is not None:
            return self.input_shape
        for layer, p in zip(self.layers, params):
            if layer.kind == "reshape":
                return None
            if layer.kind == "affine":
                w = layer.weight(p)
                return (w.shape[1],) if w.ndim == 2 else None
        return None

    def check_params(self, params, input_shape: tuple) -> None:
        """ValueError naming the first layer whose params do not match the architecture."""
        if not isinstance(params, (tuple, list)) or len(params) != len(self.layers):
            raise NtkflowError(f"params: expected a tuple of {len(self.layers)} per-layer dicts, "
                             f"got {type(params).__name__}")
        shapes = self.shapes(input_shape)
        for i, (layer, p) in enumerate(zip(self.layers, params)):
            want = layer.param_shapes(shapes[i])
            got = {k: tuple(np.shape(v)) for k, v in dict(p).items()} if isinstance(p, dict) else None
            if got != want:
                raise NtkflowError(f"params: layer {self.names[i]} ({type(layer).__name__}) has {got}, "
                                 f"expected {want} for input shape {tuple(input_shape)}")

    def init(self, seed: int, input_shape: tuple | None = None, init: str = "torch", dtype=None):
        """Fresh params drawn with the scheme ``init`` (see ``ntkflow.nets.init``): "torch"
        (PyTorch's default), "xavier_uniform", "xavier_normal", "kaiming_uniform",
        "kaiming_normal", "orthogonal", "ntk" or "ibp" (the thesis's IBP initialization)."""
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        if shape is None:
            raise NtkflowError("input_shape: this net has none stored; pass the per-sample input shape")
        self.shapes(shape)  # shape errors before tracing
        if init not in INITS:
            raise NtkflowError(f"init: unknown scheme {init!r}; choose one of {', '.join(INITS)}")
        dtype = float_dtype(dtype)
        mults = jax.tree_util.tree_map(lambda v: np.asarray(v, dtype), multipliers(init, self.layers, self.shapes(shape)[:-1]))
        s = INITS[init]
        return _init(self, jax.random.PRNGKey(int(seed)), shape, s.base, s.orthogonal, dtype, mults)

    # ------------------------------------------------------------------ forward
    def apply_one(self, params, x):
        """Logits of one sample, (K,)."""
        for layer, p in zip(self.layers, params):
            x = apply_layer(layer, p, x)
        return x

    def apply(self, params, X):
        """Logits (n, K), or (n,) for a single-output net. X: (n, *input_shape)."""
        return _apply(self, params, jnp.asarray(X))


def apply_layer(layer, p, x):
    """One layer on one sample (a BatchNorm layer by the statistics its params carry)."""
    if layer.kind == "affine":
        x = layer.linear(layer.weight(p), x)
        b = layer.bias_full(p, None)
        return x if b is None else x + b
    if layer.kind == "batchnorm":
        return layer.apply(p, x)
    if layer.kind == "relu":
        return jax.nn.relu(x)
    if layer.kind == "reshape":
        return x.reshape(-1)
    raise NotImplementedError(f"Net.apply_one: no rule for layer kind {layer.kind!r} "
                              f"({type(layer).__name__}); add one in ntkflow/nets/base.py")


@partial(jax.jit, static_argnames=("shape", "base", "orthogonal", "dtype"))
def _init(net, key, shape, base, orthogonal, dtype, mults):
    # the multipliers are traced: schemes with the same base draw share one compiled init
    return draw_params(base, orthogonal, key, net.layers, net.shapes(shape)[:-1], dtype, mults)


@jax.jit
def _apply(net, params, X):
    out = jax.vmap(lambda x: net.apply_one(params, x))(X)
    return out[:, 0] if net.num_outputs == 1 else out


jax.tree_util.register_dataclass(Net, data_fields=["layers"], meta_fields=["input_shape", "names", "tag"])
