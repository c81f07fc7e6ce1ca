"""Figures from stored results (they never retrain). Each ``fig_*`` writes PNG and PDF.

The scripts in ``figures/`` and ``ntkflow figures DIR`` are thin calls of these.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .._core.errors import NtkflowError
from .._io import read_json  # noqa: E402
from ..paper.tracker import Trajectory  # noqa: E402

__all__ = ["fig_flow", "fig1a", "fig1b", "fig_lr_grid", "fig_scaling", "fig_lambda0", "fig_methods",
           "fig_methods_gram", "fig_deep_ntk", "fig_laziness", "fig_lambda0_eps", "figures", "save", "seed_means"]

#: Errors of the methods figure: (results.csv column, panel title).
METHOD_ERRORS = (("final_train_error", "clean error"), ("final_pgd_error", "PGD error"),
                 ("final_certified_error_ibp", "IBP-certified error"),
                 ("final_certified_error_crown", "CROWN-certified error"))


def save(fig, path: Path) -> list[Path]:
    """Write ``path``.png and ``path``.pdf; return both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [path.with_suffix(".png"), path.with_suffix(".pdf")]
    for p in out:
        fig.savefig(p, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return out


def _curves_from_trajectories(directory):
    """{ε: {m: (ts, loss, λmin(H(t)), max_weight_change, flip_fraction)}} and {ε: λ0 record}."""
    curves, lam = {}, {}
    for p in sorted(Path(directory).glob("flow_eps*_m*.npz")):
        mt = re.fullmatch(r"flow_eps([0-9.e-]+)_m(\d+)\.npz", p.name)
        if mt:
            tr = Trajectory.load(p)
            eps = float(mt.group(1))
            curves.setdefault(eps, {})[int(mt.group(2))] = (tr.ts, tr.loss, tr.lambda_min, tr.max_weight_change,
                                                             tr.flip_fraction)
            lam[eps] = read_json(Path(directory) / f"lambda0_eps{mt.group(1)}.json")["value"]
    return curves, lam


def _curves_from_sweep(directory):
    """Same as ``_curves_from_trajectories`` from a sweep's validated cell records (the
    smallest seed of each (ε, m)), plus the records themselves; invalid records are
    reported and skipped."""
    from ..sweep.store import Store, read_table

    curves, lam = {}, {}
    d = Path(directory)
    cfg = read_json(d / "config.json") if (d / "config.json").exists() else None
    if not isinstance(cfg, dict) or "grid" not in cfg:
        raise NtkflowError(f"{d}: no readable config.json (not a sweep directory?)")
    recs = sorted((rec for _, rec in Store(d).records(cfg)), key=lambda r: r["cell"]["seed"])
    for rec in recs:
        c, s = rec["cell"], rec["series"]
        if c["method"] not in ("ibp", "standard") or not all(
                k in s for k in ("loss", "lambda_min", "max_weight_change", "flip_fraction")):
            continue  # the theory figures are about IBP (and standard = IBP at ε = 0) training
        curves.setdefault(c["eps"], {}).setdefault(c["width"], tuple(
            np.asarray(v, float) for v in (rec["ts"], s["loss"], s["lambda_min"], s["max_weight_change"],
                                           s["flip_fraction"])))
    if (d / "lambda0.csv").exists():
        lam = {r["eps"]: r["lambda_0"] for r in read_table(d / "lambda0.csv")}
    return curves, lam, recs


def _lambda_panels(curves, lam, title, out, envelopes: bool = False) -> list[Path]:
    eps_list = sorted(e for e in curves if e in lam)
    if not eps_list:
        raise NtkflowError("no trajectories with a λ0 to normalise by (track.lambda_0 / lambda0_eps*.json)")
    fig, ax = plt.subplots(2, len(eps_list), figsize=(5 * len(eps_list), 7), squeeze=False)
    for c, eps in enumerate(eps_list):
        for m, (ts, loss, lmin, *_rest) in sorted(curves[eps].items()):
            line, = ax[0, c].semilogy(ts, loss, label=f"m = {m}")
            ax[1, c].plot(ts, lmin / lam[eps], color=line.get_color(), label=f"m = {m}")
        if envelopes:
            from ..theory.formulas import log_loss_bound

            m_max = max(curves[eps])
            ts, loss = curves[eps][m_max][:2]
            top = loss.max() * 10**3
            off = []
            for var, ls in (("main", "--"), ("appendix", ":")):
                logenv = log_loss_bound(ts, loss[0], lam[eps], var)
                if logenv.min() > np.log(top):
                    off.append(f"{var}: ≥ 10^{logenv.min() / np.log(10):.0f}")
                else:
                    ax[0, c].semilogy(ts, np.exp(np.minimum(logenv, np.log(top))), ls=ls, c="k", lw=1,
                                      label=f"Lemma 6 ({var}), m = {m_max}")
            ax[0, c].set_ylim(top=top)
            if off:
                ax[0, c].text(0.02, 0.02, "Lemma 6 envelopes off the chart\n" + "; ".join(off),
                              transform=ax[0, c].transAxes, fontsize=7, va="bottom")
        ax[0, c].set_title(f"ε = {eps}  (λ0 = {lam[eps]:.3g})")
        ax[0, c].set_ylabel("robust loss L̄(t)")
        ax[1, c].axhline(0.5, ls="--", c="k", lw=1, label="Lemma 5: λ0/2")
        ax[1, c].axhline(0.75, ls=":", c="gray", lw=1, label="Lemma 4: ¾λ0 at t = 0")
        ax[1, c].set_ylabel("λmin(H(t)) / λ0")
        ax[1, c].set_xlabel("t (gradient-flow time)")
        for a in ax[:, c]:
            a.grid(alpha=0.3)
            a.legend(fontsize=7)
    fig.suptitle(title)
    return save(fig, out)


def fig_flow(directory, out=None) -> list[Path]:
    """L̄(t) (log scale) and λmin(H(t))/λ0 against t for each width, one column per ε,
    from ``ntkflow flow`` trajectories. The dashed line at 1/2 is Lemma 5's guarantee."""
    curves, lam = _curves_from_trajectories(directory)
    if not curves:
        raise NtkflowError(f"{directory}: no flow_eps*_m*.npz trajectories (run `ntkflow flow --out DIR`)")
    return _lambda_panels(curves, lam, "Gradient flow of IBP training on MNIST 2-vs-5",
                          Path(out or Path(directory) / "fig_flow"))


def seed_means(rows, key, by):
    """Mean, standard error (NaN for a single seed) and count of ``key`` over seeds, grouped by ``by``."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(tuple(r[b] for b in by), []).append(r[key])
    out = {}
    for g, v in groups.items():
        v = np.asarray(v, float)
        out[g] = (v.mean(), v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan"), len(v))
    return out


def _mean_curve(ax, rows, key, by, label, marker="o", min_points=1, **style):
    """Plot the mean ± standard error of ``key`` over seeds against column ``by``."""
    a = seed_means(rows, key, (by,))
    xs = sorted(a)
    if xs and len(xs) >= min_points:
        ax.errorbar([k[0] for k in xs], [a[k][0] for k in xs], [a[k][1] for k in xs], marker=marker, capsize=3,
                    label=label, **style)


def _error_axes(ax, xlabel, ylabel, title):
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)


def fig1a(rows, out) -> list[Path]:
    """Final error vs width, mean ± standard error over seeds (paper Fig. 1a), training set
    (left) and held-out test set (right): standard training (clean error) and, per ε,
    IBP training's certified error (solid) and clean error (dashed). Diverged cells are
    left out of the means (the table counts them)."""
    rows = [r for r in rows if not r.get("diverged", False)]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    ibp = [r for r in rows if r["method"] == "ibp"]
    n_w = {e: len({r["width"] for r in ibp if r["eps"] == e}) for e in {r["eps"] for r in ibp}}
    ibp = [r for r in ibp if n_w[r["eps"]] >= min(3, max(n_w.values()))]  # ε values swept over width (Fig. 1b has the rest)
    for ax, split, title in ((axes[0], "train", "training set"), (axes[1], "test", "held-out test set")):
        clean, cert = ("final_train_error", "final_certified_error") if split == "train" else (
            "final_test_error", "final_test_certified_error")
        if split == "test" and not any(np.isfinite(r.get(clean, np.nan)) for r in rows):
            ax.text(0.5, 0.5, "no held-out split (data.n_test = 0)", ha="center", transform=ax.transAxes)
        _mean_curve(ax, [r for r in rows if r["method"] == "standard"], clean, "width", "standard training")
        for eps in sorted({r["eps"] for r in ibp}):
            sub = [r for r in ibp if r["eps"] == eps]
            _mean_curve(ax, sub, cert, "width", f"IBP, ε = {eps:g} (certified)", marker="s", min_points=2)
            color = ax.containers[-1].lines[0].get_color() if ax.containers else None
            _mean_curve(ax, sub, clean, "width", f"IBP, ε = {eps:g} (clean)", marker="^", min_points=2,
                        ls="--", color=color)
        _error_axes(ax, "width m", f"final {split} error", f"Fig. 1a: {title} (mean ± s.e. over seeds)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.14), ncol=2)
    return save(fig, out)


def fig_lr_grid(records, out) -> list[Path]:
    """The learning-rate grid behind each cell: final training loss per sample vs lr, one
    panel per (method, ε), one line per width (mean over seeds; diverged runs missing),
    the lr each cell chose marked with a star."""
    groups: dict = {}
    for rec in records:
        c = rec["cell"]
        groups.setdefault((c["method"], c["eps"]), {}).setdefault(c["width"], []).append(rec)
    if not groups:
        raise NtkflowError("no records with a learning-rate grid")
    keys = sorted(groups)
    cols = min(4, len(keys))
    rows_ = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(4.2 * cols, 3.6 * rows_), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, keys):
        for w, recs in sorted(groups[key].items()):
            lrs = sorted({g["lr"] for r in recs for g in r["lr_grid"]})
            mean = [np.nanmean([g["final_loss"] / r["final"]["n_train"] for r in recs for g in r["lr_grid"]
                                if g["lr"] == lr] or [np.nan]) for lr in lrs]
            line, = ax.loglog(lrs, mean, marker="o", label=f"m = {w}")
            for r in recs:
                g = next((g for g in r["lr_grid"] if g["lr"] == r["final"]["lr"]), None)
                if g is not None and np.isfinite(g["final_loss"]):
                    ax.loglog([g["lr"]], [g["final_loss"] / r["final"]["n_train"]], "*", ms=10,
                              color=line.get_color())
        ax.set_title(f"{key[0]}, ε = {key[1]:g}" if key[0] == "ibp" else key[0])
        ax.set_xlabel("learning rate (flow time step)")
        ax.set_ylabel("final training loss L̄ / n")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("Learning-rate grid per cell (★ = chosen by the selection rule)")
    fig.tight_layout()
    return save(fig, out)


def fig1b(rows, out, widths=(2000, 5000)) -> list[Path]:
    """Final IBP training error vs ε at the given widths (paper Fig. 1b): certified error
    (solid) and the same nets' clean error (dashed), mean ± s.e. over seeds."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ibp = [r for r in rows if r["method"] == "ibp" and not r.get("diverged", False)]
    for w in widths:
        sub = [r for r in ibp if r["width"] == w]
        _mean_curve(ax, sub, "final_certified_error", "eps", f"m = {w} (certified)")
        color = ax.containers[-1].lines[0].get_color() if ax.containers else None
        _mean_curve(ax, sub, "final_train_error", "eps", f"m = {w} (clean)", marker="^", ls="--", color=color)
    ax.axhline(0.5, ls=":", c="gray", lw=1, label="random guess")
    _error_axes(ax, "ε", "final IBP-trained training error", "Fig. 1b: IBP training error vs ε")
    return save(fig, out)


def fig_scaling(curves, out, t_index=-1) -> list[Path]:
    """Flip fraction and max weight movement vs m at a fixed t (log–log) with a 1/√m guide."""
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for eps in sorted(curves):
        ms = np.array(sorted(curves[eps]), float)
        if len(ms) < 2:
            continue
        move = np.array([curves[eps][int(m)][3][t_index] for m in ms])
        flip = np.array([curves[eps][int(m)][4][t_index] for m in ms])
        for a, v, name in ((ax[0], flip, "flip fraction"), (ax[1], move, "max_r ‖w_r(t) − w_r(0)‖")):
            line, = a.loglog(ms, np.maximum(v, 1e-12), marker="o", label=f"ε = {eps:g}")
            a.loglog(ms, v[0] * np.sqrt(ms[0] / ms), ls="--", c=line.get_color(), lw=1, alpha=0.6)
            a.set_ylabel(name)
    for a in ax:
        a.set_xlabel("width m")
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=8, title="dashed: ∝ 1/√m")
    fig.suptitle("Lazy training: indicator flips and weight movement at the final time")
    return save(fig, out)


