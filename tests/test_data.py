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
