"""BatchNorm's two modes as params: eval mode normalizes by the running statistics, train mode by the batch's.

A BatchNorm layer always computes the per-channel affine map of the statistics its params
carry under ``running_mean`` / ``running_var`` (``nets.layers``). The mode is therefore a
property of the params a rule is given, not a flag:

- eval mode (PyTorch's ``model.eval()``): the params as trained — the running statistics;
- train mode (``model.train()``): ``with_batch_stats(net, params, X)`` — the same params with
  each BN layer's statistics replaced by the mean and the BIASED variance of the clean batch
  X at that layer (computed layer by layer, each BN below already normalizing by its batch
  statistics, as PyTorch's training forward). They are differentiable functions of the
  weights below, so ``jax.grad`` through them is PyTorch's gradient through the batch
  statistics. IBP, CROWN and the gain then see the fixed affine map these statistics define,
  which is how auto_LiRPA and Shi et al. 2021 bound a BN net in IBP training (the
  statistics of the clean batch, not of the perturbed inputs).

``update_running_stats`` is PyTorch's buffer update of one training forward:
running ← (1 − m)·running + m·batch statistic with the UNBIASED batch variance,
m = ``momentum`` (None: the cumulative average m = 1/num_batches_tracked after the
increment), num_batches_tracked += 1. The statistics carry no gradient.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .._core.errors import NtkflowError
from .base import Net, apply_layer

__all__ = ["has_batchnorm", "batch_statistics", "with_batch_stats", "update_running_stats"]


def has_batchnorm(net) -> bool:
    """Whether ``net`` has a BatchNorm layer (a static property of its layer list)."""
    return any(layer.kind == "batchnorm" for layer in net.layers)


def _check(net, params, X):
    if not isinstance(net, Net):
        raise NtkflowError(f"net: expected an ntkflow.nets.Net, got {type(net).__name__}")
    X = jnp.asarray(X)
    if X.ndim < 2 or not jnp.issubdtype(X.dtype, jnp.floating):
        raise NtkflowError(f"X: expected floats of shape (n, *input_shape), got {X.dtype} {X.shape}")
    net.check_params(params, X.shape[1:])
    shapes = net.shapes(X.shape[1:])
    for i, layer in enumerate(net.layers):
        if layer.kind == "batchnorm" and X.shape[0] * math.prod(shapes[i][1:]) < 2:
            raise NtkflowError(f"X: BatchNorm layer {net.names[i]} needs more than one value per channel "
                               f"in train mode, got a batch of {X.shape[0]} of per-sample shape {shapes[i]}")
    return X


def batch_statistics(net, params, X) -> tuple:
    """The training forward of the clean batch X (n, *input_shape).

    Returns (train-mode params, {i: (mean, biased variance, values per channel)} for every
    BatchNorm layer i). Internal: valid input (see ``with_batch_stats``)."""
    out, stats, x = list(params), {}, X
    last = max((i for i, layer in enumerate(net.layers) if layer.kind == "batchnorm"), default=-1)
    for i, layer in enumerate(net.layers[: last + 1]):
        p = params[i]
        if layer.kind == "batchnorm":
            axes = (0,) + tuple(range(2, x.ndim))  # every axis but the channel's
            mean = jnp.mean(x, axis=axes)
            var = jnp.mean(jnp.square(x - layer.per_channel(mean, x.ndim - 1)), axis=axes)
            count = x.size // x.shape[1]
            p = {**p, "running_mean": mean.astype(p["running_mean"].dtype),
                 "running_var": var.astype(p["running_var"].dtype)}
            out[i], stats[i] = p, (mean, var, count)
        if i < last:
            x = jax.vmap(lambda v, layer=layer, p=p: apply_layer(layer, p, v))(x)
    return tuple(out), stats


def with_batch_stats(net, params, X):
    """Train-mode params: every BatchNorm layer normalizes by the clean batch X's statistics.

    Args:
        net, params: an ``ntkflow.nets.Net`` and its params.
        X: (n, *input_shape) the clean batch (more than one value per channel at every BN).
    Returns:
        params of the same structure, each BN layer's ``running_mean`` / ``running_var``
        replaced by the batch mean and biased variance at that layer (differentiable in
        params); ``params`` itself for a net without BatchNorm.
    """
    if not has_batchnorm(net):
        return params
    return _train_params(net, params, _check(net, params, X))


def update_running_stats(net, params, X, *, into=None):
    """PyTorch's running-statistics update for one training forward of the clean batch X.

    The batch statistics are computed under ``params`` (the weights of the forward: in a
    training step the PRE-step params, as in PyTorch, whose forward updates the buffers before
    the optimizer steps) and applied to ``params``'s buffers; the result is ``into`` (default
    ``params``) with each BN layer's ``running_mean``, ``running_var`` and
    ``num_batches_tracked`` replaced — so an optimizer's change to the buffers (weight decay)
    is discarded. No gradient flows through the update. ``into`` unchanged (``params`` for
    ``into=None``) for a net without BatchNorm.
    """
    into = params if into is None else into
    if not has_batchnorm(net):
        return into
    return _updated(net, params, _check(net, params, X), into)


@jax.jit
def _train_params(net, params, X):
    return batch_statistics(net, params, X)[0]


@jax.jit
def _updated(net, params, X, into):
    _, stats = batch_statistics(net, params, X)
    out = list(into)
    for i, (mean, var, count) in stats.items():
        layer, p = net.layers[i], params[i]
        n = p["num_batches_tracked"] + 1
        m = 1.0 / n if layer.momentum is None else layer.momentum
        rm, rv = p["running_mean"], p["running_var"]
        new = {"running_mean": ((1 - m) * rm + m * mean).astype(rm.dtype),
               "running_var": ((1 - m) * rv + m * var * (count / (count - 1))).astype(rv.dtype),
               "num_batches_tracked": jnp.asarray(n, p["num_batches_tracked"].dtype)}
        out[i] = {**out[i], **jax.lax.stop_gradient(new)}  # buffers: no gradient, as PyTorch's
    return tuple(out)
