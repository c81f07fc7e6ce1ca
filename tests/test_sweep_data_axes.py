"""The data axes of a sweep: ``grid.n_train`` and ``grid.d`` on a synthetic source. Cells on one
point share data; a cell on the axes equals the same run configured in [data]; a config
without the axes keeps its resolved form and every cell key it had before they existed."""

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest

import ntkflow.data as D
from ntkflow import check_assumption_2
from ntkflow._core.errors import NtkflowError
from ntkflow.sweep import cells_of, read_table, resolve, run_cell, run_sweep
from ntkflow.sweep.build import cell_config, dataset_for
from ntkflow.sweep.cells import assumption_2_holds, cell_key
from ntkflow.sweep.config import canonical
from ntkflow.sweep.groups import group_id, groups_of

# Cell ids, keys and resolved configs as computed by the sweep before the data axes existed
# (commit 1191911): results directories are found by these names, so they must not move.
OLD = [
    ({"data": {"source": "synthetic", "n_train": 8, "d": 5, "normalize": True},
      "grid": {"method": ["standard", "ibp"], "width": [10, 20], "eps": [0.0, 0.01], "seed": [0, 1]}},
     "06ab99bf532d",
     [("ibp-m10-eps0-s0", "41f620c222"), ("ibp-m10-eps0-s1", "c11cec1ee2"), ("ibp-m10-eps0.01-s0", "93eba82d82"),
      ("ibp-m10-eps0.01-s1", "5c298be43e"), ("standard-m10-eps0-s0", "5b0f179555"),
      ("standard-m10-eps0-s1", "2ba53443a9"), ("ibp-m20-eps0-s0", "b6dcba151d"), ("ibp-m20-eps0-s1", "fa18d78375"),
      ("ibp-m20-eps0.01-s0", "7a62d8b595"), ("ibp-m20-eps0.01-s1", "977c975fff"),
      ("standard-m20-eps0-s0", "90faa9aa98"), ("standard-m20-eps0-s1", "bf59540d69")]),
    ({"data": {"source": "mnist25", "n_train": 40},
      "grid": [{"method": ["pgd", "crown_ibp"], "width": [16], "eps": [0.02]},
               {"method": ["advibp"], "width": [8], "eps": [0.1], "seed": [3]}],
      "train": {"lr": [0.01, 0.1], "epochs": 3}},
     "ead1b6685d27",
     [("advibp-m8-eps0.1-s3", "8c1eba35fc"), ("crown_ibp-m16-eps0.02-s0", "c617d0123a"),
      ("pgd-m16-eps0.02-s0", "37f17eef77")]),
]


@pytest.mark.parametrize("raw, resolved_hash, keys", OLD)
def test_a_config_without_data_axes_keeps_its_resolved_form_and_cell_keys(raw, resolved_hash, keys):
    cfg = resolve(raw)
    assert all("n_train" not in g and "d" not in g for g in cfg["grid"])
    # the keys added since (data.scale, data.pool) sit at their defaults; without them the resolved form is
    # the pinned one, and the store compares configs without later keys at their defaults
    assert cfg["data"]["scale"] == 1.0 and cfg["data"]["pool"] == 1
    old_form = {**cfg, "data": {k: v for k, v in cfg["data"].items() if k not in ("scale", "pool")}}
    assert hashlib.sha1(canonical(old_form).encode()).hexdigest()[:12] == resolved_hash
    assert [(c.id, cell_key(cfg, c)) for c in cells_of(cfg)] == keys


AXES = {"data": {"source": "synthetic", "n_test": 4, "normalize": True, "seed": 3},
        "grid": {"method": ["ibp"], "width": [10], "eps": [0.01, 0.1], "seed": [0, 1], "n_train": [8, 16],
                 "d": [4, 16]},
        "train": {"lr": 0.05, "epochs": 2, "batch_size": 4, "dtype": "float64"},
        "track": {"every": 1}}


def _raw(**over):
    raw = json.loads(json.dumps(AXES))
    for path, v in over.items():
        sec, key = path.split("__")
        raw[sec][key] = v
    return raw


def test_the_axes_multiply_the_grid_and_cells_on_one_point_share_its_data():
    cfg = resolve(AXES)
    cells = cells_of(cfg)
    assert len(cells) == 2 * 2 * 2 * 2  # ε × seed × n × d
    assert len({c.id for c in cells}) == len({cell_key(cfg, c) for c in cells}) == len(cells)
    for c in cells:
        ds = dataset_for(cell_config(cfg, c), c.eps)
        # the cell's data is the synthetic box at its (n, d) and the data seed, drawn directly
        ref = D.synthetic_box(c.n_train, c.d, c.eps, n_test=4, seed=3)
        np.testing.assert_array_equal(ds.X, ref.X)
        np.testing.assert_array_equal(ds.y, ref.y)
        np.testing.assert_array_equal(ds.X_test, ref.X_test)
        twin = next(o for o in cells if o != c and (o.n_train, o.d, o.eps) == (c.n_train, c.d, c.eps))
        assert dataset_for(cell_config(cfg, twin), twin.eps) is ds  # the other seed: the same data, not a copy
    # cells on different points never group (a group trains on one data set)
    pgd = resolve(_raw(grid__method=["pgd"], grid__seed=[0]))
    ids = {group_id(pgd, c) for c in cells_of(pgd)}
    assert len(ids) == 2 * 2 * 2 and all(  # (ε: data.normalize gives each ε its box) × n × d
        len({(c.n_train, c.d) for c in g}) == 1
        for g in groups_of(pgd, cells_of(pgd)))


