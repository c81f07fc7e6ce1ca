"""PyTorch interchange without torch: an ``nn.Sequential`` as an ``.npz`` file.

The file holds every ``state_dict`` entry under its PyTorch name in PyTorch layout
(Linear weight (out, in), Conv2d weight OIHW, biases), plus

- ``__arch__``: a JSON string, a list with one dict per ``nn.Sequential`` child in order:
  ``{"name", "type": "Linear"|"Conv2d"|"BatchNorm1d"|"BatchNorm2d"|"ReLU"|"Flatten",
  <constructor fields as PyTorch names them>}`` (in_features, out_features, bias;
  in_channels, out_channels, kernel_size, stride, padding, dilation, groups, padding_mode;
  num_features, eps, momentum (null: cumulative average), affine, track_running_stats;
  start_dim, end_dim);
- ``__meta__`` (optional): a JSON string, a dict that may carry ``input_shape`` (per sample).

A BatchNorm layer's state entries are PyTorch's: ``weight``, ``bias`` (when affine),
``running_mean``, ``running_var`` and ``num_batches_tracked`` (an integer in the file, a
float in params; absent means 0, as PyTorch's loader fills it in). The imported model is
PyTorch's ``model.eval()``; train mode is ``nets.with_batch_stats``.

The README shows the ten lines of torch that write such a file. Read with
``allow_pickle=False``; anything this engine cannot represent exactly (another layer
type, groups ≠ 1, non-zero padding modes, string padding, a Flatten that is not
``Flatten(1, -1)``, BatchNorm without running statistics, entries that no layer owns) is a
one-line ValueError.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from .._core.errors import NtkflowError
from .base import Net
from .layers import LAYER_TYPES, Conv2d, Dense, Flatten, ReLU

__all__ = ["load_torch", "save_torch"]


def _fail(path, msg):
    raise NtkflowError(f"{path}: {msg}")


def _read(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        _fail(path, f"cannot read as an npz file ({type(e).__name__}: {e})")


def _json(path, arrays, key, default):
    if key not in arrays:
        if default is None:
            _fail(path, f"has no {key} entry (the JSON architecture list)")
        return default
    try:
        return json.loads(str(arrays.pop(key)))
    except json.JSONDecodeError as e:
        _fail(path, f"{key} is not valid JSON ({e})")


def _layer(path, spec: dict):
    name, kind = spec.get("name"), spec.get("type")
    if kind not in LAYER_TYPES:
        _fail(path, f"layer {name!r} has unsupported type {kind!r} (supported: {', '.join(LAYER_TYPES)})")
    try:
        if kind == "Linear":
            return Dense(int(spec["out_features"]), int(spec["in_features"]), bias=bool(spec.get("bias", True)))
        if kind == "Conv2d":
            for f, ok in (("groups", 1), ("padding_mode", "zeros")):
                if spec.get(f, ok) != ok:
                    _fail(path, f"layer {name!r}: Conv2d with {f}={spec[f]!r} is not supported (only {ok!r})")
            if isinstance(spec.get("padding", 0), str):
                _fail(path, f"layer {name!r}: string padding {spec['padding']!r} is not supported (use integers)")
            return Conv2d(int(spec["out_channels"]), spec["kernel_size"], spec.get("stride", 1),
                          spec.get("padding", 0), spec.get("dilation", 1), int(spec["in_channels"]),
                          bias=bool(spec.get("bias", True)))
        if kind in ("BatchNorm1d", "BatchNorm2d"):
            if spec.get("track_running_stats", True) is not True:
                _fail(path, f"layer {name!r}: {kind} with track_running_stats=false is not supported (its eval "
                            "mode normalizes by each batch's own statistics)")
            momentum = spec.get("momentum", 0.1)
            return LAYER_TYPES[kind](int(spec["num_features"]), float(spec.get("eps", 1e-5)),
                                     None if momentum is None else float(momentum), bool(spec.get("affine", True)))
        if kind == "Flatten":
            if (spec.get("start_dim", 1), spec.get("end_dim", -1)) != (1, -1):
                _fail(path, f"layer {name!r}: only Flatten(start_dim=1, end_dim=-1) is supported")
            return Flatten()
        return ReLU()
    except KeyError as e:
        _fail(path, f"layer {name!r} ({kind}) lacks the field {e.args[0]!r}")
    except (TypeError, ValueError) as e:  # int("abc"), a list where a number belongs, ...
        if str(e).startswith(f"{path}:"):
            raise
        _fail(path, f"layer {name!r} ({kind}) has a field of the wrong type ({e})")


def _entry(path, arrays, key):
    """State-dict entry ``key`` as a JAX array: real numbers, finite (a trained model's weights)."""
    v = arrays.pop(key)
    if v.dtype.kind not in "fiu":
        _fail(path, f"state_dict entry {key!r} has dtype {v.dtype} (expected real numbers)")
    if not np.all(np.isfinite(v)):
        _fail(path, f"state_dict entry {key!r} has non-finite values")
    return jnp.asarray(v)


def _input_shape(path, meta, layers):
    """``__meta__.input_shape`` per sample; a leading batch dimension of 1 (the shape a PyTorch
    user traces with: [1, 784], [1, 3, 32, 32]) is dropped."""
    shape = meta.get("input_shape")
    if not shape:
        return None
    if not isinstance(shape, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                              for v in shape):
        _fail(path, f"__meta__ input_shape must be a list of positive integers, got {shape!r}")
    first = next((l for l in layers if l.kind == "affine"), None)
    per_sample = 1 if isinstance(first, Dense) else 3 if isinstance(first, Conv2d) else None
    if per_sample is not None and len(shape) == per_sample + 1 and shape[0] == 1:
        shape = shape[1:]
    return tuple(shape)


def load_torch(path):
    """``(net, params)`` from an npz written by the README snippet (or ``save_torch``).

    Arrays keep their stored dtype, cast by JAX's rules (float32 unless x64 is enabled).
    """
    arrays = _read(path)
    arch = _json(path, arrays, "__arch__", None)
    meta = _json(path, arrays, "__meta__", {})
    if not isinstance(meta, dict):
        _fail(path, f"__meta__ must be a JSON object (e.g. {{\"input_shape\": [784]}}), got {type(meta).__name__}")
    if not isinstance(arch, list) or not all(isinstance(s, dict) for s in arch):
        _fail(path, "__arch__ must be a JSON list of one dict per layer")
    layers = tuple(_layer(path, s) for s in arch)
    names = tuple(str(s.get("name", i)) for i, s in enumerate(arch))
    params = []
    for name, layer in zip(names, layers):
        keys = ("weight", "bias") if getattr(layer, "bias", False) else ("weight",) if layer.kind == "affine" else ()
        if layer.kind == "batchnorm":
            keys = (("weight", "bias") if layer.affine else ()) + ("running_mean", "running_var")
        missing = [f"{name}.{k}" for k in keys if f"{name}.{k}" not in arrays]
        if missing:
            _fail(path, f"missing state_dict entries {missing}")
        p = {k: _entry(path, arrays, f"{name}.{k}") for k in keys}
        if layer.kind == "batchnorm":
            tracked = f"{name}.num_batches_tracked"
            count = _entry(path, arrays, tracked) if tracked in arrays else 0
            p["num_batches_tracked"] = jnp.asarray(count, p["running_mean"].dtype)  # a float: jax.grad accepts it
        params.append(p)
    if arrays:
        _fail(path, f"has state_dict entries no supported layer owns: {sorted(arrays)[:5]}")
    shape = _input_shape(path, meta, layers)
    try:
        net = Net(layers, input_shape=shape, names=names)
        if net.input_shape is not None:
            net.check_params(tuple(params), net.input_shape)
    except ValueError as e:
        _fail(path, f"{e} (__meta__ input_shape is {list(shape) if shape else None}: the shape of ONE sample)")
    return net, tuple(params)


def _arch_entry(name, layer, p):
    if isinstance(layer, Dense):
        out, inp = np.shape(layer.weight(p))
        return {"name": name, "type": "Linear", "in_features": int(inp), "out_features": int(out),
                "bias": bool(layer.bias)}
    if isinstance(layer, Conv2d):
        o, i = np.shape(layer.weight(p))[:2]
        return {"name": name, "type": "Conv2d", "in_channels": int(i), "out_channels": int(o),
                "kernel_size": list(layer.kernel_size), "stride": list(layer.stride),
                "padding": list(layer.padding), "dilation": list(layer.dilation), "groups": 1,
                "padding_mode": "zeros", "bias": bool(layer.bias)}
    if layer.kind == "batchnorm":
        return {"name": name, "type": type(layer).__name__, "num_features": layer.num_features, "eps": layer.eps,
                "momentum": layer.momentum, "affine": layer.affine, "track_running_stats": True}
    if isinstance(layer, Flatten):
        return {"name": name, "type": "Flatten", "start_dim": 1, "end_dim": -1}
    return {"name": name, "type": "ReLU", "inplace": False}


def save_torch(path, net: Net, params, *, input_shape=None) -> None:
    """Write ``net`` and ``params`` in the format ``load_torch`` reads.

    A layer's ``scale`` is folded into its saved weight and frozen weights are saved as
    ordinary weights (PyTorch has neither); the function the file computes is unchanged.
    """
    arrays, arch = {}, []
    for name, layer, p in zip(net.names, net.layers, params):
        arch.append(_arch_entry(name, layer, p))
        if layer.kind == "affine":
            W = layer.weight(p)
            arrays[f"{name}.weight"] = np.asarray(W) * layer.scale_of(W)
            if layer.bias:
                arrays[f"{name}.bias"] = np.asarray(p["bias"])
        elif layer.kind == "batchnorm":
            for k in ("weight", "bias", "running_mean", "running_var"):
                if k in p:
                    arrays[f"{name}.{k}"] = np.asarray(p[k])
            arrays[f"{name}.num_batches_tracked"] = np.asarray(np.rint(np.asarray(p["num_batches_tracked"])), np.int64)
    shape = input_shape if input_shape is not None else net.input_shape
    meta = {"input_shape": list(shape)} if shape is not None else {}
    with open(Path(path), "wb") as f:
        np.savez(f, __arch__=json.dumps(arch), __meta__=json.dumps(meta), **arrays)
