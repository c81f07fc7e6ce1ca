"""The ε–width phase diagram (``experiments/phase.toml``): where certified gradient descent
reaches L̄ < κ, read from a stored sweep, never retraining.

Theorem 1 (wang2022, Sec. 4) says: for ε below a width-free bound and m above a bound that
grows as ε approaches it, IBP training reaches zero certified training error w.p. ≥ 1 − δ.
Its width requirement, solved from Eq. 14′ (``theory.formulas.width_bound``), has the shape

    m*(ε) ≈ ((c₁ n/δ + c₂) / (A − B ε))²,                                   (Eq. 14′)

so 1/√m* is linear in ε and vanishes at ε_crit = A/B: beyond it no width suffices. This
module measures that shape where it can be measured:

- per cell (n, d, ε, m) the fraction of the K initializations that reached L̄ < κ with zero
  certified training error (``reach_rates``), a count with its Clopper–Pearson interval;
- m*(ε): the smallest width of the grid at which ≥ (1 − δ)K runs reach it (``critical_width``),
  beside the smallest width whose interval does not exclude 1 − δ (below it the grid's widths
  fail at 95%). K runs decide "reaches w.p. ≥ 1 − δ" only when K ≥ ``runs_to_decide(δ)``
  (36 at δ = 0.1, with no failure): with fewer the point m* is reported, not decided;
- ε_crit per (n, d): the zero of the least-squares line of 1/√m* on ε (``fit_eps_crit``),
  with a 95% percentile-bootstrap interval over the runs of each cell (fixed seed), and the
  bracket the grid itself gives (the largest ε reached at some width, the next ε of the grid);
- its exponents in n and d (``eps_crit_exponents``): least squares of log ε_crit on
  (1, log n, log d) with t intervals (df = points − 3), beside the derived chain's ε bound
  ∝ n⁻⁴ d⁻²·⁵ X⁻¹ (``theory.formulas.epsilon_bound``; on data uniform in [ε, 1]^d,
  X ≈ √(d/3), so d⁻³ overall).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._core.errors import NtkflowError
from .._core.stats import CONFIDENCE, Interval, Rate, rate, runs_to_decide
from .._io import read_json
from ..paper.hinf import h_inf_exact
from ..sweep.build import cell_config, dataset_for
from ..sweep.cells import Cell
from ..sweep.config import DEFAULTS
from ..sweep.store import read_table
from ..theory import formulas as T

__all__ = ["is_phase_sweep", "reach_rates", "critical_width", "fit_eps_crit", "eps_crit_exponents", "phase_section",
           "phase_figure", "theorem_bounds", "step_size_ratio", "PhaseCell", "DERIVED_EXPONENTS", "BOOTSTRAP"]

#: The derived chain's ε bound ∝ n⁻⁴ d⁻²·⁵ X⁻¹ (theory.formulas.epsilon_bound), X ≈ √(d/3) here.
DERIVED_EXPONENTS = {"n": -4.0, "d": -3.0}
#: Bootstrap resamples for ε_crit's interval (percentile, fixed seed).
BOOTSTRAP = 2000


def is_phase_sweep(cfg: dict) -> bool:
    """A sweep over the data axes (``grid.n_train`` / ``grid.d``: experiments/phase.toml)."""
    grids = cfg.get("grid", [])
    grids = grids if isinstance(grids, list) else [grids]
    return any("n_train" in g or "d" in g for g in grids)


@dataclass(frozen=True)
class PhaseCell:
    """One (n, d, ε, m) cell: ``reached`` counts the runs that ended with L̄ < κ and zero
    certified training error; ``times`` are their times to κ (lr × epochs)."""

    n: int
    d: int
    eps: float
    width: int
    outcomes: tuple[bool, ...]
    times: tuple[float, ...]
    final_losses: tuple[float, ...] = ()
    epochs_run: tuple[float, ...] = ()

    @property
    def reached(self) -> Rate:
        return rate(sum(self.outcomes), len(self.outcomes))


def _flag(v) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        return v == "True"
    return bool(np.isfinite(v) and v > 0.5)


def _reached(row: dict, kappa: float) -> bool:
    """L̄ < κ at the stop and zero certified training error, not diverged. ``reached_kappa`` where
    the table has it; else the final summed certified loss (``final_loss``: at the weights the κ
    rule stopped at) below κ."""
    if _flag(row.get("diverged", False)):
        return False
    below = _flag(row["reached_kappa"]) if "reached_kappa" in row else row["final_loss"] < kappa
    return below and row.get("final_certified_error", math.nan) == 0.0


def _time_to_kappa(row: dict) -> float:
    """``time_to_kappa`` where stored, else lr × epochs (GD: one step an epoch, lr a flow time step)."""
    if "time_to_kappa" in row:
        return float(row["time_to_kappa"])
    return float(row.get("lr", math.nan)) * float(row.get("epochs_run", math.nan))


def _violates_assumption_2(row: dict) -> bool:
    """The exact check failed on the cell's points (NaN: real data, not checked)."""
    v = row.get("assumption_2_holds", math.nan)
    return bool(np.isfinite(v) and v == 0)


