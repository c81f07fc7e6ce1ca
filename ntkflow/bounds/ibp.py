"""Interval bound propagation (Gowal et al. 2018; wang2022 Eq. 3 for the two-layer net), one sample.

Nodes are numbered as in ``Net.shapes``: node 0 is the input, node k+1 the output of
layer k. The margin bound elides the last layer (Gowal et al. 2018, Sec. 3): the spec
rows C (f_y − f_j) are folded into the last affine layer and the interval rule is
applied to the product C·W once, which is tighter than subtracting logit intervals. For
the paper's net (C = y, last weight a/√m) this is exactly ``ibp_lower_margin``:
Σ_r (y a_r/√m)·[relu(l_r) if y a_r > 0 else relu(u_r)].
"""

from __future__ import annotations

from .ops import affine_back, box_lower, interval_step

__all__ = ["ibp_intervals", "ibp_margin_one"]


def ibp_intervals(net, params, lo, hi, stop: int | None = None) -> list:
    """[(l, u)] of nodes 0..stop (default: all but the logits)."""
    stop = len(net.layers) - 1 if stop is None else stop
    out = [(lo, hi)]
    for layer, p in zip(net.layers[:stop], params[:stop]):
        out.append(interval_step(layer, p, *out[-1]))
    return out


def ibp_margin_one(net, params, C, lo, hi, intervals=None):
    """IBP lower bound of C·f(x) over the box [lo, hi] for one sample, (S,)."""
    ivals = ibp_intervals(net, params, lo, hi) if intervals is None else intervals
    l, u = ivals[len(net.layers) - 1]
    M, c = affine_back(net.layers[-1], params[-1], C, l.shape)
    return box_lower(M, c, l, u)
