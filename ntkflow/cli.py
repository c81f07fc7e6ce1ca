"""Command line: ``ntkflow demo | report | check | sweep | figures``. Thin over the library."""

from __future__ import annotations

import argparse
import shlex
import sys

import numpy as np
from ._core.errors import NtkflowError

__all__ = ["main"]


def _load_data(args):
    from .data import load

    return load(args.data, n=args.n, eps=args.eps, mnist_dir=getattr(args, "mnist_dir", None), seed=args.seed)


def core_report(X, y, eps, *, widths=(100, 1000, 10_000), samples=20_000, seed=0, out=print) -> dict:
    """λ0 with its CI, λmin(H(0)) at a few widths, and the Assumption 1/2 status."""
    from . import check_assumption_1, check_assumption_2, gram_matrix, init_params, lambda_0

    a1, a2 = check_assumption_1(X, eps), check_assumption_2(X, eps)
    out(f"data: n={X.shape[0]} d={X.shape[1]}  eps={eps}")
    out(f"Assumption 1 (x ∈ [ε,1]^d, ξ>0): {'holds' if a1 else 'VIOLATED'}  ξ = {a1.xi:.4g}"
        + ("" if a1 else f"  ({a1.violating.size} samples outside the box)"))
    close = f"separation = {a2.separation:.4g} (pair {a2.closest_pair})" if np.isfinite(a2.separation) \
        else "no two boxes admit a common ratio in any coordinate"
    out(f"Assumption 2 (no parallel points in ε-boxes): {'holds' if a2 else 'VIOLATED'}  {close}"
        + ("" if a2 else f"  violating pair {a2.pair}, c = {a2.c:.6g}"))
    lam = lambda_0(X, y, eps, samples=samples, seed=seed, progress=True, warn=False)
    out(f"λ0 = λmin(H∞) = {lam.value:.5g}   95% CI [{lam.ci[0]:.5g}, {lam.ci[1]:.5g}]   "
        f"({lam.samples} neurons, jackknife over {lam.groups} groups, bias corr. {lam.bias:+.2g}, "
        + ("exact closed form at ε = 0)" if eps == 0 else
           f"control-variate variance reduction ×{lam.h_inf.variance_reduction:.3g})"))
    rows = {}
    for m in widths:
        W, a = init_params(seed, m, X.shape[1])
        lm = float(np.linalg.eigvalsh(gram_matrix(W, a, X, y, eps))[0])
        rows[m] = lm
        out(f"  m = {m:>7}: λmin(H(0)) = {lm:.5g}   λmin(H(0))/λ0 = {lm / lam.value:.3f}"
            f"   (Lemma 4 wants ≥ 0.75)")
    return {"assumption_1": bool(a1), "assumption_2": bool(a2), "lambda_0": lam.value,
            "lambda_0_ci": lam.ci, "lambda_min_h0": rows}


def _cmd_report(args) -> int:
    ds = _load_data(args)
    core_report(ds.X, ds.y, args.eps, samples=args.samples, seed=args.seed)
    return 0


def _add_data_args(p, eps_default=0.04):
    p.add_argument("--data", default="mnist25", help="mnist25 (embedded), mnist (needs --mnist-dir), synthetic")
    p.add_argument("--mnist-dir", default=None, help="directory with MNIST IDX files (plain or .gz)")
    p.add_argument("--n", type=int, default=None, help="number of training samples (default: all)")
    p.add_argument("--eps", type=float, default=eps_default, help="perturbation radius ε ∈ [0, 1]")
    p.add_argument("--seed", type=int, default=0)


def _check_flow_args(args) -> None:
    """flow's own options, checked before any work (one line naming the option)."""
    from . import _validate as V
    from .paper.flow import SOLVERS

    if not args.eps_list or not all(0.0 <= e <= 1.0 for e in args.eps_list):  # also refuses NaN
        raise NtkflowError(f"--eps-list: needs one or more ε in [0, 1], got {args.eps_list}")
    if not args.widths or min(args.widths) < 1:
        raise NtkflowError(f"--widths: needs one or more widths m >= 1, got {args.widths}")
    V.positive_int("--saves", args.saves)
    V.positive_int("--samples", args.samples, minimum=2)
    V.positive_float("--t1", args.t1, allow_zero=True)
    if args.solver not in SOLVERS:
        raise NtkflowError(f"--solver: unknown {args.solver!r}; choose one of {', '.join(SOLVERS)}")
    V.seed(args.seed, "--seed")