def fig_lambda0(rows, out) -> list[Path]:
    """λ0 = λmin(H∞) with its 95% CI against ε."""
    rows = sorted(rows, key=lambda r: r["eps"])
    fig, ax = plt.subplots(figsize=(6, 4.2))
    e = np.array([r["eps"] for r in rows])
    v = np.array([r["lambda_0"] for r in rows])
    lo = v - np.array([r["ci_low"] for r in rows])
    hi = np.array([r["ci_high"] for r in rows]) - v
    ax.errorbar(e, v, [lo, hi], marker="o", capsize=3)
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_yscale("log")
    ax.set_xlabel("ε")
    ax.set_ylabel("λ0 (95% CI)")
    ax.grid(alpha=0.3, which="both")
    ax.set_title("λ0 = λmin(H∞) against ε")
    return save(fig, out)


def fig_methods(rows, out) -> list[Path]:
    """Final clean / PGD / IBP- / CROWN-certified training error vs width, one line per
    training method (mean ± s.e. over seeds), one row of panels per ε."""
    rows = [r for r in rows if not r.get("diverged", False)]
    eps_values = sorted({r["eps"] for r in rows if r["eps"] > 0}) or [0.0]
    methods = sorted({r["method"] for r in rows})
    fig, axes = plt.subplots(len(eps_values), len(METHOD_ERRORS), figsize=(4.2 * len(METHOD_ERRORS),
                             3.6 * len(eps_values)), sharey=True, squeeze=False)
    for i, eps in enumerate(eps_values):
        for j, (key, title) in enumerate(METHOD_ERRORS):
            ax = axes[i, j]
            for k, mth in enumerate(methods):
                sub = [r for r in rows if r["method"] == mth and r["eps"] == eps and np.isfinite(r.get(key, np.nan))]
                _mean_curve(ax, sub, key, "width", mth, marker="os^vD<>p*"[k % 9])
            _error_axes(ax, "width m", f"final {title}", f"{title}, ε = {eps:g}")
            widths = sorted({int(r["width"]) for r in rows})
            ax.set_xticks(widths, [str(w) for w in widths])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.legend(fontsize=6)
    return save(fig, out)