def reach_rates(rows: list[dict], kappa: float = math.log(2.0)) -> dict[tuple, PhaseCell]:
    """Group results rows by (n_train, d, eps, width): the runs (seeds) of each cell. Rows with
    ``assumption_2_holds`` = 0 (the cell's points violate Assumption 2) are left out."""
    need = {"n_train", "d", "eps", "width", "final_certified_error"}
    if rows:
        missing = need - set(rows[0])
        if not {"reached_kappa", "final_loss"} & set(rows[0]):
            missing.add("reached_kappa or final_loss")
        if missing:
            raise NtkflowError(f"rows: a phase sweep needs the columns {', '.join(sorted(need))} and "
                               f"reached_kappa or final_loss; missing {', '.join(sorted(missing))}")
    rows = [r for r in rows if not _violates_assumption_2(r)]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (int(r["n_train"]), int(r["d"]), float(r["eps"]), int(r["width"]))
        groups.setdefault(key, []).append(r)
    out = {}
    for key, rs in sorted(groups.items()):
        ok = tuple(_reached(r, kappa) for r in rs)
        t = tuple(_time_to_kappa(r) for r, o in zip(rs, ok) if o)
        out[key] = PhaseCell(*key, outcomes=ok, times=t,
                             final_losses=tuple(float(r.get("final_loss", math.nan)) for r in rs),
                             epochs_run=tuple(float(r.get("epochs_run", math.nan)) for r in rs))
    return out


def _m_star(widths, fractions, level: float):
    """The smallest width whose fraction is ≥ level (None: no width of the grid)."""
    for w, f in zip(widths, fractions):
        if f >= level - 1e-12:
            return w
    return None


def critical_width(cells: list[PhaseCell], delta: float) -> dict:
    """m*(ε) of one (n, d, ε) row of cells, over its widths.

    Returns ``m_star`` (the smallest width with reached/K ≥ 1 − δ; None beyond the grid),
    ``m_not_excluded`` (the smallest width whose Clopper–Pearson upper end is ≥ 1 − δ: every
    smaller width of the grid fails at 95%), ``decided`` (whether m_star's cell has a lower end
    ≥ 1 − δ; needs K ≥ ``runs_to_decide(δ)``) and ``runs_to_decide``.
    """
    if not 0 < delta < 1:
        raise NtkflowError(f"delta: must be in (0, 1), got {delta!r}")
    cells = sorted(cells, key=lambda c: c.width)
    widths = [c.width for c in cells]
    rates = [c.reached for c in cells]
    m = _m_star(widths, [r.value for r in rates], 1 - delta)
    lo = _m_star(widths, [r.hi for r in rates], 1 - delta)
    at = rates[widths.index(m)] if m is not None else None
    return {"m_star": m, "m_not_excluded": lo, "decided": bool(at is not None and at.lo >= 1 - delta),
            "runs_to_decide": runs_to_decide(delta), "rate_at_m_star": at}