def _cmd_flow(args) -> int:
    """Gradient-flow trajectories at several widths (and ε), saved for the figure scripts."""
    from . import gradient_flow, init_params, lambda_0
    from ._io import ensure_writable_dir, write_json

    out = ensure_writable_dir(args.out, "--out")
    _check_flow_args(args)
    for eps in args.eps_list:
        ds = _load_data(argparse.Namespace(**{**vars(args), "eps": eps}))
        lam = lambda_0(ds.X, ds.y, eps, samples=args.samples, seed=args.seed, warn=False)
        write_json(out / f"lambda0_eps{eps}.json", {"eps": eps, "value": lam.value, "ci": lam.ci,
                                                     "samples": lam.samples, "n": len(ds.y)})
        print(f"ε = {eps}: λ0 = {lam.value:.4g} [{lam.ci[0]:.4g}, {lam.ci[1]:.4g}]")
        for m in args.widths:
            path = out / f"flow_eps{eps}_m{m}.npz"
            if path.exists():
                print(f"  m = {m}: exists, skipped")
                continue
            W, a = init_params(args.seed, m, ds.X.shape[1])
            tr = gradient_flow(W, a, ds.X, ds.y, eps, args.t1, solver=args.solver, progress=not args.quiet,
                               save_at=np.linspace(0, args.t1, args.saves))
            tr.meta.update(lambda_0=lam.value, lambda_0_ci=list(lam.ci), data=args.data, seed=args.seed)
            tr.save(path)
            print(f"  m = {m}: L̄ {tr.loss[0]:.4g} → {tr.loss[-1]:.4g}, min λmin(H)/λ0 = "
                  f"{np.min(tr.lambda_min) / lam.value:.3f}, certificate {tr.error_estimate:.2g}")
    return 0


def _cmd_check(args) -> int:
    from . import check
    from ._io import ensure_writable_file, write_json, write_text

    for flag, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path:  # before an hour of checking, not after
            ensure_writable_file(path, flag)
    ds = _load_data(args)
    rep = check(ds.X, ds.y, args.eps, args.width, delta=args.delta, samples=args.samples, seed=args.seed,
                t1=args.t1, flow_n=args.flow_n, seeds=args.seeds, init_seeds=args.init_seeds, max_steps=args.max_steps,
                progress=not args.quiet)
    rep.meta["command"] = "ntkflow " + shlex.join(args.argv)  # the page names the command that regenerates it
    print(rep)
    if args.json:
        write_json(args.json, rep.to_dict())
    if args.markdown:
        write_text(args.markdown, rep.to_markdown())
    return 0


def _floats(s: str) -> list[float]:
    return [float(v) for v in s.split(",") if v]


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v]