def fig_methods_gram(records, out) -> list[Path]:
    """λmin of each method's own Gram along training (mean over seeds), one panel per (ε, width):
    IBP margins for IBP, the method's bound for CROWN-IBP/CROWN, the clean margins at the
    attack points for PGD/FGSM (gao2019's NTK of u(x_adv))."""
    groups: dict = {}
    for r in records:
        c, s = r["cell"], r["series"]
        lam = np.asarray(s.get("lambda_min", []), float)
        if lam.size and np.isfinite(lam).any():
            groups.setdefault((c["eps"], c["width"]), {}).setdefault(c["method"], []).append((np.asarray(r["ts"]), lam))
    keys = sorted(groups)
    if not keys:
        return []
    fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.8), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for mth, runs in sorted(groups[key].items()):
            L = min(len(t) for t, _ in runs)
            ax.plot(runs[0][0][:L], np.nanmean([v[:L] for _, v in runs], axis=0), marker=".", label=mth)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("λmin(H(t)) of the method's Gram")
        ax.set_title(f"ε = {key[0]:g}, m = {key[1]}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    return save(fig, out)


def _per_cell(records, key, index):
    """{(method, ε): {width: [value over seeds]}} of ``series[key][index]``."""
    out: dict = {}
    for r in records:
        c, v = r["cell"], np.asarray(r["series"].get(key, []), float)
        if v.size and np.isfinite(v[index]):
            out.setdefault((c["method"], c["eps"]), {}).setdefault(c["width"], []).append(float(v[index]))
    return out


def _width_lines(ax, groups, ylabel, title, slope=False):
    for (mth, eps), per in sorted(groups.items()):
        ws = sorted(per)
        m = np.array([np.mean(per[w]) for w in ws])
        se = np.array([np.std(per[w], ddof=1) / np.sqrt(len(per[w])) if len(per[w]) > 1 else np.nan for w in ws])
        label = f"{mth}, ε = {eps:g}"
        if slope and len(ws) >= 2 and np.all(m > 0):
            k = np.polyfit(np.log(ws), np.log(m), 1)[0]
            label += f" (slope {k:.2f})"
        ax.errorbar(ws, m, se, marker="o", capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    widths = sorted({w for per in groups.values() for w in per})
    ax.set_xticks(widths, [str(w) for w in widths])  # the swept widths, not log-axis minor labels
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("width")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)


def fig_deep_ntk(records, out) -> list[Path]:
    """The empirical certified-margin NTK of a width family, mean ± s.e. over seeds:
    λmin(H(0)) of each method's Gram vs width, its relative drift ‖H(T) − H(0)‖/‖H(0)‖ at the
    end vs width with the log-log slope (the two-layer proof needs a drift falling like
    m^-1/2), and λmin(H(T))/λmin(H(0))."""
    lam0 = _per_cell(records, "lambda_min", 0)
    if not lam0:
        return []
    drift = _per_cell(records, "gram_change_rel", -1)
    ratio: dict = {}
    lamT = _per_cell(records, "lambda_min", -1)
    for k, per in lamT.items():
        for w, v in per.items():
            base = lam0.get(k, {}).get(w)
            if base:
                ratio.setdefault(k, {})[w] = [a / b for a, b in zip(v, base) if b > 0]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    _width_lines(axes[0], lam0, "λmin(H(0))", "λmin of the margin Gram at init")
    _width_lines(axes[1], drift, "‖H(T) − H(0)‖₂ / ‖H(0)‖₂", "Gram drift over training", slope=True)
    _width_lines(axes[2], {k: v for k, v in ratio.items() if all(v.values())}, "λmin(H(T)) / λmin(H(0))",
                 "λmin at the end relative to init")
    return save(fig, out)


def fig_laziness(directory, out) -> list[Path]:
    """Movement at T_κ against m (log–log), one line per ε (mean over the seeds that reached κ,
    bars: t interval), with each ε's least-squares slope in the legend: max_r ‖Δw_r‖, the mean
    path length (dashed: ``theory.path_length_lower_bound`` at L̄(0); dotted: its width-free
    floor), the Gram drift and the flip fraction (``structure.laziness_cells``)."""
    from .._core.stats import mean_interval
    from .structure import MEASURES, laziness_cells, width_slope

    _, cells = laziness_cells(directory)
    eps_all = sorted({c["eps"] for c in cells})
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(4.2 * len(MEASURES), 3.6))
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(eps_all)))
    for ax, (key, label) in zip(axes, MEASURES):
        for e, col in zip(eps_all, colors):
            widths = sorted({c["width"] for c in cells if c["eps"] == e and c["reached"]})
            stats = [mean_interval([c[key] for c in cells if c["eps"] == e and c["width"] == w and c["reached"]])
                     for w in widths]
            if not widths:
                continue
            v = np.array([s.value for s in stats])
            lo = np.array([s.lo if np.isfinite(s.lo) else s.value for s in stats])
            hi = np.array([s.hi if np.isfinite(s.hi) else s.value for s in stats])
            sl = width_slope(cells, e, key)
            ax.errorbar(widths, v, yerr=[v - lo, hi - v], marker="o", ms=4, color=col, capsize=2,
                        label=f"ε={e:g}: slope {sl.value:.2f}" if np.isfinite(sl.value) else f"ε={e:g}")
            if key == "path" and e > 0:
                b = [np.mean([c["bound"] for c in cells if c["eps"] == e and c["width"] == w]) for w in widths]
                ax.plot(widths, b, "--", color=col, lw=1)
                ax.axhline(next(c["floor"] for c in cells if c["eps"] == e), color=col, ls=":", lw=1)
        w = np.array(sorted({c["width"] for c in cells}), float)
        ref = [c for c in cells if c["eps"] == eps_all[0] and c["width"] == w[0] and c["reached"]]
        if ref:
            y0 = np.mean([c[key] for c in ref])
            ax.plot(w, y0 * (w / w[0]) ** -0.5, color="grey", lw=0.8, alpha=0.6, label="m^−1/2")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("width m")
        ax.set_title(label + (" (dashed: bound, dotted: floor)" if key == "path" else ""), fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("IBP training at T_κ (first L̄ < κ): movement vs width, fitted slopes in log m")
    return save(fig, out)


def fig_lambda0_eps(dirs: dict, out) -> list[Path]:
    """Per copy of the data (label → sweep directory): λ0(ε)/λ0(0) with its 95% CI, the helping
    (solid) and hurting (dashed) fractions at initialization, and the trained nets' dead fraction
    (mean over seeds, t interval) against ε (top row) and against ε/ε*, ε* = ‖x‖₂/E‖w‖₁ (bottom
    row: a transition at a fixed multiple of ε* lines the copies up)."""
    from .._core.stats import mean_interval
    from .structure import HALF_RATIO, copy_curves

    curves = {k: copy_curves(v) for k, v in dirs.items()}
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    colors = plt.cm.tab10(np.arange(len(curves)) % 10)
    for row, norm in enumerate((False, True)):
        for (label, c), col in zip(curves.items(), colors):
            x_of = (lambda e, c=c: np.asarray(e, float) / c["eps_star"]) if norm else (lambda e: np.asarray(e, float))
            l0 = c["lambda0"]
            if l0:
                e = np.array([r["eps"] for r in l0])
                base = l0[int(np.argmin(e))]["lambda_0"]
                v = np.array([r["lambda_0"] for r in l0]) / base
                lo, hi = (np.array([r[k] for r in l0]) / base for k in ("ci_low", "ci_high"))
                axes[row, 0].plot(x_of(e), v, marker="o", ms=3, color=col, label=label)
                axes[row, 0].fill_between(x_of(e), lo, hi, color=col, alpha=0.2)
            g = np.array(c["grid"])
            hv = np.array([c["init"][e][0].value for e in g])
            uv = np.array([c["init"][e][1].value for e in g])
            axes[row, 1].plot(x_of(g), hv, "-o", ms=3, color=col, label=f"{label} helping")
            axes[row, 1].plot(x_of(g), uv, "--", color=col, lw=1)
            dead = [mean_interval([r["dead_fraction_final"] for r in c["rows"] if r["eps"] == e
                                   and not r.get("diverged")]) for e in g]
            dv = np.array([d.value for d in dead])
            dlo = np.array([d.lo if np.isfinite(d.lo) else d.value for d in dead])
            dhi = np.array([d.hi if np.isfinite(d.hi) else d.value for d in dead])
            axes[row, 2].plot(x_of(g), dv, "-o", ms=3, color=col, label=label)
            axes[row, 2].fill_between(x_of(g), dlo, dhi, color=col, alpha=0.2)
            if not norm:
                for ax in axes[row]:
                    ax.axvline(c["eps_star"], color=col, ls=":", lw=0.8)
        xl = "ε / ε*" if norm else "ε (dotted: ε* = ‖x‖₂/E‖w‖₁ per copy)"
        for ax, title in zip(axes[row], ("λ0(ε)/λ0(0), 95% CI", "helping (solid) / hurting (dashed) at init",
                                         "dead fraction after training")):
            ax.set_xlabel(xl)
            ax.set_title(title, fontsize=9)
            ax.set_ylim(-0.02, 1.05)
            if norm:
                ax.axvline(1.0, color="k", ls=":", lw=0.8)
                ax.set_xlim(-0.1, 4.0)  # the transitions lie below 2ε*; beyond 4ε* every curve is flat
        if norm:
            axes[row, 1].axvline(HALF_RATIO, color="grey", ls="-.", lw=0.8)
        axes[row, 0].legend(fontsize=7)
    fig.suptitle("The λ0 collapse: λ0, helping neurons and dead nets vs ε, per copy of MNIST 2-vs-5")
    fig.tight_layout()
    return save(fig, out)


def _lambda0_copies(d: Path) -> dict:
    """{name: subdirectory} of the λ0-collapse sweeps directly under ``d``."""
    from .structure import is_lambda0_sweep

    out = {}
    for sub in sorted(p for p in d.iterdir() if p.is_dir()):
        if (sub / "results.csv").exists() and (sub / "config.json").exists() and is_lambda0_sweep(
                read_json(sub / "config.json")):
            out[sub.name] = sub
    return out


def figures(directory) -> list[Path]:
    """Every figure the results in ``directory`` support, written next to them."""
    from ..sweep.store import read_table

    d = Path(directory)
    copies = _lambda0_copies(d) if d.is_dir() and not (d / "results.csv").exists() else {}
    if copies:  # a directory of λ0-collapse copies (experiments/lambda0_eps.toml)
        return fig_lambda0_eps(copies, d / "fig_lambda0_eps")
    if not (d / "results.csv").exists():
        raise NtkflowError(f"{d}: no results.csv (run `ntkflow sweep CONFIG --out {d}` first)")
    rows = read_table(d / "results.csv")
    from .structure import is_laziness_sweep

    from .phase import is_phase_sweep, phase_figure

    if (d / "config.json").exists() and is_phase_sweep(read_json(d / "config.json")):
        return [phase_figure(d, d / "fig_phase.png")]
    if (d / "config.json").exists() and is_laziness_sweep(read_json(d / "config.json")):
        return fig_laziness(d, d / "fig_laziness")
    out = []
    if any(r["method"] == "standard" for r in rows) or len({r["width"] for r in rows}) > 1:
        out += fig1a(rows, d / "fig1a")
    if len({r["eps"] for r in rows if r["method"] == "ibp"}) > 1:
        out += fig1b(rows, d / "fig1b", widths=sorted({int(r["width"]) for r in rows})
                     if not {2000, 5000} & {int(r["width"]) for r in rows} else (2000, 5000))
    curves, lam, records = _curves_from_sweep(d)
    if any(np.isfinite(np.asarray(r["series"].get("gram_change_rel", [np.nan]), float)).any() for r in records) \
            and len({r["cell"]["width"] for r in records}) > 1:
        out += fig_deep_ntk(records, d / "fig_deep_ntk")
    if len({r["method"] for r in rows} - {"standard", "ibp"}) > 0:
        out += fig_methods(rows, d / "fig_methods")
        out += fig_methods_gram(records, d / "fig_methods_gram")
    if any(len(r.get("lr_grid", [])) > 1 for r in records):
        out += fig_lr_grid([r for r in records if r.get("lr_grid")], d / "fig_lr_grid")
    has_gram = any(np.isfinite(c[2]).any() for per in curves.values() for c in per.values())
    if has_gram and lam:
        out += _lambda_panels(curves, lam, "Robust loss with Lemma 6 envelopes, λmin(H(t))/λ0", d / "fig_theory",
                              envelopes=True)
    if any(len(per) > 1 for per in curves.values()):
        out += fig_scaling(curves, d / "fig_scaling")
    if lam:
        out += fig_lambda0(read_table(d / "lambda0.csv"), d / "fig_lambda0")
    return out
