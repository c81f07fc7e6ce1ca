"""Nets as an extension point: ``init(seed, input_shape, init=...) -> params``, ``apply(params, X)``.

A net is a ``Net``: a sequence of layers (Dense, Conv2d, ReLU, Flatten; PyTorch layouts),
written per sample and vmapped. The bound rules in ``ntkflow.bounds`` walk its layer list.
Init schemes: ``ntkflow.nets.init``; the engine's input checks (one-line errors at the boundary of
bounds, attacks and kernels): ``ntkflow.nets.inputs``; the thesis's difference gain: ``ntkflow.analysis.gain``.
"""

from .base import Net, float_dtype
from .init import INITS
from .layers import Conv2d, Dense, Flatten, ReLU
from .torch_io import load_torch, save_torch
from .zoo import FAN2021_TABLE_F, cnn7, conv_net, dm_large, dm_medium, dm_small, fan2021, mlp, two_layer, two_layer_weights


__all__ = [
    "Net", "Dense", "Conv2d", "ReLU", "Flatten", "INITS", "float_dtype",
    "two_layer", "two_layer_weights", "mlp", "conv_net", "dm_small", "dm_medium", "dm_large", "cnn7", "fan2021",
    "FAN2021_TABLE_F", "load_torch", "save_torch",
]