def _line_zero(eps, m_star) -> float:
    """ε where the least-squares line of 1/√m* on ε vanishes (Eq. 14′'s ε_crit = A/B); NaN when
    fewer than two ε have a finite m* or the line does not fall."""
    e = np.array([x for x, m in zip(eps, m_star) if m is not None], float)
    y = np.array([1 / math.sqrt(m) for m in m_star if m is not None], float)
    if e.size < 2 or np.ptp(e) == 0:
        return math.nan
    slope, icpt = np.polyfit(e, y, 1)
    # a line flat to rounding (equal m* at every ε) does not fall: no zero is measured
    falls = slope < 0 and icpt > 0 and -slope * np.ptp(e) > 1e-9 * icpt
    return float(-icpt / slope) if falls else math.nan


def fit_eps_crit(cells: dict[tuple, PhaseCell], n: int, d: int, delta: float, *,
                 resamples: int = BOOTSTRAP, seed: int = 0, confidence: float = CONFIDENCE) -> dict:
    """ε_crit of one (n, d): the zero of the line 1/√m*(ε) = (A − Bε)/C (Eq. 14′'s shape).

    Returns ``fit`` (an ``Interval``: the point from the data, a percentile-bootstrap interval
    from resampling each cell's runs with replacement; ``lo``/``hi`` NaN when fewer than half the
    resamples give a falling line), ``bracket`` (the largest ε of the grid reached at some width,
    and the next ε of the grid, or inf) and ``eps``/``m_star`` per ε.
    """
    mine = {k: c for k, c in cells.items() if k[0] == n and k[1] == d}
    if not mine:
        raise NtkflowError(f"n, d: no cells with n = {n}, d = {d}")
    eps = sorted({k[2] for k in mine})
    rows = {e: sorted((c for k, c in mine.items() if k[2] == e), key=lambda c: c.width) for e in eps}
    ms = [critical_width(rows[e], delta)["m_star"] for e in eps]
    point = _line_zero(eps, ms)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(int(resamples)):
        mb = []
        for e in eps:
            fr = [np.mean(rng.choice(np.asarray(c.outcomes, float), len(c.outcomes))) for c in rows[e]]
            mb.append(_m_star([c.width for c in rows[e]], fr, 1 - delta))
        boots.append(_line_zero(eps, mb))
    boots = np.asarray(boots)
    ok = boots[np.isfinite(boots)]
    a = (1 - confidence) / 2
    if ok.size >= max(2, boots.size / 2):
        lo, hi = (float(q) for q in np.quantile(ok, [a, 1 - a]))
    else:
        lo = hi = math.nan
    reached = [e for e, m in zip(eps, ms) if m is not None]
    last = max(reached) if reached else None
    nxt = next((e for e in eps if last is not None and e > last), math.inf) if last is not None else eps[0]
    return {"fit": Interval(point, lo, hi, int(ok.size)), "bracket": (last, nxt), "eps": eps, "m_star": ms,
            "valid_resamples": int(ok.size)}


def eps_crit_exponents(points: list[tuple[int, int, float]], confidence: float = CONFIDENCE) -> dict:
    """Least squares of log ε_crit on (1, log n, log d) over (n, d, ε_crit) points: the exponents
    with t intervals (df = points − 3); NaN intervals with fewer than four points or a design
    without spread in n or d."""
    import scipy.stats

    pts = [(n, d, e) for n, d, e in points if np.isfinite(e) and e > 0]
    out = {"points": len(pts)}
    if len(pts) < 3:
        return {**out, "n": Interval(math.nan, math.nan, math.nan, len(pts)),
                "d": Interval(math.nan, math.nan, math.nan, len(pts))}
    A = np.array([[1.0, math.log(n), math.log(d)] for n, d, _ in pts])
    y = np.log([e for *_, e in pts])
    if np.linalg.matrix_rank(A) < 3:
        return {**out, "n": Interval(math.nan, math.nan, math.nan, len(pts)),
                "d": Interval(math.nan, math.nan, math.nan, len(pts))}
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    df = len(pts) - 3
    if df < 1:
        return {**out, "n": Interval(float(coef[1]), math.nan, math.nan, len(pts)),
                "d": Interval(float(coef[2]), math.nan, math.nan, len(pts))}
    resid = y - A @ coef
    cov = (resid @ resid / df) * np.linalg.inv(A.T @ A)
    q = float(scipy.stats.t.ppf(0.5 + confidence / 2, df))
    se = np.sqrt(np.diag(cov))
    return {**out, **{name: Interval(float(coef[i]), float(coef[i] - q * se[i]), float(coef[i] + q * se[i]), len(pts))
                      for name, i in (("n", 1), ("d", 2))}}


