import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ntkflow.cli import main
from sweep_helpers import sweep_script
from ntkflow.sweep import cells_of, load_config, read_table, resolve, run_sweep
from ntkflow.sweep.config import apply_override



def table(out):
    """The results table without wall times, NaN as None (so == compares it)."""
    rows = read_table(Path(out) / "results.csv")
    for r in rows:
        r.pop("wall_time")
        for k, v in r.items():
            if isinstance(v, float) and np.isnan(v):
                r[k] = None
    return rows


def test_config_defaults_overrides_and_cells(config):
    cfg = load_config(config, ["train.epochs=3", "grid.width=[20]", "data.source=synthetic"])
    assert cfg["train"]["epochs"] == 3 and cfg["grid"][0]["width"] == [20]
    assert cfg["train"]["optimizer"] == "sgd"  # default filled in
    cells = cells_of(cfg)
    # standard cells ignore the ε grid: 2 seeds × 1 width + ibp 2 eps × 2 seeds
    assert len(cells) == 2 + 4
    assert {c.eps for c in cells if c.method == "standard"} == {0.0}


@pytest.mark.parametrize("override,match", [
    ("train.lrr=0.1", "unknown key train.lrr"),
    ("train.lr='fast'", "train.lr must be a number"),
    ("train.epochs=2.5", "train.epochs must be an integer"),
    ("grid.method=['adv']", "grid.method has 'adv'"),
    ("grid.eps=[2.0]", r"grid.eps entries must be numbers in \[0, 1\]"),
    ("grid.width=[0]", "grid.width entries must be positive integers"),
    ("nonsense", "expected section.key=VALUE"),
    ("train.lr=-1.0", "train.lr must be > 0"),
])
def test_bad_config_values_are_one_line_errors(config, override, match):
    with pytest.raises(ValueError, match=match) as e:
        load_config(config, [override])
    assert "\n" not in str(e.value)


def test_bad_config_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr = 1")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match=r"unknown section \[trian\]"):
        resolve({"trian": {}})


def test_sweep_table_resume_and_config_guard(config, tmp_path):
    cfg = load_config(config)
    out = tmp_path / "run"
    run_sweep(cfg, out, quiet=True)
    rows = table(out)
    assert len(rows) == len(cells_of(cfg)) == 12
    assert json.loads((out / "config.json").read_text()) == cfg  # the resolved config is written
    # records match the table
    rec = json.loads(next((out / "cells").glob("ibp-m40-eps0.05-s1-*.json")).read_text())
    row = next(r for r in rows if r["cell_id"] == "ibp-m40-eps0.05-s1")
    assert row["final_certified_error"] == rec["final"]["final_certified_error"]
    assert rec["series"]["loss"][-1] == row["final_loss"]
    # the costly metrics are recorded on the paper's net's closed-form path too
    assert np.isfinite(row["loss_variation_final"]) and row["loss_variation_final"] == rec["series"]["loss_variation"][-1]
    # rerun: nothing to do, same table
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    run_sweep(cfg, out, quiet=True)
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")} == mtimes
    # a different config is refused, then accepted with force; valid cells are kept
    cfg2 = load_config(config, ["grid.width=[20]"])
    with pytest.raises(ValueError, match="different config"):
        run_sweep(cfg2, out, quiet=True)
    run_sweep(cfg2, out, quiet=True, force=True)
    assert len(table(out)) == 6
    assert all(p in mtimes for p in (out / "cells").glob("*.json"))


