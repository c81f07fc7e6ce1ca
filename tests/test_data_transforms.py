"""data.pool and data.scale: average pooling against a per-pixel loop, rescaling of the norms,
pooling before the box map, the one-line config errors, and cell keys unchanged at the defaults."""

import json
from pathlib import Path

import numpy as np
import pytest

from ntkflow._core.errors import NtkflowError
from ntkflow.data import average_pool, load, rescale
from ntkflow.paper.assumptions import normalize_to_box
from ntkflow.sweep.cells import Cell, cell_key, dataset_for
from ntkflow.sweep.config import resolve

ROOT = Path(__file__).resolve().parents[1]


def _pool_loop(img, k):
    """k×k means by explicit loops over the output pixels (C, H, W) → (C, H/k, W/k)."""
    C, H, W = img.shape
    out = np.zeros((C, H // k, W // k))
    for c in range(C):
        for i in range(H // k):
            for j in range(W // k):
                out[c, i, j] = sum(img[c, i * k + u, j * k + v] for u in range(k) for v in range(k)) / k ** 2
    return out


@pytest.mark.parametrize("k", [2, 4, 7])
def test_average_pool_matches_a_loop_flat_and_nchw(k):
    rng = np.random.default_rng(k)
    imgs = rng.uniform(0, 1, (3, 2, 28, 28))
    want = np.stack([_pool_loop(im, k) for im in imgs])
    np.testing.assert_allclose(average_pool(imgs, k, (2, 28, 28)), want, atol=1e-12)
    np.testing.assert_allclose(average_pool(imgs.reshape(3, -1), k, (2, 28, 28)), want.reshape(3, -1), atol=1e-12)


def test_pool_and_scale_through_load():
    raw = load("mnist25", n=20, normalize=False, seed=1, n_test=10)
    got = load("mnist25", n=20, normalize=False, seed=1, n_test=10, pool=2, scale=0.5)
    assert got.X.shape == (20, 196) and got.X_test.shape == (10, 196)
    np.testing.assert_array_equal(got.y, raw.y)
    want = np.stack([_pool_loop(x.reshape(1, 28, 28), 2).ravel() for x in raw.X]) * 0.5
    np.testing.assert_allclose(got.X, want, atol=1e-12)
    # scale alone multiplies every norm by exactly the factor
    big = load("mnist25", n=20, normalize=False, seed=1, n_test=10, scale=2.0)
    np.testing.assert_allclose(np.linalg.norm(big.X, axis=1), 2 * np.linalg.norm(raw.X, axis=1), rtol=1e-12)
    np.testing.assert_array_equal(rescale(raw.X, 1.0), raw.X)


def test_pool_comes_before_the_box_map():
    raw = load("mnist25", n=12, normalize=False, seed=0)
    got = load("mnist25", n=12, normalize=True, eps=0.1, seed=0, pool=4)
    np.testing.assert_allclose(got.X, normalize_to_box(average_pool(raw.X, 4, (1, 28, 28)), 0.1), atol=1e-12)
    assert got.X.min() >= 0.1 and got.X.max() <= 1.0 and got.normalized_eps == 0.1


@pytest.mark.parametrize("data, word", [
    ({"scale": 0.0}, "data.scale"), ({"scale": -1}, "data.scale"), ({"pool": 0}, "data.pool"),
    ({"pool": 3}, "data.pool"), ({"scale": 2.0, "normalize": True}, "data.scale"),
    ({"source": "synthetic", "pool": 2}, "data.pool"), ({"scale": "big"}, "data.scale"),
])
def test_config_errors_are_one_line(data, word):
    with pytest.raises(NtkflowError) as e:
        resolve({"data": data})
    assert word in str(e.value) and "\n" not in str(e.value)


def test_load_errors_name_the_argument():
    for kw, word in (({"pool": 5}, "pool"), ({"scale": 0.0}, "scale"), ({"scale": 2.0, "normalize": True}, "scale")):
        with pytest.raises(NtkflowError, match=word):
            load("mnist25", n=10, **kw)
    with pytest.raises(NtkflowError, match="pool"):
        load("synthetic", n=10, d=4, pool=2)


def test_cell_keys_at_the_defaults_are_the_stored_ones():
    """A stored sweep (written before data.scale and data.pool existed) keeps its cell keys:
    the key of each stored record, recomputed under today's defaults, is its file name's."""
    d = ROOT / "findings" / "advibp"
    cfg = resolve(json.loads((d / "config.json").read_text()))
    assert cfg["data"]["scale"] == 1.0 and cfg["data"]["pool"] == 1
    files = sorted((d / "cells").glob("*.json"))
    assert files
    for f in files:
        rec = json.loads(f.read_text())
        cell = Cell(**rec["cell"])
        assert f.stem.endswith(cell_key(cfg, cell))
    cell = Cell(**json.loads(files[0].read_text())["cell"])
    for k, v in (("scale", 0.5), ("pool", 2)):
        other = resolve({**json.loads((d / "config.json").read_text()), "data": {**cfg["data"], k: v}})
        assert cell_key(other, cell) != cell_key(cfg, cell)


def test_the_sweep_trains_on_the_transformed_data():
    cfg = resolve({"data": {"source": "mnist25", "n_train": 10, "pool": 4, "scale": 2.0}})
    ds = dataset_for(cfg, 0.0)
    raw = load("mnist25", n=10, normalize=False)
    np.testing.assert_allclose(ds.X, 2 * average_pool(raw.X, 4, (1, 28, 28)), atol=1e-12)
