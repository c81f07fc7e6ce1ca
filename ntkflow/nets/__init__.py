"""Nets as an extension point: ``init(seed, input_shape, init=...) -> params``, ``apply(params, X)``.

A net is a ``Net``: a sequence of layers (Dense, Conv2d, BatchNorm1d/2d, ReLU, Flatten; PyTorch
layouts), written per sample and vmapped. The bound rules in ``ntkflow.bounds`` walk its layer list.
BatchNorm's train mode (the clean batch's statistics): ``with_batch_stats``; its running
statistics: ``update_running_stats`` (``ntkflow.nets.batchnorm``).
Init schemes: ``ntkflow.nets.init``; the engine's input checks (one-line errors at the boundary of
bounds, attacks and kernels): ``ntkflow.nets.inputs``; the thesis's difference gain: ``ntkflow.analysis.gain``.
"""

from .base import Net, float_dtype
from .init import INITS
from .batchnorm import batch_statistics, has_batchnorm, update_running_stats, with_batch_stats
from .layers import BatchNorm1d, BatchNorm2d, Conv2d, Dense, Flatten, ReLU
from .torch_io import load_torch, save_torch
from .zoo import FAN2021_TABLE_F, cnn7, conv_net, dm_large, dm_medium, dm_small, fan2021, mlp, two_layer, two_layer_weights


__all__ = [
    "Net", "Dense", "Conv2d", "BatchNorm1d", "BatchNorm2d", "ReLU", "Flatten", "INITS", "float_dtype",
    "has_batchnorm", "batch_statistics", "with_batch_stats", "update_running_stats",
    "two_layer", "two_layer_weights", "mlp", "conv_net", "dm_small", "dm_medium", "dm_large", "cnn7", "fan2021",
    "FAN2021_TABLE_F", "load_torch", "save_torch",
]