class _OneLineParser(argparse.ArgumentParser):
    """argparse with ntkflow's error format: one line naming the option, exit status 2
    (argparse's default prints the whole usage block first). Subcommands inherit it."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.splitlines())}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="ntkflow", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report", help="λ0 with CI, λmin(H(0)) at a few widths, Assumptions 1/2")
    _add_data_args(r)
    r.add_argument("--samples", type=int, default=20_000, help="Monte Carlo neurons for H∞")
    r.set_defaults(fn=_cmd_report)
    c = sub.add_parser("check", help="Theorem 1 and Lemmas 1–7 measured against their bounds")
    _add_data_args(c)
    c.add_argument("--width", type=int, default=5000, help="network width m")
    c.add_argument("--delta", type=float, default=0.1, help="confidence δ of the high-probability bounds")
    c.add_argument("--samples", type=int, default=20_000, help="Monte Carlo neurons for λ0")
    c.add_argument("--t1", type=float, default=None, help="gradient-flow horizon (default Eq. 10′'s time, capped)")
    c.add_argument("--flow-n", type=int, default=50, help="samples in the gradient-flow subset")
    c.add_argument("--seeds", type=int, default=3,
                   help="initializations for the probabilistic rows (one gradient flow each)")
    c.add_argument("--init-seeds", type=int, default=None,
                   help="initializations for Lemmas 4 and 7 (default: enough to decide at δ, 36 at δ = 0.1)")
    c.add_argument("--max-steps", type=int, default=200, help="RK4 steps that cap the default flow horizon")
    c.add_argument("--json", default=None, help="write the report as JSON here")
    c.add_argument("--markdown", default=None, help="write the report as Markdown here")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(fn=_cmd_check)
    f = sub.add_parser("flow", help="gradient-flow trajectories at several widths, for the figures")
    _add_data_args(f)
    f.add_argument("--eps-list", type=_floats, default=[0.0, 0.04], help="comma-separated ε values")
    f.add_argument("--widths", type=_ints, default=[100, 1000, 5000], help="comma-separated widths m")
    f.add_argument("--t1", type=float, default=1.0)
    f.add_argument("--saves", type=int, default=41, help="number of save times")
    f.add_argument("--solver", default="rk4")
    f.add_argument("--samples", type=int, default=20_000, help="Monte Carlo neurons for λ0")
    f.add_argument("--out", required=True)
    f.add_argument("--quiet", action="store_true")
    f.set_defaults(fn=_cmd_flow)
    sw = sub.add_parser("sweep", help="run a resumable width/ε sweep from a TOML config")
    sw.add_argument("config")
    sw.add_argument("--out", required=True, help="results directory")
    sw.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value, e.g. --set train.epochs=5 --set grid.width=[100,200]")
    sw.add_argument("--executor", default="local", choices=["local", "dask"])
    sw.add_argument("--workers", type=int, default=None, help="processes (local) or LocalCluster workers")
    sw.add_argument("--scheduler", default=None, help="dask scheduler ADDRESS, or 'local' for a LocalCluster (connect timeout: dask config key ntkflow.scheduler-timeout, default 10s)")
    sw.add_argument("--force", action="store_true",
                    help="accept a changed config under an existing --out (finished cells are kept)")
    sw.add_argument("--accept-env", action="store_true",
                    help="let cells computed with another ntkflow/JAX version or backend sit beside the stored ones")
    sw.add_argument("--quiet", action="store_true")
    sw.set_defaults(fn=_cmd_sweep)
    fg = sub.add_parser("figures", help="write every figure a results directory supports (PNG and PDF)")
    fg.add_argument("dir")
    fg.set_defaults(fn=_cmd_figures)
    fd = sub.add_parser("findings", help="the findings page (Markdown) from stored sweep results")
    fd.add_argument("dirs", nargs="+", metavar="LABEL=DIR", help="sweep directories, each with a label")
    fd.add_argument("--out", default=None, help="write the page here (default: print it)")
    fd.add_argument("--preface", default=None, help="a Markdown file inserted after the title (a written summary)")
    fd.set_defaults(fn=_cmd_findings)
    d = sub.add_parser("demo", help="the main job: a reduced Figure 1 on the embedded MNIST 2-vs-5 data")
    d.add_argument("--config", default="experiments/demo.toml")
    d.add_argument("--out", default="demo_out")
    d.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(fn=_cmd_demo)
    return p


def _cmd_sweep(args) -> int:
    from ._io import ensure_writable_dir
    from .sweep import load_config, run_sweep

    ensure_writable_dir(args.out, "--out")
    cfg = load_config(args.config, args.set)
    path = run_sweep(cfg, args.out, executor=args.executor, workers=args.workers, scheduler=args.scheduler,
                     force=args.force, accept_env=args.accept_env, quiet=args.quiet)
    print(f"results: {path}")
    return 0


def _cmd_figures(args) -> int:
    from .reporting.plots import figures

    for p in figures(args.dir):
        print(p)
    return 0


def _cmd_findings(args) -> int:
    from pathlib import Path

    from ._io import write_text
    from .reporting.findings import findings

    dirs = {}
    for spec in args.dirs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise NtkflowError(f"dirs: expected LABEL=DIR, got {spec!r}")
        dirs[label] = path
    preface = None
    if args.preface:
        try:
            preface = Path(args.preface).read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise NtkflowError(f"preface: cannot read {args.preface} ({type(e).__name__})") from None
    cmd = "ntkflow findings " + " ".join(args.dirs) + "".join(
        f" --{k} {v}" for k, v in (("preface", args.preface), ("out", args.out)) if v)
    page = findings(dirs, command=cmd, preface=preface)
    if args.out:
        write_text(args.out, page + "\n")
        print(f"findings: {args.out}")
    else:
        print(page)
    return 0


def summary(directory) -> str:
    """Fig. 1 numbers from a results directory, as a short text table: IBP-trained nets'
    certified and clean training errors, standard training's clean error, the chosen
    learning rates and how many runs converged."""
    from .reporting.plots import seed_means
    from .sweep.store import read_table

    rows = [r for r in read_table(f"{directory}/results.csv") if not r.get("diverged", False)]
    eps_all = sorted({r["eps"] for r in rows if r["method"] == "ibp"})
    std = seed_means([r for r in rows if r["method"] == "standard"], "final_train_error", ("width",))

    def cell(v):
        return "—" if not v else (f"{v[0]:.3f} ± {v[1]:.3f}" if v[2] > 1 else f"{v[0]:.3f} (1 seed)")

    lines = ["final training error (mean ± s.e. over seeds):",
             f"{'width':>7}  {'standard':>14}" + "".join(f"  {'IBP ε=' + format(e, 'g'):>14}" for e in eps_all)]
    for key, title in (("final_certified_error", "IBP-trained nets, certified (IBP) error; standard: clean error"),
                       ("final_train_error", "IBP-trained nets, clean error")):
        ibp = seed_means([r for r in rows if r["method"] == "ibp"], key, ("width", "eps"))
        lines.append(title + ":")
        for w in sorted({r["width"] for r in rows}):
            lines.append(f"{int(w):>7}  {(cell(std.get((w,))) if key == 'final_certified_error' else ''):>14}"
                         + "".join(f"  {cell(ibp.get((w, e))):>14}" for e in eps_all))
    if any("lr" in r for r in rows):
        lines.append("chosen learning rates (per width, all seeds and ε) and runs stopped by the plateau rule:")
        for method in ("standard", "ibp"):
            for w in sorted({r["width"] for r in rows if r["method"] == method}):
                sub = [r for r in rows if r["method"] == method and r["width"] == w]
                lrs = sorted({r["lr"] for r in sub})
                lines.append(f"  {method:>8} m={int(w):>6}: lr {', '.join(f'{v:g}' for v in lrs)}; converged "
                             f"{sum(r.get('converged', False) for r in sub)}/{len(sub)}")
    from .reporting.findings import Protocol, claim_lines

    lines += ["", "the paper's claims (Sec. 5), checked on this table:"] + claim_lines(Protocol("demo", directory))
    return "\n".join(lines)


def _cmd_demo(args) -> int:
    from pathlib import Path

    from ._io import ensure_writable_dir
    from .reporting.plots import figures
    from .sweep import load_config, run_sweep

    config = Path(args.config)
    if not config.exists():
        raise NtkflowError(f"config: {config} not found (run `make demo` from the repository root)")
    ensure_writable_dir(args.out, "--out")
    cfg = load_config(config, args.set)
    # the demo owns its directory: a changed demo config keeps the cells still valid and reruns the rest
    run_sweep(cfg, args.out, quiet=args.quiet, force=True)
    for p in figures(args.out):
        if p.suffix == ".png":
            print(f"figure: {p}")
    print()
    print(summary(args.out))
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.fn(args)
    except NtkflowError as e:  # a user's mistake: one line, no traceback (any other error is a bug: traceback)
        msg = str(e)
    except OSError as e:  # the filesystem said no: one line naming the path
        paths = " → ".join(str(p) for p in (e.filename, e.filename2) if p is not None)
        msg = f"{paths}: {e.strerror or type(e).__name__}" if paths else f"{type(e).__name__}: {e}"
    print(f"ntkflow {args.cmd}: error: {' '.join(msg.splitlines())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
