"""Every bad input and filesystem failure is one line naming the argument.

Library calls raise a one-line ``NtkflowError`` (a ``ValueError``) whose message starts with the
argument's name; CLI commands print one line on stderr and exit 2, before doing any work. Any other
exception is a bug and keeps its traceback at the CLI.
"""

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ntkflow as nf
from conftest import make_problem
from ntkflow import data
from ntkflow._core.errors import NtkflowError
from ntkflow._io import ensure_writable_dir, ensure_writable_file
from ntkflow.cli import main

W, A, X, Y = make_problem()
DEMO = Path(__file__).resolve().parents[1] / "experiments" / "demo.toml"


def one_line(fn, *args, name, **kw):
    """``fn(*args, **kw)`` raises a one-line NtkflowError whose message starts with ``name``."""
    with pytest.raises(NtkflowError) as info:
        fn(*args, **kw)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(name), msg
    return msg


def cli_error(capsys, argv, *must_contain):
    """The CLI exits 2 with exactly one line on stderr that contains each of ``must_contain``."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for s in must_contain:
        assert s in err, err
    return err


def _unwritable_dir():
    """A directory this process cannot create files in (skip when there is none: e.g. root)."""
    for cand in ("/sys", "/proc"):
        try:
            fd, p = tempfile.mkstemp(dir=cand)
        except OSError:
            return Path(cand)
        os.close(fd)
        os.unlink(p)
    pytest.skip("no unwritable directory available")


# ----------------------------------------------------------------------------- item 8
@pytest.mark.parametrize("block", [-1, 0, 2.5, "4", True])
def test_assumption_2_block_is_validated(block):
    one_line(nf.check_assumption_2, X, 0.04, block=block, name="block")


def test_assumption_2_block_size_does_not_change_the_answer():
    Xp = data.synthetic_parallel(9, 5, 0.01, gap=1e-3).X
    ref = nf.check_assumption_2(Xp, 0.01)
    for block in (1, 4, 100):
        got = nf.check_assumption_2(Xp, 0.01, block=block)
        assert (got.holds, got.pair, got.violating_pairs, got.closest_pair) == \
            (ref.holds, ref.pair, ref.violating_pairs, ref.closest_pair)
    assert not ref.holds


# ----------------------------------------------------------------------------- filesystem helpers
def test_ensure_writable_dir(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert ensure_writable_dir(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    assert ensure_writable_dir(tmp_path, "--out") == tmp_path
    one_line(ensure_writable_dir, f, "--out", name="--out")
    one_line(ensure_writable_dir, f / "sub", "--out", name="--out")
    one_line(ensure_writable_dir, _unwritable_dir() / "ntkflow-out", "--out", name="--out")
    assert list(tmp_path.iterdir()) == [f]  # the probes leave nothing behind


def test_ensure_writable_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert ensure_writable_file(tmp_path / "a" / "r.json", "--json") == tmp_path / "a" / "r.json"
    assert ensure_writable_file(f, "--json") == f and f.read_text() == "x"  # untouched
    one_line(ensure_writable_file, tmp_path, "--json", name="--json")
    one_line(ensure_writable_file, f / "r.json", "--json", name="--json")
    one_line(ensure_writable_file, _unwritable_dir() / "r.json", "--json", name="--json")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only directory")
def test_ensure_writable_dir_read_only(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        one_line(ensure_writable_dir, ro, "--out", name="--out")
        one_line(ensure_writable_dir, ro / "x", "--out", name="--out")
        one_line(ensure_writable_file, ro / "r.json", "--json", name="--json")
    finally:
        ro.chmod(0o755)


# ----------------------------------------------------------------------------- filesystem errors at the CLI
FLOW = ["flow", "--data", "synthetic", "--n", "4", "--eps-list", "0", "--widths", "10", "--t1", "0.1",
        "--saves", "3", "--samples", "64", "--quiet", "--out"]


def _bad_outs(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    return {"a regular file": f, "under a file": f / "sub", "unwritable": _unwritable_dir() / "ntkflow-out"}


@pytest.fixture
def nothing_runs(monkeypatch):
    """Fail the test if a command gets as far as loading data or computing λ0."""
    import ntkflow.cli

    def boom(*a, **k):
        raise AssertionError("the command did work before checking its output path")

    monkeypatch.setattr(ntkflow.cli, "_load_data", boom)
    monkeypatch.setattr(nf, "lambda_0", boom)
    monkeypatch.setattr(nf, "check", boom)


def test_flow_out_not_writable(tmp_path, capsys, nothing_runs):
    for what, out in _bad_outs(tmp_path).items():
        cli_error(capsys, FLOW + [str(out)], "--out", str(out))


def test_check_json_and_markdown_checked_before_running(tmp_path, capsys, nothing_runs):
    base = ["check", "--data", "synthetic", "--n", "6", "--quiet"]
    f = tmp_path / "file"
    f.write_text("x")
    for bad in (tmp_path, f / "r.json", _unwritable_dir() / "sub" / "r.json"):
        cli_error(capsys, base + ["--json", str(bad)], "--json", str(bad))
        cli_error(capsys, base + ["--markdown", str(bad)], "--markdown", str(bad))
        cli_error(capsys, base + ["--json", str(tmp_path / "ok.json"), "--markdown", str(bad)], "--markdown")


def test_demo_and_sweep_out_not_writable(tmp_path, capsys, monkeypatch):
    import ntkflow.sweep

    def boom(*a, **k):
        raise AssertionError("the sweep started before its --out was checked")

    monkeypatch.setattr(ntkflow.sweep, "run_sweep", boom)
    for what, out in _bad_outs(tmp_path).items():
        cli_error(capsys, ["demo", "--config", str(DEMO), "--out", str(out), "--quiet"], "--out")
        cli_error(capsys, ["sweep", str(DEMO), "--out", str(out), "--quiet"], "--out")


def test_oserror_at_the_cli_is_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    import ntkflow.cli

    def denied(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.npz"))

    monkeypatch.setattr(ntkflow.cli, "_cmd_flow", denied)
    cli_error(capsys, FLOW + [str(tmp_path / "out")], "x.npz", "Permission denied")


def test_a_bug_keeps_its_traceback_at_the_cli(tmp_path, monkeypatch):
    """A ValueError that is not an NtkflowError (a bug in ntkflow or a library) is not turned
    into a one-line user error: it propagates with its traceback."""
    import ntkflow.cli

    def bug(args):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(ntkflow.cli, "_cmd_flow", bug)
    with pytest.raises(ValueError, match="broadcast"):
        main(FLOW + [str(tmp_path / "out")])


def test_a_user_error_raised_anywhere_is_one_line_at_the_cli(tmp_path, capsys, monkeypatch):
    import ntkflow.cli

    def user_error(args):
        raise NtkflowError("width: must be an integer >= 1, got 0")

    monkeypatch.setattr(ntkflow.cli, "_cmd_flow", user_error)
    cli_error(capsys, FLOW + [str(tmp_path / "out")], "width: must be")


def test_the_package_raises_no_bare_value_error():
    """Every user-facing error in the package is an NtkflowError, so the CLI can tell it from a bug."""
    import ast

    root = Path(nf.__file__).parent
    bare = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                call = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(call, ast.Name) and call.id == "ValueError":
                    bare.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not bare, f"raise NtkflowError (ntkflow._core.errors) instead of ValueError at {bare}"


# ----------------------------------------------------------------------------- data and report options
@pytest.mark.parametrize("eps", ["nan", "inf", "-inf", "2"])
def test_report_eps_not_finite_on_synthetic(capsys, eps):
    cli_error(capsys, ["report", "--data", "synthetic", "--n", "6", f"--eps={eps}", "--samples", "64"], "eps")


@pytest.mark.parametrize("source,n", [("parallel", "1"), ("synthetic", "0"), ("synthetic", "-3"),
                                      ("parallel", "0"), ("mnist25", "0")])
def test_report_bad_n(capsys, source, n):
    cli_error(capsys, ["report", "--data", source, "--n", n, "--samples", "64"], "n:")


@pytest.mark.parametrize("source", ["synthetic", "parallel", "mnist25"])
def test_load_rejects_n_zero_and_small(source):
    one_line(data.load, source, n=0, name="n")
    one_line(data.load, source, n=1, name="n")
    one_line(data.load, source, n=2.5, name="n")


@pytest.mark.parametrize("source", ["synthetic", "parallel", "mnist25"])
def test_negative_n_test_is_refused(source):
    one_line(data.load, source, n=10, n_test=-5, name="n_test")
    one_line(data.load, source, n=10, n_test=1.5, name="n_test")


def test_n_test_leaves_the_training_set_alone():
    for source in ("synthetic", "parallel", "mnist25"):
        ds = data.load(source, n=10, n_test=4, d=5)
        assert ds.X.shape[0] == 10 and ds.X_test.shape[0] == 4
    one_line(data.mnist25, 10, n_test=999, name="n_test")
    one_line(data.mnist25, 10, n_test=995, name="n")  # 995 held out leave 5 to train


@pytest.mark.parametrize("eps", [float("nan"), float("inf"), -0.1, 2.0])
def test_synthetic_eps_named(eps):
    one_line(data.load, "synthetic", n=10, eps=eps, name="eps")
    one_line(data.synthetic_box, 10, 3, eps, name="eps")
    one_line(data.synthetic_parallel, 10, 3, eps, name="eps")


def test_synthetic_sizes_and_seed_named():
    one_line(data.synthetic_box, -1, 3, name="n")
    one_line(data.synthetic_box, 5, -1, name="d")
    one_line(data.synthetic_box, 5, 0, name="d")
    one_line(data.load, "synthetic", n=5, d=0, name="d")
    one_line(data.synthetic_box, 5, 3, seed=-1, name="seed")
    one_line(data.synthetic_parallel, 5, 3, gap=float("nan"), name="gap")
    one_line(data.mnist25, 10, seed=-1, name="seed")
    one_line(data.load, "mnist25", n=10, seed=-1, name="seed")
    one_line(data.load, "synthetic", n=10, seed=2**64, name="seed")


# ----------------------------------------------------------------------------- library
@pytest.mark.parametrize("arg", ["W", "X", "y", "a"])
def test_complex_input_is_refused(arg):
    args = dict(W=W, a=A, X=X, y=Y)
    args[arg] = args[arg] + 0j
    one_line(nf.robust_loss_grad, args["W"], args["a"], args["X"], args["y"], 0.1, name=arg)
    one_line(nf.gram_matrix, args["W"], args["a"], args["X"], args["y"], 0.1, name=arg)


def test_complex_input_is_refused_everywhere():
    one_line(nf.normalize_to_box, X + 1j, 0.1, name="X")
    one_line(nf.check_assumption_1, X + 0j, 0.1, name="X")
    one_line(nf.h_inf_exact, X + 0j, Y, name="X")
    one_line(nf.lambda_0, X, Y + 0j, 0.1, samples=64, name="y")
    one_line(nf.gradient_flow, W + 0j, A, X, Y, 0.0, 0.1, name="W")
    one_line(nf.gradient_flow, W, A, X, Y, 0.0, 0.1, save_at=[0.0 + 1j], name="save_at")


@pytest.mark.parametrize("fn", [nf.gram_matrix, nf.gram_terms])
def test_gram_of_large_x_overflow_named(fn):
    """x_iᵀx_j overflows float64 at |x| ~ 1e160 (the loss and margin do not form it)."""
    one_line(fn, W, A, X * 1e160, Y, 0.1, name="X")


@pytest.mark.parametrize("fn", [nf.robust_loss, nf.robust_loss_grad, nf.ibp_lower_margin, nf.indicators,
                                nf.gram_matrix])
def test_preactivations_of_large_x_overflow_named(fn):
    one_line(fn, W, A, X * 1e306, Y, 0.1, name="X")


def test_products_of_large_w_overflow_named():
    for fn in (nf.gram_matrix, nf.robust_loss, nf.robust_loss_grad, nf.ibp_lower_margin, nf.indicators):
        one_line(fn, W * 1e306, A, X, Y, 0.1, name="W")
    one_line(nf.margin, W * 1e306, A, X, Y, name="W")
    one_line(nf.gradient_flow, W * 1e306, A, X, Y, 0.1, 0.1, name="W")


def test_kernel_overflow_named():
    one_line(nf.h_inf_exact, X * 1e160, Y, name="X")
    one_line(nf.h_inf, X * 1e160, Y, 0.0, samples=64, name="X")
    one_line(nf.lambda_0, X * 1e160, Y, 0.0, samples=64, name="X")
    one_line(nf.lambda_0, X * 1e160, Y, 0.04, samples=64, name="X")


def test_large_but_safe_inputs_still_work():
    """The overflow check only refuses what overflows: X ~ 1e100 is fine, and equals the rescaled answer."""
    H = nf.gram_matrix(W, A, X * 1e100, Y, 0.0)
    np.testing.assert_allclose(H / 1e200, nf.gram_matrix(W, A, X, Y, 0.0), rtol=1e-12)
    # arccos(cos θ) near θ = 0 loses half the digits (θ_ii ≈ 1e-8 from rounding): rtol 1e-7 here
    np.testing.assert_allclose(nf.h_inf_exact(X * 1e100, Y) / 1e200, nf.h_inf_exact(X, Y), rtol=1e-7)
    np.testing.assert_allclose(nf.margin(W, A, X * 1e150, Y) / 1e150, nf.margin(W, A, X, Y), rtol=1e-12)
    np.testing.assert_allclose(nf.margin(W * 1e150, A, X, Y) / 1e150, nf.margin(W, A, X, Y), rtol=1e-12)


def test_trajectory_load_truncated_or_malformed(tmp_path):
    tr = nf.gradient_flow(W[:10], A[:10], X, Y, 0.0, 0.01, save_at=[0.0, 0.01], certify=False, track_gram=False)
    path = tr.save(tmp_path / "t.npz")
    raw = path.read_bytes()
    meta = json.loads(path.with_suffix(".json").read_text())
    cases = {
        "truncated npz": lambda: path.write_bytes(raw[: len(raw) // 2]),
        "empty npz": lambda: path.write_bytes(b""),
        "json is a list": lambda: path.with_suffix(".json").write_text("[1, 2]"),
        "json without series": lambda: path.with_suffix(".json").write_text(
            json.dumps({k: v for k, v in meta.items() if k != "series"})),
        "json without meta": lambda: path.with_suffix(".json").write_text(
            json.dumps({k: v for k, v in meta.items() if k != "meta"})),
        "series not a list": lambda: path.with_suffix(".json").write_text(json.dumps({**meta, "series": 3})),
        "error_estimate a string": lambda: path.with_suffix(".json").write_text(
            json.dumps({**meta, "error_estimate": "x"})),
        "npz without a": lambda: _rewrite_npz(path, raw, drop="a"),
        "npz member not an array": lambda: path.write_bytes(_zip_with_junk()),
    }
    for what, corrupt in cases.items():
        path.write_bytes(raw)
        path.with_suffix(".json").write_text(json.dumps(meta))
        nf.Trajectory.load(path)  # intact before each corruption
        corrupt()
        msg = one_line(nf.Trajectory.load, path, name=str(path.parent))
        assert path.name in msg or path.with_suffix(".json").name in msg, (what, msg)


def _rewrite_npz(path, raw, drop):
    import io

    with np.load(io.BytesIO(raw)) as z:
        arrays = {k: z[k] for k in z.files if k != drop}
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _zip_with_junk():
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ts.npy", b"not an npy file")
    return buf.getvalue()


@pytest.mark.parametrize("seed", [2**63, 2**64, 10**30])
def test_huge_seed_is_one_line(seed):
    one_line(nf.init_params, seed, 3, 2, name="seed")
    one_line(nf.lambda_0, X, Y, 0.0, samples=64, seed=seed, name="seed")
    one_line(nf.h_inf, X, Y, 0.0, samples=64, seed=seed, name="seed")
    one_line(data.synthetic_box, 5, 3, seed=seed, name="seed")
    from ntkflow.training.settings import OptimSettings

    one_line(OptimSettings, epochs=1, seed=seed, name="seed")  # the trainer's seed, as the paper functions'


def test_largest_seed_works():
    W1, a1 = nf.init_params(2**63 - 1, 3, 2)
    assert W1.shape == (3, 2) and np.all(np.isfinite(W1))
    assert np.isfinite(nf.lambda_0(X, Y, 0.0, samples=64, seed=2**63 - 1).value)


def test_init_params_sizes_named():
    one_line(nf.init_params, 0, 10**20, 2, name="m")
    one_line(nf.init_params, 0, 2, 10**20, name="d")


@pytest.mark.parametrize("kw,name", [
    (dict(certify="no"), "certify"), (dict(track_gram=1.5), "track_gram"), (dict(keep_W="yes"), "keep_W"),
    (dict(max_steps=10**30, solver="tsit5"), "max_steps"), (dict(dt=1e-300), "dt"),
    (dict(max_steps=10, dt=1e-4), "dt"), (dict(solver=3), "solver"),
])
def test_gradient_flow_arguments(kw, name):
    one_line(nf.gradient_flow, W, A, X, Y, 0.0, 0.1, name=name, **kw)


# ----------------------------------------------------------------------------- messages that named nothing
def test_flow_cli_arguments_checked_up_front(tmp_path, capsys, nothing_runs):
    base = FLOW[:-1]
    for flag, value in (("--saves", "-1"), ("--saves", "0"), ("--widths", ""), ("--widths", "0,10"),
                        ("--eps-list", ""), ("--eps-list", "0,2"), ("--eps-list", "nan"), ("--samples", "1"),
                        ("--solver", "nope"), ("--t1", "-1"), ("--seed", "-1")):
        argv = list(base)
        i = argv.index(flag) if flag in argv else None
        if i is None:
            argv += [flag, value]
        else:
            argv[i + 1] = value
        cli_error(capsys, argv + ["--out", str(tmp_path / "o")], flag.lstrip("-"))
    assert not (tmp_path / "o").exists()


def test_report_seed_named(capsys):
    cli_error(capsys, ["report", "--data", "synthetic", "--n", "6", "--seed", "-1", "--samples", "64"], "seed")
    cli_error(capsys, ["report", "--data", "synthetic", "--n", "6", "--seed", str(2**64), "--samples", "64"],
              "seed")
