"""Built-in nets: the paper's two-layer net, MLPs, and the seeds' CNNs.

Paddings: fan2021 Tables E/F give kernel, filters and stride only. DM-small and DM-medium
use no padding and DM-large padding 1, as in the IBP paper's (Gowal et al. 2018) "VALID"/
"SAME" convolutions and CROWN-IBP's PyTorch model definitions of the same three nets.
Table F's models use padding 1 (CROWN-IBP's convention for its model families; the print
does not say) — pass ``padding=0`` for the unpadded variant.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from .. import _validate as V
from .._core.errors import NtkflowError
from .base import Net
from .layers import BatchNorm1d, BatchNorm2d, Conv2d, Dense, Flatten, ReLU

__all__ = ["two_layer", "two_layer_weights", "mlp", "dm_small", "dm_medium", "dm_large", "cnn7", "fan2021",
           "FAN2021_TABLE_F", "conv_net"]


def two_layer(W, a):
    """The paper's net f = m^-1/2 Σ_r a_r relu(w_rᵀx) (Eq. 1) as ``(net, params)``.

    W (m, d) is the only trainable parameter (``params[0]["weight"]``); ``a`` (m,) ∈ {±1} is
    frozen inside the output layer, with the m^-1/2 as that layer's scale. The engine
    dispatches this net to the closed forms (``ibp_lower_margin``, ``gram_matrix`` Eq. 6).
    """
    W = V.array("W", W, 2)
    a = V.output_weights(a, W.shape[0])
    m, d = W.shape
    net = Net((Dense(m, d, bias=False), ReLU(),
               Dense(1, m, bias=False, scale=1.0 / math.sqrt(m), fixed=jnp.asarray(a)[None, :])),
              input_shape=(d,), tag="two_layer")
    return net, ({"weight": jnp.asarray(W)}, {}, {})


def two_layer_weights(net, params):
    """``(W, a)`` of a net built by ``two_layer``."""
    if getattr(net, "tag", None) != "two_layer":
        raise NtkflowError("net: not the paper's two-layer net (build it with ntkflow.nets.two_layer)")
    return params[0]["weight"], net.layers[2].fixed[0]


def mlp(widths, *, parameterization: str = "standard", input_shape=None, bias: bool = True) -> Net:
    """Flatten, then Dense(w) + ReLU for each hidden width, then Dense(widths[-1]) (the logits).

    ``mlp((1024, 1024, 1024, 10))`` is the 3×1024 MLP with 10 classes. ``parameterization``:
    "standard" (PyTorch) or "ntk" (every affine layer scaled by 1/√fan_in).
    """
    widths = tuple(V.positive_int("widths", w) for w in widths)
    if not widths:
        raise NtkflowError("widths: needs at least the number of outputs")
    scale = _scale(parameterization)
    layers = [Flatten()]
    for w in widths[:-1]:
        layers += [Dense(w, bias=bias, scale=scale), ReLU()]
    layers.append(Dense(widths[-1], bias=bias, scale=scale))
    return Net(tuple(layers), input_shape=input_shape)


def _scale(parameterization):
    if parameterization not in ("standard", "ntk"):
        raise NtkflowError(f"parameterization: must be 'standard' or 'ntk', got {parameterization!r}")
    return 1.0 if parameterization == "standard" else "fan_in"


def conv_net(convs, fcs, classes: int, input_shape, *, parameterization: str = "standard") -> Net:
    """Conv2d(out, k, stride, padding) + ReLU for each entry of ``convs``, Flatten, Dense + ReLU
    for each width in ``fcs``, then Dense(classes)."""
    scale = _scale(parameterization)
    layers = []
    for out, k, s, p in convs:
        layers += [Conv2d(out, k, s, p, scale=scale), ReLU()]
    layers.append(Flatten())
    for w in fcs:
        layers += [Dense(w, scale=scale), ReLU()]
    layers.append(Dense(V.positive_int("classes", classes), scale=scale))
    net = Net(tuple(layers), input_shape=tuple(input_shape))
    net.shapes(net.input_shape)  # a kernel that does not fit the input fails here
    return net


def dm_small(input_shape=(1, 28, 28), classes: int = 10, **kw) -> Net:
    """DM-small (fan2021 Table E): Conv 16 4×4+2, Conv 32 4×4+1, FC 100."""
    return conv_net([(16, 4, 2, 0), (32, 4, 1, 0)], [100], classes, input_shape, **kw)


def dm_medium(input_shape=(1, 28, 28), classes: int = 10, **kw) -> Net:
    """DM-medium (fan2021 Table E): Conv 32 3×3+1, Conv 32 4×4+2, Conv 64 3×3+1, Conv 64 4×4+2, FC 512, FC 512."""
    return conv_net([(32, 3, 1, 0), (32, 4, 2, 0), (64, 3, 1, 0), (64, 4, 2, 0)], [512, 512], classes,
                    input_shape, **kw)


def dm_large(input_shape=(1, 28, 28), classes: int = 10, **kw) -> Net:
    """DM-large (fan2021 Table E): Conv 64 3×3+1, Conv 64 3×3+1, Conv 128 3×3+2, Conv 128 3×3+1 (×2), FC 512."""
    return conv_net([(64, 3, 1, 1), (64, 3, 1, 1), (128, 3, 2, 1), (128, 3, 1, 1), (128, 3, 1, 1)], [512],
                    classes, input_shape, **kw)


def cnn7(input_shape=(3, 32, 32), classes: int = 10, *, width: int = 64, linear: int = 512, bn: bool = False,
         **kw) -> Net:
    """CNN-7: Conv w 3×3+1, Conv w 3×3+1, Conv 2w 3×3+2, Conv 2w 3×3+1 (×2), FC ``linear``, FC classes
    (all convs padded by 1) — fan-ins 27, 576, 1152, 32768 on CIFAR (thesis Table 3.1).

    ``bn=False``: the thesis's (Sec. 3.3, after Xu et al. 2020), without BatchNorm.
    ``bn=True``: Shi et al. 2021's ``cnn_7layer_bn`` (CTBench's CNN7): a BatchNorm2d after every
    conv and a BatchNorm1d after the first FC, each before its ReLU (conv and FC keep their biases).
    """
    w = V.positive_int("width", width)
    convs = [(w, 3, 1, 1), (w, 3, 1, 1), (2 * w, 3, 2, 1), (2 * w, 3, 1, 1), (2 * w, 3, 1, 1)]
    fc = V.positive_int("linear", linear)
    if not isinstance(bn, bool):
        raise NtkflowError(f"bn: must be true or false, got {bn!r}")
    if not bn:
        return conv_net(convs, [fc], classes, input_shape, **kw)
    scale = _scale(kw.pop("parameterization", "standard"))
    if kw:
        raise NtkflowError(f"cnn7: unknown arguments {sorted(kw)}")
    layers = []
    for out, k, s, p in convs:
        layers += [Conv2d(out, k, s, p, scale=scale), BatchNorm2d(out), ReLU()]
    layers += [Flatten(), Dense(fc, scale=scale), BatchNorm1d(fc), ReLU(),
               Dense(V.positive_int("classes", classes), scale=scale)]
    net = Net(tuple(layers), input_shape=tuple(input_shape))
    net.shapes(net.input_shape)
    return net


# fan2021 Table F: (filters, kernel, stride) per conv, then the FC width.
FAN2021_TABLE_F = {
    "A": ([(8, 3, 2), (16, 3, 1)], 100),
    "B": ([(16, 3, 2), (32, 3, 1)], 100),
    "C": ([(32, 3, 2), (64, 3, 1)], 100),
    "D": ([(8, 4, 2), (16, 4, 1)], 512),
    "E": ([(16, 4, 2), (32, 4, 1)], 512),
    "F": ([(32, 4, 2), (64, 4, 1)], 512),
    "G": ([(8, 3, 2), (16, 3, 1), (32, 3, 1), (64, 3, 1)], 512),
    "H": ([(16, 3, 2), (32, 3, 1), (64, 3, 1), (128, 3, 1)], 512),
    "I": ([(8, 3, 1), (8, 4, 2), (16, 3, 1), (16, 4, 2)], 512),
    "J": ([(16, 3, 1), (16, 4, 2), (32, 3, 1), (32, 4, 2)], 512),
}


def fan2021(model: str, input_shape=(1, 28, 28), classes: int = 10, *, padding: int = 1, **kw) -> Net:
    """Model A–J of fan2021 Table F (H, I, J: MNIST only in the paper)."""
    if model not in FAN2021_TABLE_F:
        raise NtkflowError(f"model: must be one of {', '.join(FAN2021_TABLE_F)}, got {model!r}")
    convs, fc = FAN2021_TABLE_F[model]
    p = V.positive_int("padding", padding, minimum=0)
    return conv_net([(o, k, s, p) for o, k, s in convs], [fc], classes, input_shape, **kw)