# ------------------------------------------------------------------ the section and the figure
def _cell_data(cfg: dict, n: int, d: int, eps: float):
    """The data the cells at (n, d, ε) trained on, rebuilt from the stored config (a
    deterministic function of it), as (n, d) float64 X and ±1 y."""
    cfg = {**cfg, "data": {**DEFAULTS["data"], **cfg.get("data", {})}}  # a store from before a data key existed
    ds = dataset_for(cell_config(cfg, Cell(0, "", eps, 0, n, d)), eps)
    return np.asarray(ds.X, float).reshape(len(ds.y), -1), np.asarray(ds.y, float)


def step_size_ratio(cfg: dict, n: int, d: int, eps: float, lr: float) -> float:
    """lr·λmax(H∞) on the data of (n, d, ε), H∞ at ε = 0 in closed form (``paper.hinf.h_inf_exact``;
    the certified Gram differs from it by O(ε)): full-batch GD follows the gradient flow the
    theorem is about when this is ≤ 1 (issue's condition lr ≤ 1/λmax(H))."""
    X, y = _cell_data(cfg, n, d, eps)
    return float(lr * np.linalg.eigvalsh(h_inf_exact(X, y))[-1])


def theorem_bounds(cfg: dict, n: int, d: int, eps: float, lambda0: float, delta: float) -> dict:
    """Theorem 1's requirements at one point of the diagram, on the data its cells trained on
    (rebuilt from the stored config: the data are a deterministic function of it).

    Returns, per reading of the paper — the printed constants and the re-derived chain
    (``theory.formulas``' docstrings) —:
      "eps_printed" / "eps_derived": the largest ε the theorem covers (``epsilon_bound``);
      "width_printed" / "width_derived": the width it asks (``width_bound``), inf when no
        width suffices or when ε is above that reading's ε bound (the theorem then says nothing);
      "width_edge_printed": δ²λ0²/(d^2.5 n⁴), the ε from which the printed width's denominator
        is ≤ 0. The print's ε bound has n³ where its width has n⁴ (a slip: ε between the two
        is "covered" yet asks no finite width).
    ξ = min‖x_i‖₂ and X = max(‖x_i‖₂ + ε√d) of those data; λ0 as given (the sweep's estimate).
    """
    X, _ = _cell_data(cfg, n, d, eps)
    xi, xs = float(np.linalg.norm(X, axis=1).min()), T.input_scale(X, eps)
    if not lambda0 > 0:
        return {"width_printed": math.inf, "width_derived": math.inf, "eps_printed": 0.0, "eps_derived": 0.0,
                "width_edge_printed": 0.0}
    out = {"eps_printed": T.epsilon_bound(n, d, delta, lambda0, xi, "printed"),
           "eps_derived": T.epsilon_bound(n, d, delta, lambda0, xi, "derived", x_scale=xs, eps=eps),
           "width_edge_printed": delta**2 * lambda0**2 / (d**2.5 * n**4)}
    w = {"printed": T.width_bound(n, d, delta, lambda0, eps, variant="printed"),
         "derived": T.width_bound(n, d, delta, lambda0, eps, xi, "derived", x_scale=xs)}
    for v, m in w.items():
        out[f"width_{v}"] = m if eps <= out[f"eps_{v}"] else math.inf
    return out


