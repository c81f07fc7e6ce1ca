"""A sweep directory that cannot be corrupted or mixed, and no diverged run
counted as a result. Each test failed on the main of 2026-11-27."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ntkflow import init_params, train
from ntkflow.cli import main
from sweep_helpers import sweep_script
from ntkflow.sweep import cells_of, load_config, read_table, run_sweep
from ntkflow.sweep.env import environment
from ntkflow.paper.tracker import tracker



def small_cfg(config, *more):
    return load_config(config, ["grid.width=[20]", "grid.seed=[0]", *more])


# ----------------------------------------------------------------------------- 1. diverged runs
def test_lr_that_overflows_float32_is_refused():
    W, a = init_params(0, 10, 4)
    X, y = np.full((4, 4), 0.5), np.array([1.0, -1, 1, -1])
    with pytest.raises(ValueError, match="lr: .*float32"):
        train(W, a, X, y, 0.01, lr=1e300, epochs=1, dtype="float32")


def test_a_diverged_run_has_nan_errors_and_a_flag_never_zero_error():
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (8, 5)), rng.choice([-1.0, 1.0], 8)
    W, a = init_params(0, 30, 5)
    tr = train(W, a, X, y, 0.05, lr=3e38, epochs=20, batch_size=2, dtype="float32")
    assert tr.meta["diverged"] is True
    assert tr.meta["epochs_run"] < 20  # training stopped at the divergence
    assert np.isnan(tr.certified_error[-1]) and np.isnan(tr.train_error[-1])
    # a stable run is not flagged
    ok = train(W, a, X, y, 0.05, lr=1e-3, epochs=2, batch_size=2, dtype="float32")
    assert ok.meta["diverged"] is False and ok.meta["epochs_run"] == 2


def test_tracker_never_counts_a_nan_margin_as_correct():
    W, a = init_params(0, 10, 3)
    X, y = np.full((2, 3), 0.5), np.array([1.0, -1.0])
    import jax

    with jax.enable_x64(True):
        rec = tracker(*(jax.numpy.asarray(v) for v in (W, a, X, y)), 0.01, gram=False)
        out = rec(jax.numpy.full_like(W, np.nan))
    assert np.isnan(out["train_error"]) and np.isnan(out["certified_error"])


def test_a_diverged_cell_is_recorded_as_diverged_in_record_and_table(config, tmp_path):
    cfg = small_cfg(config, "train.lr=3e38", "train.dtype='float32'", "train.epochs=20")
    out = tmp_path / "div"
    run_sweep(cfg, out, quiet=True)
    rows = read_table(out / "results.csv")
    assert rows and all(r["diverged"] for r in rows)
    assert all(np.isnan(r["final_certified_error"]) and np.isnan(r["final_train_error"]) for r in rows)


# ----------------------------------------------------------------------------- 2. lock
def test_a_second_sweep_on_the_same_directory_is_refused(config, tmp_path):
    out = tmp_path / "locked"
    script = sweep_script(config, out, "slow_cell")
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "NTKFLOW_SLOW": "1"})
    try:
        deadline = time.time() + 60
        while not (out / "config.json").exists() and time.time() < deadline:
            time.sleep(0.1)
        with pytest.raises(ValueError, match="in use by another sweep") as e:
            run_sweep(load_config(config, ["grid.width=[20]"]), out, quiet=True, force=True)
        assert "\n" not in str(e.value)
    finally:
        proc.kill()
        proc.wait()
    # once the first sweep is gone the lock is free (the kernel drops it with the process)
    run_sweep(small_cfg(config), out, quiet=True, force=True)


# ----------------------------------------------------------------------------- 3. validated records
def _break(path: Path, how: str, other: Path | None = None):
    rec = json.loads(path.read_text())
    if how == "empty":
        path.write_text("{}")
    elif how == "missing":
        del rec["final"]["final_certified_error"]
        path.write_text(json.dumps(rec))
    elif how == "text":
        rec["final"]["final_loss"] = "low"
        path.write_text(json.dumps(rec))
    elif how == "other":
        path.write_text(other.read_text())
    elif how == "range":  # an error rate is a fraction: 7.5 and −2.0 are not results
        rec["final"]["final_certified_error"], rec["final"]["final_train_error"] = 7.5, -2.0
        path.write_text(json.dumps(rec))


@pytest.mark.parametrize("how", ["empty", "missing", "text", "other", "range"])
def test_invalid_records_are_named_moved_aside_and_recomputed(config, tmp_path, how):
    cfg = small_cfg(config)
    out = tmp_path / how
    run_sweep(cfg, out, quiet=True)
    ref = read_table(out / "results.csv")
    paths = sorted((out / "cells").glob("*.json"))
    victim, other = paths[0], paths[1]
    _break(victim, how, other)
    notes = []
    # figures read only valid records: an invalid one is reported, not a KeyError
    from ntkflow.reporting.plots import _curves_from_sweep

    curves, _, _ = _curves_from_sweep(out)
    assert sum(len(v) for v in curves.values()) >= 1
    run_sweep(cfg, out, quiet=True, say=notes.append)
    assert any(victim.name in n and "moved to" in n for n in notes)
    assert len(list((out / "invalid").iterdir())) == 1
    rows = read_table(out / "results.csv")
    assert len(rows) == len(cells_of(cfg))  # no duplicate row, no lost cell
    strip = [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]
    assert str(strip) == str([{k: v for k, v in r.items() if k != "wall_time"} for r in ref])


# ----------------------------------------------------------------------------- 4. config checked first
@pytest.mark.parametrize("override,match", [
    ("train.batch_size=100", "batch_size = 100 exceeds"),
    ("train.lr=nan", "train.lr must be > 0 and finite"),
    ("train.optimizer='sgdd'", "train.optimizer is 'sgdd'"),
    ("train.solver='rk5'", "train.solver is 'rk5'"),
    ("train.dtype='float16'", "train.dtype is 'float16'"),
    ("data.source='cifar'", "data.source is 'cifar'"),
    ("train.momentum=1.5", "train.momentum"),
    ("grid.seed=[18446744073709551615]", "grid.seed entries must be integers in"),
])
def test_a_config_that_would_fail_in_a_cell_never_touches_the_directory(config, tmp_path, override, match):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=match):
        run_sweep(load_config(config, [override]), out, quiet=True)
    assert not out.exists()


def test_mnist_dir_is_checked_in_the_config(config, tmp_path):
    with pytest.raises(ValueError, match="data.mnist_dir"):
        load_config(config, ["data.source='mnist'", f"data.mnist_dir='{tmp_path / 'nope'}'"])


def test_a_directory_without_finished_cells_is_not_locked_to_its_config(config, tmp_path):
    from sweep_helpers import failing_cell

    out = tmp_path / "fresh"
    with pytest.raises(RuntimeError):
        run_sweep(small_cfg(config), out, quiet=True, cell_fn=failing_cell)
    run_sweep(small_cfg(config, "train.lr=0.02"), out, quiet=True)  # no --force needed
    assert len(read_table(out / "results.csv")) == 3


# ----------------------------------------------------------------------------- 5. --force keeps cells
def test_force_keeps_finished_cells_outside_the_new_grid_and_says_so(config, tmp_path):
    out = tmp_path / "force"
    run_sweep(load_config(config, ["grid.seed=[0]"]), out, quiet=True)
    before = {p.name for p in (out / "cells").glob("*.json")}
    notes = []
    run_sweep(small_cfg(config), out, quiet=True, force=True, say=notes.append)
    assert {p.name for p in (out / "cells").glob("*.json")} == before  # nothing deleted
    assert any("3 finished cells outside the new grid are kept" in n for n in notes)
    assert len(read_table(out / "results.csv")) == 3
    # and switching back needs no recomputation
    run_sweep(load_config(config, ["grid.seed=[0]"]), out, quiet=True, force=True)
    assert len(read_table(out / "results.csv")) == 6


# ----------------------------------------------------------------------------- 6. temp files
def test_temp_files_of_an_interrupted_write_are_cleaned_on_resume(config, tmp_path):
    out = tmp_path / "tmpfiles"
    run_sweep(small_cfg(config), out, quiet=True)
    left = [out / "cells" / ".ibp-m20-eps0.01-s0-x.json.abc.tmp", out / ".results.csv.def.tmp"]
    for p in left:
        p.write_text("half")
    run_sweep(small_cfg(config), out, quiet=True)
    assert not any(p.exists() for p in left)


# ----------------------------------------------------------------------------- 7. environment per cell
def test_records_carry_their_environment_and_mixing_is_refused(config, tmp_path):
    cfg = small_cfg(config)
    out = tmp_path / "env"
    run_sweep(cfg, out, quiet=True)
    rows = read_table(out / "results.csv")
    env = environment()
    assert {r["backend"] for r in rows} == {env["backend"]} and {r["jax_version"] for r in rows} == {env["jax"]}
    # pretend one record came from another JAX on a GPU, and another cell is still to run
    p = sorted((out / "cells").glob("*.json"))[0]
    rec = json.loads(p.read_text())
    rec["env"] = {**rec["env"], "jax": "0.0.1", "backend": "gpu"}
    p.write_text(json.dumps(rec))
    cfg2 = small_cfg(config, "grid.seed=[0, 1]")
    with pytest.raises(ValueError, match="jax 0.0.1 on gpu.*--accept-env"):
        run_sweep(cfg2, out, quiet=True, force=True)
    run_sweep(cfg2, out, quiet=True, force=True, accept_env=True)
    assert {r["backend"] for r in read_table(out / "results.csv")} == {"gpu", env["backend"]}


# ----------------------------------------------------------------------------- CLI and executors
def test_config_paths_that_are_not_toml_files(tmp_path, capsys):
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00binary")
    for path, msg in ((tmp_path, "is a directory"), (tmp_path / "bin.toml", "not a text")):
        assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1


def test_workers_must_be_positive(config, tmp_path):
    with pytest.raises(ValueError, match="workers: must be an integer >= 1"):
        run_sweep(small_cfg(config), tmp_path / "w", workers=0, quiet=True)


def test_unreachable_dask_scheduler_is_one_line(config, tmp_path):
    import dask

    with dask.config.set({"ntkflow.scheduler-timeout": "1s"}), \
            pytest.raises(ValueError, match="scheduler: cannot reach dask scheduler") as e:
        run_sweep(small_cfg(config), tmp_path / "d", executor="dask", scheduler="tcp://127.0.0.1:9", quiet=True)
    assert "\n" not in str(e.value)


def test_killed_dask_worker_is_one_line_and_finished_cells_are_kept(config, tmp_path):
    import dask

    from sweep_helpers import killing_cell

    cfg = small_cfg(config)
    out = tmp_path / "killed"
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with pytest.raises(ValueError, match="KilledWorker.*rerun the same command") as e:
            run_sweep(cfg, out, executor="dask", scheduler="local", workers=1, quiet=True, cell_fn=killing_cell)
    assert "\n" not in str(e.value)
    assert not list((out / "cells").glob("ibp-m20-eps0.05-s0-*.json"))  # the killed cell has no record
    run_sweep(cfg, out, quiet=True)  # resumes locally
    assert len(read_table(out / "results.csv")) == 3


def test_a_record_from_before_a_metric_existed_stays_valid(config, tmp_path):
    """Registering a metric with a results column must not invalidate stored records: a
    record without the column is kept (not recomputed) and its table cell is empty."""
    cfg = small_cfg(config)
    out = tmp_path / "old"
    run_sweep(cfg, out, quiet=True)
    victim = sorted((out / "cells").glob("*.json"))[0]
    rec = json.loads(victim.read_text())
    del rec["final"]["final_pgd_error"], rec["final"]["loss_variation_final"]
    victim.write_text(json.dumps(rec))
    notes = []
    run_sweep(cfg, out, quiet=True, say=notes.append)
    assert not (out / "invalid").exists() and not notes
    assert json.loads(victim.read_text()) == rec  # kept as it was
    text = (out / "results.csv").read_text().splitlines()
    col = text[0].split(",").index("final_pgd_error")
    assert sum(line.split(",")[col] == "" for line in text[1:]) == 1
    assert sum(np.isnan(r["final_pgd_error"]) for r in read_table(out / "results.csv")) == 1  # read back as NaN
