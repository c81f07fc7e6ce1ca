"""Grouped sweeps: cells that share a net train as one fit_group, every record equals
the cell run alone, the table names the group, and a sweep resumes cell by cell."""

import json

import numpy as np

from ntkflow.sweep import run_sweep
from ntkflow.sweep.cells import Cell, cells_of
from ntkflow.sweep.config import resolve
from ntkflow.sweep.groups import group_id, groups_of
from ntkflow.sweep.store import read_table

RAW = {"data": {"source": "mnist10", "n_train": 20, "n_test": 10},
       "model": {"net": "mlp:W"},
       "grid": {"method": ["ibp", "pgd"], "width": [8], "eps": [0.05], "seed": [0, 1]},
       "train": {"lr": [2e-3, 5e-3], "epochs": 2, "batch_size": 10, "dtype": "float64"},
       "attack": {"steps": 2, "eval_steps": 3},
       "track": {"every": 1}}


def _cfg(**run):
    raw = json.loads(json.dumps(RAW))
    raw["run"] = run
    return resolve(raw)


def test_grouping_rules():
    cfg = _cfg()
    groups = groups_of(cfg, cells_of(cfg))
    assert sorted(len(g) for g in groups) == [2, 2]  # one group per method: the seeds train together
    assert {group_id(cfg, g[0]) for g in groups} == {"ibp-m8", "pgd-m8"}
    assert all(len(g) == 1 for g in groups_of(_cfg(batch_models=False), cells_of(cfg)))
    import pytest

    with pytest.raises(ValueError, match="^config: run.dask_resources.GPU must be a positive number"):
        _cfg(dask_resources={"GPU": 0})
    two = resolve({"grid": {"method": ["ibp", "pgd"], "width": [10], "eps": [0.1], "seed": [0, 1]}})
    # the paper's net: IBP runs its closed-form loop alone; other methods group per seed (a is in the net)
    assert group_id(two, Cell(10, "ibp", 0.1, 0)) == ""
    assert group_id(two, Cell(10, "pgd", 0.1, 1)) == "pgd-m10-s1"


def test_grouped_sweep_equals_cells_run_alone_and_resumes(tmp_path):
    grouped, alone = tmp_path / "grouped", tmp_path / "alone"
    run_sweep(_cfg(dask_resources={"GPU": 1}), grouped, quiet=True)  # in this process; the resume below: dask
    run_sweep(_cfg(batch_models=False), alone, quiet=True)
    a, b = read_table(grouped / "results.csv"), read_table(alone / "results.csv")
    assert len(a) == len(b) == 4
    for ra, rb in zip(a, b):
        assert ra["group"] in ("ibp-m8[2]", "pgd-m8[2]") and rb["group"] == ""
        for k, v in ra.items():
            if k in ("wall_time", "group") or isinstance(v, str) or isinstance(v, bool):
                continue
            assert (np.isnan(v) and np.isnan(rb[k])) or v == rb[k], k  # loop grouping on CPU: bit-identical
    # the methods figure reads the stored results (a deep net, two methods)
    from ntkflow.reporting.plots import figures

    names = {p.name for p in figures(grouped)}
    assert {"fig_methods.png", "fig_methods.pdf"} <= names and (grouped / "fig_methods.png").stat().st_size > 0
    # a lost record is recomputed alone-equal on resume (the rest of its group is kept), its group's
    # task on a dask LocalCluster whose worker offers one "GPU" resource (one group at a time)
    lost = sorted((grouped / "cells").glob("pgd-*s1*.json"))[0]
    before = json.loads(lost.read_text())
    lost.unlink()
    run_sweep(_cfg(dask_resources={"GPU": 1}), grouped, quiet=True, executor="dask", scheduler="local", workers=1)
    again = json.loads(lost.read_text())
    assert again["final"]["final_pgd_error"] == before["final"]["final_pgd_error"]
    assert again["series"] == before["series"]