def test_resume_after_sigkill_gives_the_same_table(config, tmp_path):
    cfg = load_config(config)
    ref = tmp_path / "ref"
    run_sweep(cfg, ref, quiet=True)
    out = tmp_path / "killed"
    script = sweep_script(config, out, "dying_cell")
    env = {**os.environ, "NTKFLOW_DIE_AT": "ibp-m40-eps0.01-s0"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert proc.returncode == -9  # SIGKILL mid-sweep
    partial = table(out)
    assert 0 < len(partial) < 12
    assert not list((out / "cells").glob(".*"))  # no half-written record left behind
    run_sweep(cfg, out, quiet=True)
    assert table(out) == table(ref)


def test_dask_local_cluster_gives_the_same_table(config, tmp_path):
    cfg = load_config(config, ["grid.seed=[0]"])
    # each worker of the LocalCluster offers one "GPU" and every cell asks for it (one at a time)
    cfg["run"]["dask_resources"] = {"GPU": 1}
    run_sweep(cfg, tmp_path / "local", quiet=True)
    run_sweep(cfg, tmp_path / "dask", executor="dask", scheduler="local", workers=2, quiet=True)
    assert table(tmp_path / "dask") == table(tmp_path / "local")
    with pytest.raises(ValueError, match="scheduler"):
        run_sweep(cfg, tmp_path / "x", executor="dask", quiet=True)


def test_corrupt_results_files_are_named(config, tmp_path):
    cfg = load_config(config, ["grid.width=[20]", "grid.seed=[0]"])
    out = tmp_path / "run"
    run_sweep(cfg, out, quiet=True)
    (out / "results.csv").write_text("method,width,eps\nibp,20\n")
    with pytest.raises(ValueError, match="results.csv: line 2"):
        read_table(out / "results.csv")
    rec = next((out / "cells").glob("*.json"))
    good = rec.read_text()
    rec.write_text("{truncated")
    notes = []
    run_sweep(cfg, out, quiet=True, say=notes.append)  # named, moved aside (not deleted), recomputed
    assert any(rec.name in n and "moved to" in n for n in notes)
    assert [p.read_text() for p in (out / "invalid").iterdir()] == ["{truncated"]
    new, ref = json.loads(rec.read_text()), json.loads(good)
    for r in (new, ref):
        r["final"].pop("wall_time")
    assert new["series"] == ref["series"] and str(new["final"]) == str(ref["final"])  # str: NaN == NaN


def test_cli_sweep_and_figures_from_a_tiny_stored_sweep(config, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cli"
    assert main(["sweep", str(config), "--out", str(out), "--quiet", "--set", "grid.seed=[0,1]"]) == 0
    captured = {}
    import ntkflow.reporting.plots as P

    real_save = P.save

    def spy(fig, path):
        captured[Path(path).name] = fig
        return real_save(fig, path)

    monkeypatch.setattr(P, "save", spy)
    assert main(["figures", str(out)]) == 0
    for name in ("fig1a", "fig1b"):
        assert (out / f"{name}.png").stat().st_size > 0 and (out / f"{name}.pdf").exists()
    # the plotted points are the table's means over seeds
    rows = read_table(out / "results.csv")
    ax = captured["fig1a"].axes[0]
    lines = {c.get_label(): c.lines[0] for c in ax.containers}
    std = lines["standard training"]
    for w, v in zip(*std.get_data()):
        vals = [r["final_train_error"] for r in rows if r["method"] == "standard" and r["width"] == w]
        assert v == pytest.approx(np.mean(vals))
    ibp = lines["IBP, ε = 0.05 (certified)"]
    for w, v in zip(*ibp.get_data()):
        vals = [r["final_certified_error"] for r in rows if r["method"] == "ibp" and r["width"] == w
                and r["eps"] == 0.05]
        assert v == pytest.approx(np.mean(vals))
    # a bad CLI input is one line on stderr, exit 2
    assert main(["sweep", str(config), "--out", str(out), "--set", "train.lr=0"]) == 2
    assert "error: config: train.lr" in capsys.readouterr().err


def test_override_applies_to_every_grid_table():
    raw = {"grid": [{"width": [1]}, {"width": [2]}]}
    apply_override(raw, "grid.seed=[3]")
    assert all(g["seed"] == [3] for g in raw["grid"])


def test_demo_command_runs_a_config_and_prints_the_claims(config, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--config", str(config), "--out", str(out), "--quiet", "--set", "grid.seed=[0]"]) == 0
    text = capsys.readouterr().out
    assert "figure:" in text and (out / "fig1a.png").exists()
    assert "IBP certified error above standard error (95% interval of the difference above 0) in" in text
    rows = read_table(out / "results.csv")
    n_pairs = sum(1 for r in rows if r["method"] == "ibp")
    assert f"/{n_pairs} (width, ε) pairs" in text
    assert "IBP-trained nets, clean error:" in text and "chosen learning rates" in text
    # a changed demo config reuses the cells that are still valid instead of refusing
    before = {p.name for p in (out / "cells").glob("*.json")}
    assert main(["demo", "--config", str(config), "--out", str(out), "--quiet", "--set", "grid.seed=[0,1]"]) == 0
    assert before < {p.name for p in (out / "cells").glob("*.json")}
    assert main(["demo", "--config", str(tmp_path / "none.toml"), "--out", str(out)]) == 2


def test_flow_sweep_with_gram_and_lambda0_makes_the_theory_figures(tmp_path, monkeypatch):
    cfg = resolve({
        "data": {"source": "synthetic", "n_train": 8, "d": 5, "normalize": True},
        "grid": {"method": ["ibp"], "width": [20, 40], "eps": [0.0, 0.02], "seed": [0]},
        "train": {"flow": True, "t1": 0.1, "certify": True, "dt": 0.005},
        "track": {"saves": 5, "gram": True, "lambda_0": True, "lambda_0_samples": 400},
    })
    out = tmp_path / "theory"
    run_sweep(cfg, out, quiet=True)
    rec = json.loads(next((out / "cells").glob("ibp-m40-eps0.02-*.json")).read_text())
    assert len(rec["ts"]) == 5 and np.isfinite(rec["final"]["error_estimate"])
    assert np.all(np.isfinite(rec["series"]["lambda_min"]))
    l0 = read_table(out / "lambda0.csv")
    assert {r["eps"] for r in l0} == {0.0, 0.02}
    import ntkflow.reporting.plots as P

    captured = {}
    real_save = P.save
    monkeypatch.setattr(P, "save", lambda fig, path: captured.setdefault(Path(path).name, fig) and real_save(fig, path))
    names = {p.name for p in P.figures(out)}
    assert {"fig_theory.png", "fig_scaling.png", "fig_lambda0.png"} <= names
    # λ0 plotted is the table's
    line = captured["fig_lambda0"].axes[0].containers[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), [r["lambda_0"] for r in sorted(l0, key=lambda r: r["eps"])])
    # λmin(H(t))/λ0 plotted is the record's series over the table's λ0
    ax = captured["fig_theory"].axes[3]  # second row, ε = 0.02
    y40 = [ln for ln in ax.lines if ln.get_label() == "m = 40"][0].get_ydata()
    lam = next(r["lambda_0"] for r in l0 if r["eps"] == 0.02)
    np.testing.assert_allclose(y40, np.asarray(rec["series"]["lambda_min"]) / lam)


def test_a_fixed_architecture_needs_no_width(tmp_path):
    path = tmp_path / "dm.toml"
    path.write_text('[data]\nsource = "mnist10"\nn_train = 20\n[model]\nnet = "dm_small"\n')
    assert load_config(path, [])["grid"][0]["width"] == [0]
    with pytest.raises(ValueError, match=r"grid.width must be \[0\]"):  # a width given for it is still an error
        load_config(path, ["grid.width=[5]"])


def test_standard_is_judged_at_the_grid_radii_in_a_method_comparison():
    """Unset grid.standard_at_eps: the paper's pair keeps standard at ε = 0 (Figure 1); with
    any other method standard gets the grid's radii, so its robust errors are at the cell's ε."""
    from ntkflow.sweep.cells import cells_of
    from ntkflow.sweep.config import resolve

    def std_eps(methods, **grid):
        cfg = resolve({"grid": {"method": methods, "eps": [0.03], "width": [10], **grid}})
        return sorted({c.eps for c in cells_of(cfg) if c.method == "standard"})

    assert std_eps(["standard", "ibp"]) == [0.0]
    assert std_eps(["standard", "pgd"]) == [0.03]
    assert std_eps(["standard", "pgd"], standard_at_eps=False) == [0.0]  # an explicit value wins
    assert std_eps(["standard", "ibp"], standard_at_eps=True) == [0.03]