def _theorem_table(cfg: dict, n: int, d: int, lam_rows: list[dict], delta: float) -> tuple[list[str], dict]:
    """Markdown lines comparing Theorem 1's width and ε requirements with the grid, and
    {ε: bounds} for the figure, from the λ0 rows of (n, d); empty without them."""
    if not lam_rows:
        return [], {}
    lam = {float(r["eps"]): float(r["lambda_0"]) for r in lam_rows}
    got = {e: theorem_bounds(cfg, n, d, e, lam[e], delta) for e in sorted(lam)}
    top = {k: max(b[k] for b in got.values()) for k in ("eps_printed", "eps_derived", "width_edge_printed")}
    reach = (f"the largest ε it covers is ≤ {top['eps_printed']:.2g} (printed constants; its width is finite only "
             f"below {top['width_edge_printed']:.2g}, n⁴ where the ε bound has n³) / ≤ {top['eps_derived']:.2g} "
             "(the re-derived chain of `theory.formulas`)")
    if not any(np.isfinite(b[k]) for b in got.values() for k in ("width_printed", "width_derived")):
        below = max(top.values()) < min(got)
        return ["", f"Theorem 1 asks no finite width at any point of this grid (δ = {delta:g}, λ0 the sweep's "
                f"estimate): {reach}" + (f", all below the grid's smallest ε = {min(got):g}." if below else ".")], got
    fmt = lambda v: "∞ (none, or ε not covered)" if not np.isfinite(v) else f"{v:.2g}"  # noqa: E731
    lines = ["", f"Theorem 1 at these points (δ = {delta:g}, λ0 the sweep's estimate): {reach}.", "",
             "| ε | width (printed) | width (derived) | ε bound (printed) | ε bound (derived) |", "|---|---|---|---|---|"]
    lines += [f"| {e:g} | {fmt(b['width_printed'])} | {fmt(b['width_derived'])} | {b['eps_printed']:.2g} | "
              f"{b['eps_derived']:.2g} |" for e, b in got.items()]
    return lines, got


def _draw_theorem(ax, bounds: dict, eps: list, widths: list) -> None:
    """Theorem 1's width (derived chain) on a panel whose axes are grid indices: a point where
    it falls inside the grid's widths (log-interpolated), an arrow with its value above the
    grid, "∞" where it asks no finite width."""
    for j, e in enumerate(eps):
        b = bounds.get(e)
        if b is None:
            continue
        w = b["width_derived"]
        top = len(widths) - 1 + 0.3  # inside the top row of cells, where it stays legible
        if not np.isfinite(w):
            ax.text(j, top, "Thm 1: ∞", ha="center", va="center", fontsize=5, bbox=dict(boxstyle="round,pad=0.15", fc="w", alpha=0.7, lw=0))
        elif w > widths[-1]:
            ax.text(j, top, f"Thm 1: ↑{w:.0e}", ha="center", va="center", fontsize=5, bbox=dict(boxstyle="round,pad=0.15", fc="w", alpha=0.7, lw=0))
        else:
            y = np.interp(np.log(w), np.log(widths), np.arange(len(widths)))
            ax.plot([j], [y], "v", color="0.5", ms=4)
    if bounds:
        ax.plot([], [], "v", color="0.5", label="Theorem 1's width (derived)")


def _lambda0_by_nd(directory) -> dict[tuple[int, int], list[dict]]:
    """The sweep's λ0 records (lambda0.csv) grouped by (n, d), each sorted by ε; {} without the file."""
    path = Path(directory) / "lambda0.csv"
    out: dict[tuple[int, int], list[dict]] = {}
    for r in sorted(read_table(path), key=lambda r: r["eps"]) if path.exists() else []:
        out.setdefault((int(r.get("n_train", 0)), int(r.get("d", 0))), []).append(r)
    return out


def _load(directory) -> tuple[dict, list[dict], dict[tuple, PhaseCell]]:
    d = Path(directory)
    if not (d / "config.json").exists() or not (d / "results.csv").exists():
        raise NtkflowError(f"directory: {d} has no config.json and results.csv (not a sweep directory)")
    cfg = read_json(d / "config.json")
    kappa = (cfg.get("train", {}).get("stop", {}) or {}).get("kappa", 0.0) or math.log(2.0)
    table = read_table(d / "results.csv")
    return cfg, table, reach_rates(table, kappa)


def _budget_line(cells: list[PhaseCell], budget: float) -> str:
    """How the runs that did not reach κ ended: at the epoch budget (budget-bound: not shown
    unreachable) or stopped earlier, and their summed certified loss at the end."""
    miss = [(L, e) for c in cells for o, L, e in zip(c.outcomes, c.final_losses, c.epochs_run) if not o]
    if not miss:
        return "Every run reached κ."
    at_budget = sum(1 for _, e in miss if np.isfinite(e) and e >= budget)
    L = np.array([L for L, _ in miss], float)
    L = L[np.isfinite(L)]
    med = f"; their median L̄ at the end {np.median(L):.3g} (κ = log 2 = 0.693)" if L.size else ""
    return (f"{len(miss)} runs did not reach κ; {at_budget} of them ran the whole budget of {budget:g} epochs "
            f"(budget-bound: not shown unreachable){med}.")