def test_a_cell_on_the_axes_equals_the_same_run_configured_in_data():
    cfg = resolve(_raw(grid__eps=[0.05], grid__seed=[1], grid__n_train=[8], grid__d=[4]))
    (cell,) = cells_of(cfg)
    plain = resolve({**_raw(grid__eps=[0.05], grid__seed=[1]),
                     "data": {**AXES["data"], "n_train": 8, "d": 4},
                     "grid": {k: v for k, v in _raw(grid__eps=[0.05], grid__seed=[1])["grid"].items()
                              if k not in ("n_train", "d")}})
    (ref_cell,) = cells_of(plain)
    a, b = run_cell(cfg, cell), run_cell(plain, ref_cell)
    assert str(a["series"]) == str(b["series"]) and str(a["lr_grid"]) == str(b["lr_grid"])  # str: NaN == NaN
    assert str({k: v for k, v in a["final"].items() if k != "wall_time"}) == str(
        {k: v for k, v in b["final"].items() if k != "wall_time"})
    assert a["cell"] == {**b["cell"], "n_train": 8, "d": 4} and a["key"] != b["key"]


def test_results_have_n_train_d_and_assumption_2_columns_and_lambda0_per_point(tmp_path, monkeypatch):
    import ntkflow.paper.hinf as H

    seen = []

    def fake_lambda_0(X, y, eps, **kw):  # λ0 itself is tested in test_hinf; here: which data it gets
        seen.append((np.asarray(X).copy(), float(eps)))
        return SimpleNamespace(value=float(np.sum(X)), ci=(0.0, 1.0), samples=kw["samples"])

    monkeypatch.setattr(H, "lambda_0", fake_lambda_0)
    raw = _raw(grid__eps=[0.05], grid__seed=[1])  # (8, 4) at ε = 0.05 is compiled by the test above
    raw["grid"] = [{**raw["grid"], "n_train": [8], "d": [4]}, {**raw["grid"], "n_train": [12], "d": [6]}]
    raw["track"].update(lambda_0=True, lambda_0_samples=200)
    rows = read_table(run_sweep(resolve(raw), tmp_path / "out", quiet=True))
    assert sorted((r["n_train"], r["d"]) for r in rows) == [(8, 4), (12, 6)]
    for r in rows:
        ds = D.synthetic_box(int(r["n_train"]), int(r["d"]), 0.05, n_test=4, seed=3)
        assert r["assumption_2_holds"] == float(check_assumption_2(ds.X, 0.05).holds)
        assert r["cell_id"].endswith(f"-n{int(r['n_train'])}-d{int(r['d'])}")
    l0 = read_table(tmp_path / "out" / "lambda0.csv")
    assert sorted((r["n_train"], r["d"], r["eps"]) for r in l0) == [(8, 4, 0.05), (12, 6, 0.05)]
    for r in l0:  # each λ0 is taken on its own point's data
        ds = D.synthetic_box(int(r["n_train"]), int(r["d"]), 0.05, n_test=4, seed=3)
        assert r["lambda_0"] == float(np.sum(ds.X))
    assert len(seen) == 2 and all(e == 0.05 for _, e in seen)
    # a real source gets no exact Assumption 2 check (O(n² d)): NaN
    mnist = resolve({"data": {"source": "mnist25", "n_train": 10}})
    assert np.isnan(assumption_2_holds(mnist, cells_of(mnist)[0], dataset_for(mnist, 0.0)))


@pytest.mark.parametrize("over, message", [
    ({"data__source": "mnist25"}, r"^config: grid.n_train is an axis of the synthetic sources only \(synthetic, "
                                  r"parallel\); data.source is 'mnist25'$"),
    ({"data__n_train": 8}, r"^config: data.n_train and grid.n_train are both set; keep one$"),
    ({"grid__n_train": [1, 8]}, r"^config: grid.n_train entries must be integers >= 2, got 1$"),
    ({"grid__d": ["4"]}, r"^config: grid.d entries must be integers >= 1, got '4'$"),
    ({"grid__d": [4, 4]}, r"^config: grid.d entries must be distinct, got \[4, 4\]$"),
    ({"grid__d": []}, r"^config: grid.d must be a list, got \[\]$"),
])
def test_the_axes_are_checked_with_the_config(over, message):
    with pytest.raises(NtkflowError, match=message):
        resolve(_raw(**over))


def test_the_batch_is_checked_against_every_point_before_anything_is_written(tmp_path):
    cfg = resolve(_raw(grid__n_train=[4, 16], train__batch_size=8))
    with pytest.raises(NtkflowError, match=r"^config: train.batch_size = 8 exceeds the 4 training samples$"):
        run_sweep(cfg, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def test_a_directory_written_before_data_scale_and_pool_resumes_without_force(tmp_path):
    """A stored config.json without the later keys (at their defaults now) is the same config; a stored
    config that differs in a real setting is refused."""
    raw = {"data": {"source": "synthetic", "n_train": 4, "d": 2}, "grid": {"method": ["ibp"], "width": [4]},
           "train": {"epochs": 1}}
    cfg = resolve(raw)
    run_sweep(cfg, tmp_path, quiet=True)
    old = {**cfg, "data": {k: v for k, v in cfg["data"].items() if k not in ("scale", "pool")}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    run_sweep(cfg, tmp_path, quiet=True)  # no error: the same config, its finished cell found
    assert json.loads((tmp_path / "config.json").read_text())["data"]["scale"] == 1.0
    other = {**cfg, "grid": [{**cfg["grid"][0], "width": [4, 8]}]}  # holds the finished cell, differs
    (tmp_path / "config.json").write_text(json.dumps(other))
    with pytest.raises(NtkflowError, match="different config"):
        run_sweep(cfg, tmp_path, quiet=True)
