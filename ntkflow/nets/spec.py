"""Nets named by a string (sweep configs): ``net_from_spec("mlp:W,W", width=512, ...)``.

Specs:
- ``"two_layer"``: the paper's net (built by the caller from W, a: ``nets.two_layer``).
- ``"mlp:W1,W2,..."``: ``mlp`` with these hidden widths and one output per class; an entry
  ``W`` is replaced by the sweep's width (``"mlp:W,W"`` is a width family of 2-hidden-layer
  MLPs; ``"mlp:1024,1024,1024"`` the 3×1024 MLP). ``"mlp_ntk:..."`` the same in the NTK
  parameterization (every affine layer scaled by 1/√fan_in).
- ``"dm_small"``, ``"dm_medium"``, ``"dm_large"`` (fan2021 Table E), ``"cnn7"`` (the thesis):
  fixed architectures on images (C, H, W); the sweep's width must be 0 for them.
"""

from __future__ import annotations

from .._core.errors import NtkflowError
from .zoo import cnn7, dm_large, dm_medium, dm_small, mlp

__all__ = ["net_from_spec", "check_spec", "FIXED_NETS", "uses_width", "is_conv"]

FIXED_NETS = {"dm_small": dm_small, "dm_medium": dm_medium, "dm_large": dm_large, "cnn7": cnn7}


def _widths(spec: str) -> list[str]:
    body = spec.split(":", 1)[1] if ":" in spec else ""
    return [w.strip() for w in body.split(",")] if body.strip() else []


def check_spec(spec: str) -> None:
    """A one-line ValueError naming ``model.net`` for a spec that names no net."""
    if spec == "two_layer" or spec in FIXED_NETS:
        return
    kind = spec.split(":", 1)[0]
    ws = _widths(spec)
    if kind not in ("mlp", "mlp_ntk") or not ws or not all(w == "W" or (w.isdigit() and int(w) > 0) for w in ws):
        raise NtkflowError(f"model.net: unknown net {spec!r}; use 'two_layer', 'mlp:W1,W2,...' (hidden widths, "
                         f"integers or W for the grid's width), 'mlp_ntk:...', or one of {', '.join(FIXED_NETS)}")


def uses_width(spec: str) -> bool:
    """Whether the grid's width enters the net (two_layer: m; an MLP spec with W)."""
    return spec == "two_layer" or "W" in _widths(spec)


def is_conv(spec: str) -> bool:
    return spec in FIXED_NETS


def net_from_spec(spec: str, *, width: int, input_shape: tuple, classes: int):
    """The ``Net`` of ``spec`` with ``classes`` outputs (1 for ±1 labels) on ``input_shape``."""
    check_spec(spec)
    if spec == "two_layer":
        raise NtkflowError("model.net: 'two_layer' is built from (W, a) by ntkflow.nets.two_layer")
    if spec in FIXED_NETS:
        return FIXED_NETS[spec](input_shape=input_shape, classes=classes)
    hidden = [width if w == "W" else int(w) for w in _widths(spec)]
    param = "ntk" if spec.startswith("mlp_ntk") else "standard"
    return mlp((*hidden, classes), parameterization=param, input_shape=input_shape)