def _fmt_w(m) -> str:
    return "—" if m is None else f"{m:,}"


def phase_section(directory, *, delta: float = 0.1, label: str | None = None) -> list[str]:
    """Markdown lines of the phase-diagram section from a stored sweep directory (``label``: the
    sweep's name on the page, in the heading)."""
    cfg, table, cells = _load(directory)
    a2 = [r for r in table if _violates_assumption_2(r)]
    a2_points = sorted({(int(r["n_train"]), int(r["d"]), float(r["eps"])) for r in a2})
    if not cells:
        raise NtkflowError(f"directory: {directory} has no finished cells")
    stop = cfg.get("train", {}).get("stop", {}) or {}
    kappa = stop.get("kappa", math.nan)
    nds = sorted({(k[0], k[1]) for k in cells})
    K = min(len(c.outcomes) for c in cells.values())
    lines = ["## The ε–width phase diagram (Theorem 1's shape)" + (f": `{label}`" if label else ""), "",
             f"Data: {cfg['data'].get('source')} in {'[ε, 1]' if cfg['data'].get('normalize') else '[0, 1]'}^d "
             f"(Assumption 2 checked), full-batch GD at lr = "
             f"{cfg['train'].get('lr')} (a time step of the gradient flow) until L̄ < κ = {kappa:g} or "
             f"{cfg['train'].get('epochs')} steps; K = {K} initializations per cell. A run *reaches* when it stops "
             f"with L̄ < κ and zero certified training error. m*(ε): the smallest width with ≥ (1 − δ)K reaching, "
             f"δ = {delta:g}; K = {K} runs decide \"w.p. ≥ 1 − δ\" only from K ≥ {runs_to_decide(delta)} "
             f"(Clopper–Pearson, no failure), so m* is a point estimate and the column \"not excluded\" gives the "
             f"smallest width whose 95% interval reaches 1 − δ (every smaller width fails at 95%).", "",
             (f"Assumption 2 fails on the drawn points at (n, d, ε) = "
              f"{', '.join(f'({n}, {d}, {e:g})' for n, d, e in a2_points)}: those {len(a2)} runs are left out."
              if a2 else "Assumption 2 holds on every cell's points (exact check)."), ""]
    budget = float(cfg.get("train", {}).get("epochs", math.nan))
    lam_by = _lambda0_by_nd(directory)
    points = []
    for n, d in nds:
        fit = fit_eps_crit(cells, n, d, delta)
        points.append((n, d, fit["fit"].value))
        widths = sorted({k[3] for k in cells if k[:2] == (n, d)})
        lines += [f"**n = {n}, d = {d}**", "", "| ε | " + " | ".join(f"m = {w:,}" for w in widths)
                  + " | m* | not excluded |", "|---|" + "---|" * (len(widths) + 2)]
        for e in fit["eps"]:
            row = sorted((c for k, c in cells.items() if k[:3] == (n, d, e)), key=lambda c: c.width)
            cw = critical_width(row, delta)
            by_w = {c.width: c for c in row}
            lines.append(f"| {e:g} | " + " | ".join(by_w[w].reached.fmt(3) if w in by_w else "not run" for w in widths)
                         + f" | {_fmt_w(cw['m_star'])} | {_fmt_w(cw['m_not_excluded'])} |")
        lines += ["", _budget_line([c for k, c in cells.items() if k[:2] == (n, d)], budget)]
        lr = cfg.get("train", {}).get("lr")
        if isinstance(lr, (int, float)):
            ratios = [step_size_ratio(cfg, n, d, e, lr) for e in fit["eps"]]
            span = f"{min(ratios):.3g}" + (f"–{max(ratios):.3g}" if max(ratios) > 1.0005 * min(ratios) else "")
            lines += ["", f"Step size: lr·λmax(H∞) = {span} over the ε of the grid (H∞ at ε = 0, exact): the "
                      f"condition lr ≤ 1/λmax(H) for GD as a discretization of the flow "
                      f"{'holds' if max(ratios) <= 1 else 'fails'}."]
        lam = lam_by.get((n, d), [])
        lines += _theorem_table(cfg, n, d, lam, delta)[0]
        if lam:
            lines += ["", "λ0 = λmin(H∞) (95% CI, Monte Carlo): " + "; ".join(
                f"ε = {r['eps']:g}: {r['lambda_0']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"
                for r in lam) + " — the time to κ scales like 1/λ0 (Lemma 6′)."]
        last, nxt = fit["bracket"]
        br = (f"the grid reaches up to ε = {last:g} (next grid ε: {nxt:g})" if last is not None
              else "no ε of the grid is reached at any width")
        z = fit["fit"]
        if np.isfinite(z.value):
            where = " (beyond the grid's bracket: an extrapolation)" if z.value > nxt else ""
            zt = f"{z.value:.3g}" + (f" [{z.lo:.3g}, {z.hi:.3g}]" if z.finite else " (no bootstrap interval)") + where
        else:
            zt = "— (fewer than two ε with a finite m*, or m* does not grow with ε)"
        lines += ["", f"ε_crit (Eq. 14′'s zero of 1/√m* in ε): {zt}; {br}.", ""]
    ex = eps_crit_exponents(points)
    lines += [f"Exponents of ε_crit (log ε_crit on 1, log n, log d; {ex['points']} points): n: {ex['n'].fmt(2)}, "
              f"d: {ex['d'].fmt(2)} — the derived chain's sufficient ε bound scales as n^{DERIVED_EXPONENTS['n']:g} "
              f"d^{DERIVED_EXPONENTS['d']:g} (n⁻⁴ d⁻²·⁵ X⁻¹, X ≈ √(d/3)). An exponent whose interval excludes the "
              f"derived one says the bound's shape, not only its constant, differs from the measured boundary.", ""]
    return lines


