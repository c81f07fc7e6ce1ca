"""Independent float64 numpy references for the net engine tests (no JAX, no ntkflow).

- ``torch_forward``: PyTorch ``nn.Sequential`` semantics for Linear / Conv2d (NCHW input,
  OIHW weight, zero padding, stride, dilation) / ReLU / Flatten (C-major) / BatchNorm1d/2d
  (eval mode), by explicit loops.
- ``interval_forward`` / ``ibp_margin``: interval arithmetic in the W⁺/W⁻ form
  (l' = W⁺l + W⁻u + b), with the margin spec folded into the last layer.
- ``write_torch_npz``: the README's torch snippet, with numpy arrays standing in for the
  modules (same file layout: state_dict names, ``__arch__`` and ``__meta__`` JSON).
"""

from __future__ import annotations

import json

import numpy as np


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def conv2d(x, W, b, stride, padding, dilation=1):
    """One image x (C, H, W), weight (O, C, kh, kw): PyTorch's cross-correlation, by loops."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    C, H, Wd = x.shape
    O, _, kh, kw = W.shape
    xp = np.zeros((C, H + 2 * ph, Wd + 2 * pw))
    xp[:, ph:ph + H, pw:pw + Wd] = x
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (Wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((O, Ho, Wo))
    for o in range(O):
        for i in range(Ho):
            for j in range(Wo):
                patch = xp[:, i * sh: i * sh + dh * (kh - 1) + 1: dh, j * sw: j * sw + dw * (kw - 1) + 1: dw]
                out[o, i, j] = np.sum(patch * W[o]) + (b[o] if b is not None else 0.0)
    return out


def _affine(spec, arrays, x):
    W = np.asarray(arrays[spec["name"] + ".weight"], np.float64)
    b = arrays.get(spec["name"] + ".bias")
    b = None if b is None else np.asarray(b, np.float64)
    if spec["type"] == "Linear":
        return W @ x + (b if b is not None else 0.0)
    return conv2d(x, W, b, spec.get("stride", 1), spec.get("padding", 0), spec.get("dilation", 1))


def torch_forward(arch, arrays, X):
    """Logits (n, K) of the Sequential described by ``arch`` (list of dicts) and ``arrays``."""
    out = []
    for x in np.asarray(X, np.float64):
        for spec in arch:
            if spec["type"] in ("Linear", "Conv2d"):
                x = _affine(spec, arrays, x)
            elif spec["type"] == "ReLU":
                x = np.maximum(x, 0)
            elif spec["type"] == "Flatten":
                x = x.reshape(-1)  # C-major: channel slowest, then rows, then columns
            elif spec["type"] in ("BatchNorm1d", "BatchNorm2d"):  # model.eval(): the running statistics
                g = arrays.get(spec["name"] + ".weight")
                b = arrays.get(spec["name"] + ".bias")
                x = batchnorm_forward(x[None], g, b, arrays[spec["name"] + ".running_mean"],
                                      arrays[spec["name"] + ".running_var"], spec.get("eps", 1e-5), training=False)[0]
            else:
                raise AssertionError(f"torch_forward: no rule for {spec['type']}")
        out.append(x)
    return np.array(out)


def _interval_affine(spec, arrays, l, u):
    W = np.asarray(arrays[spec["name"] + ".weight"], np.float64)
    b = arrays.get(spec["name"] + ".bias")
    Wp, Wn = np.maximum(W, 0), np.minimum(W, 0)
    if spec["type"] == "Linear":
        return Wp @ l + Wn @ u + (b if b is not None else 0), Wp @ u + Wn @ l + (b if b is not None else 0)
    st, pd, dl = spec.get("stride", 1), spec.get("padding", 0), spec.get("dilation", 1)
    return (conv2d(l, Wp, b, st, pd, dl) + conv2d(u, Wn, None, st, pd, dl),
            conv2d(u, Wp, b, st, pd, dl) + conv2d(l, Wn, None, st, pd, dl))


def interval_forward(arch, arrays, lo, hi):
    """Intervals (l, u) of the input of the last layer of the Sequential, one sample."""
    l, u = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    for spec in arch[:-1]:
        if spec["type"] in ("Linear", "Conv2d"):
            l, u = _interval_affine(spec, arrays, l, u)
        elif spec["type"] == "ReLU":
            l, u = np.maximum(l, 0), np.maximum(u, 0)
        else:
            l, u = l.reshape(-1), u.reshape(-1)
    return l, u


def ibp_margin(arch, arrays, lo, hi, C):
    """IBP lower bound of C·f over [lo, hi] with C folded into the last Linear layer, (S,)."""
    l, u = interval_forward(arch, arrays, lo, hi)
    last = arch[-1]["name"]
    M = C @ np.asarray(arrays[last + ".weight"], np.float64)
    b = arrays.get(last + ".bias")
    const = C @ b if b is not None else 0.0
    return np.maximum(M, 0) @ l + np.minimum(M, 0) @ u + const


def spec_rows(y, K):
    """e_y − e_j for j ≠ y in increasing order, (K − 1, K)."""
    return np.array([np.eye(K)[y] - np.eye(K)[j] for j in range(K) if j != y])


def write_torch_npz(path, modules, arrays, input_shape):
    """The README snippet with numpy: ``modules`` = [(name, type, fields)] as PyTorch would list
    them (tuples for kernel_size etc.), ``arrays`` = the state_dict."""
    arch = []
    for name, kind, fields in modules:
        entry = {"name": name, "type": kind}
        entry.update({k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()})
        arch.append(entry)
    np.savez(path, __arch__=json.dumps(arch), __meta__=json.dumps({"input_shape": list(input_shape)}),
             **{k: np.asarray(v, np.int64 if k.endswith("num_batches_tracked") else np.float32)
                for k, v in arrays.items()})
    return arch


# ---------------------------------------------------------------- BatchNorm (PyTorch semantics)
def _bn_axes(X):
    """Reduction axes of BatchNorm1d ((n, C) or (n, C, L)) / BatchNorm2d ((n, C, H, W)): all but C."""
    return (0,) + tuple(range(2, X.ndim))


def _per_channel(v, ndim):
    return np.asarray(v, np.float64).reshape((1, -1) + (1,) * (ndim - 2))


def batchnorm_scale_shift(mean, var, weight, bias, eps):
    """The per-channel affine map y = s·x + t of BN with statistics (mean, var): s = γ/√(var+ε),
    t = β − s·mean (γ = 1, β = 0 when affine=False: pass weight=bias=None)."""
    mean, var = np.asarray(mean, np.float64), np.asarray(var, np.float64)
    g = np.ones_like(mean) if weight is None else np.asarray(weight, np.float64)
    b = np.zeros_like(mean) if bias is None else np.asarray(bias, np.float64)
    s = g / np.sqrt(var + eps)
    return s, b - s * mean


def batchnorm_batch_stats(X):
    """Per-channel (mean, biased variance, unbiased variance) of the batch X, by explicit sums."""
    X = np.asarray(X, np.float64)
    axes = _bn_axes(X)
    m = int(np.prod([X.shape[a] for a in axes]))
    mean = X.sum(axis=axes) / m
    sq = ((X - _per_channel(mean, X.ndim)) ** 2).sum(axis=axes)
    return mean, sq / m, sq / (m - 1)


def batchnorm_forward(X, weight, bias, running_mean, running_var, eps, training):
    """torch.nn.BatchNorm{1,2}d forward: training normalizes with the batch's biased variance,
    eval with the running statistics."""
    X = np.asarray(X, np.float64)
    if training:
        mean, var, _ = batchnorm_batch_stats(X)
    else:
        mean, var = running_mean, running_var
    s, t = batchnorm_scale_shift(mean, var, weight, bias, eps)
    return _per_channel(s, X.ndim) * X + _per_channel(t, X.ndim)


def batchnorm_running_update(X, running_mean, running_var, num_batches_tracked, momentum=0.1):
    """PyTorch's running-stat update: r ← (1 − m)·r + m·batch stat, with the UNBIASED batch
    variance; momentum=None is the cumulative average m = 1/num_batches_tracked (after the increment)."""
    mean, _, var_u = batchnorm_batch_stats(X)
    n = int(num_batches_tracked) + 1
    m = 1.0 / n if momentum is None else float(momentum)
    return ((1 - m) * np.asarray(running_mean, np.float64) + m * mean,
            (1 - m) * np.asarray(running_var, np.float64) + m * var_u, n)


def batchnorm_interval(lo, hi, scale, shift):
    """Interval arithmetic of the per-channel affine map s·x + t: s⁺l + s⁻u + t, s⁺u + s⁻l + t."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    s, t = _per_channel(scale, lo.ndim), _per_channel(shift, lo.ndim)
    sp, sn = np.maximum(s, 0), np.minimum(s, 0)
    return sp * lo + sn * hi + t, sp * hi + sn * lo + t
