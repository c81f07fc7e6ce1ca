import json

import numpy as np

from ntkflow.cli import main
from ntkflow.reporting.plots import fig_flow
from ntkflow.paper.tracker import Trajectory


def test_report_prints_lambda0_and_assumptions(capsys):
    assert main(["report", "--n", "40", "--eps", "0.01", "--samples", "1000"]) == 0
    out = capsys.readouterr().out
    assert "Assumption 1" in out and "holds" in out and "λ0 = λmin(H∞)" in out and "m =   10000" in out


def test_check_writes_json_and_markdown(tmp_path, capsys):
    js, md = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["check", "--data", "synthetic", "--n", "10", "--eps", "0.01", "--width", "60", "--samples", "500",
                 "--flow-n", "6", "--quiet", "--json", str(js), "--markdown", str(md)]) == 0
    d = json.loads(js.read_text())
    assert d["rows"]["lemma_6_weights"]["extra"]["derived_status"] == "holds"
    # the page opens with the exact command that regenerates it, then the table
    lines = md.read_text().splitlines()
    assert lines[0] == ("Regenerate with: `ntkflow check --data synthetic --n 10 --eps 0.01 --width 60 --samples 500 "
                        f"--flow-n 6 --quiet --json {js} --markdown {md}`")
    assert lines[2].startswith("| row |")
    assert d["meta"]["init_seeds"] == 36  # runs_to_decide(0.1): Lemmas 4 and 7 decidable by default
    assert len(d["rows"]["lemma_7"]["extra"]["loss0"]) == 36 and len(d["rows"]["lemma_4"]["extra"]["lambda_min_h0"]) == 36
    assert "epsilon_bound" in capsys.readouterr().out


def test_flow_command_and_figure(tmp_path, capsys):
    out = tmp_path / "flow"
    assert main(["flow", "--data", "synthetic", "--n", "8", "--eps-list", "0,0.02", "--widths", "20,40",
                 "--t1", "0.2", "--saves", "5", "--samples", "500", "--out", str(out), "--quiet"]) == 0
    tr = Trajectory.load(out / "flow_eps0.02_m40.npz")
    assert len(tr.ts) == 5 and np.all(np.diff(tr.loss) <= 1e-10)
    lam = json.loads((out / "lambda0_eps0.02.json").read_text())
    assert lam["ci"][0] <= lam["value"] <= lam["ci"][1]
    paths = fig_flow(out)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    # rerun skips existing trajectories
    assert main(["flow", "--data", "synthetic", "--n", "8", "--eps-list", "0", "--widths", "20", "--t1", "0.2",
                 "--saves", "5", "--samples", "500", "--out", str(out), "--quiet"]) == 0
    assert "exists, skipped" in capsys.readouterr().out


def test_bad_input_is_one_line_on_stderr(capsys):
    assert main(["report", "--eps", "1.5", "--n", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "eps" in err
    assert main(["check", "--data", "nope"]) == 2
    assert "unknown source" in capsys.readouterr().err
    assert main(["figures", "/nonexistent"]) == 2
