import numpy as np

import ntkflow as nf


def test_mnist25_is_real_balanced_and_scaled():
    d = nf.data.mnist25()
    assert d.X.shape == (1000, 784)
    assert set(np.unique(d.y)) == {-1.0, 1.0} and d.y.sum() == 0
    assert d.X.min() == 0.0 and d.X.max() == 1.0
    # real digits: most pixels are background, a stroke covers a sizeable minority
    ink = (d.X > 0.5).mean()
    assert 0.05 < ink < 0.3
    # labels come from digits 2 and 5: the two class means differ
    assert np.linalg.norm(d.X[d.y > 0].mean(0) - d.X[d.y < 0].mean(0)) > 1.0


def test_mnist25_subset_and_normalization():
    d = nf.data.mnist25(n=101, normalize_eps=0.04, seed=3)
    assert d.X.shape == (101, 784) and abs(d.y.sum()) == 1
    assert d.X.min() >= 0.04 and d.X.max() <= 1.0 and d.normalized_eps == 0.04
    d2 = nf.data.mnist25(n=101, normalize_eps=0.04, seed=3)
    np.testing.assert_array_equal(d.X, d2.X)


def test_idx_roundtrip_plain_and_gzip(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    for name in ("a-idx3-ubyte", "b-idx3-ubyte.gz"):
        nf.data.write_idx(tmp_path / name, arr)
        np.testing.assert_array_equal(nf.data.read_idx(tmp_path / name), arr)


def test_corrupt_or_truncated_idx_names_the_file(tmp_path):
    import pytest

    p = tmp_path / "train-images-idx3-ubyte"
    nf.data.write_idx(p, np.zeros((4, 2, 2), np.uint8))
    p.write_bytes(p.read_bytes()[:-3])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: IDX body"):
        nf.data.read_idx(p)
    q = tmp_path / "x.gz"
    q.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="x.gz"):
        nf.data.read_idx(q)
    r = tmp_path / "bad"
    r.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="bad magic"):
        nf.data.read_idx(r)


def test_mnist_from_idx_dir_selects_2_and_5_with_test_split(tmp_path):
    rng = np.random.default_rng(1)
    for split, k in (("train", 40), ("t10k", 20)):
        labels = rng.integers(0, 10, k).astype(np.uint8)
        labels[:4] = [2, 5, 2, 5]
        nf.data.write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (k, 28, 28)))
        nf.data.write_idx(tmp_path / f"{split}-labels-idx1-ubyte", labels)
    ds = nf.data.load("mnist", mnist_dir=tmp_path, eps=0.1)
    imgs = nf.data.read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    labs = nf.data.read_idx(tmp_path / "train-labels-idx1-ubyte")
    keep = (labs == 2) | (labs == 5)
    np.testing.assert_allclose(ds.X, 0.1 + 0.9 * imgs[keep].reshape(-1, 784) / 255.0)
    np.testing.assert_array_equal(ds.y, np.where(labs[keep] == 2, 1.0, -1.0))
    assert len(ds.y_test) == int(np.isin(nf.data.read_idx(tmp_path / "t10k-labels-idx1-ubyte"), [2, 5]).sum())


def test_synthetic_sources_and_split():
    s = nf.data.load("synthetic", n=30, eps=0.05, d=7, n_test=10)
    assert s.X.shape == (30, 7) and s.X_test.shape == (10, 7) and s.X.min() >= 0.05
    assert nf.check_assumption_1(s.X, 0.05)
    p = nf.data.load("parallel", n=30, eps=0.05, d=7)
    assert not nf.check_assumption_2(p.X, 0.05) and nf.check_assumption_2(p.X, 0.0)
    m = nf.data.load("mnist25", n=100, n_test=50, seed=2)
    assert len(m.y) == 100 and len(m.y_test) == 50
    # train and test are disjoint images
    assert not (m.X[:, None, :] == m.X_test[None, :, :]).all(-1).any()