def phase_figure(directory, out, *, delta: float = 0.1):
    """Reached fraction over (ε, m) per (n, d), m*(ε) marked, from a stored sweep; saves ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg, _, cells = _load(directory)
    lam_by = _lambda0_by_nd(directory)
    nds = sorted({(k[0], k[1]) for k in cells})
    cols = min(4, len(nds))
    rows_ = math.ceil(len(nds) / cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(3.2 * cols, 2.8 * rows_), squeeze=False)
    fig.subplots_adjust(top=0.82, bottom=0.22)  # room for the title and the rotated ε labels
    for ax, (n, d) in zip(axes.ravel(), nds):
        mine = {k: c for k, c in cells.items() if k[:2] == (n, d)}
        eps = sorted({k[2] for k in mine})
        widths = sorted({k[3] for k in mine})
        Z = np.full((len(widths), len(eps)), np.nan)
        for (_, _, e, w), c in mine.items():
            Z[widths.index(w), eps.index(e)] = c.reached.value
        im = ax.imshow(Z, origin="lower", aspect="auto", vmin=0, vmax=1, cmap="viridis")
        fit = fit_eps_crit(cells, n, d, delta, resamples=0)
        ms = [widths.index(m) if m is not None else np.nan for m in fit["m_star"]]
        ax.plot(range(len(eps)), ms, "r-o", ms=3, label="m*(ε)")
        _draw_theorem(ax, _theorem_table(cfg, n, d, lam_by.get((n, d), []), delta)[1], eps, widths)
        ax.set_xticks(range(len(eps)), [f"{e:.0e}" for e in eps], rotation=60, fontsize=6)
        ax.set_yticks(range(len(widths)), [f"{w:.0e}" for w in widths], fontsize=6)
        ax.set_title(f"n = {n}, d = {d}", fontsize=8)
    for ax in axes.ravel()[len(nds):]:
        ax.axis("off")
    axes[0, 0].set_ylabel("width m")
    axes[-1, 0].set_xlabel("ε")
    axes[0, 0].legend(fontsize=6)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="reached fraction")
    fig.suptitle(f"fraction of runs reaching L̄ < κ with zero certified error (δ = {delta:g}); "
                 "Thm 1: the width Theorem 1 asks (∞: none suffices)", fontsize=9, y=0.995)
    out = Path(out)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
