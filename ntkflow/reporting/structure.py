"""The theorem's structure, tested where it can be exactly: two findings sections from stored
sweep directories (never retraining).

``laziness_section(directory)`` (``experiments/laziness.toml``): is IBP training lazy at fixed
ε > 0? Each cell is full-batch GD stopped at T_κ, the first epoch with L̄ < κ. Per ε, the
least-squares slope of log(measure) on log m over the cells that reached κ (every seed a point;
t interval, df = points − 2, ``slope_interval``) for max_r ‖Δw_r‖, the mean path length, the flip
fraction and the Gram drift ‖H(T_κ) − H(0)‖₂/‖H(0)‖₂ (‖H(0)‖₂ recomputed from the seed's
initialization, ``gram_norm0``). Lazy (NTK) training has max_r ‖Δw_r‖ = O(m^{−1/2}); beside the
measured path length stands ``theory.path_length_lower_bound`` at each cell's L̄(0) and its
width-free limit c·ε·d/X (``path_floor``). The fraction of runs that reach κ is a count with its
Clopper–Pearson interval.

``lambda0_section(dirs)`` (``experiments/lambda0_eps.toml``, one directory per copy of the data):
λ0(ε) with its CI (the sweep's lambda0.csv), the fractions of neurons that can help / that hurt at
initialization (``init_fractions``), the trained nets' dead fraction and certified error. The
transition of each is located at its half point: the helping fraction's ε_½ (where it falls to
half its ε = 0 value) is exactly the median of the positive ratios w_rᵀx_i/‖w_r‖₁ (``help_half``),
with a bootstrap interval over images and neurons; λ0's ε_½ from its pointwise CIs; the dead
fraction's ε where it reaches 1/2, per seed, with a t interval over seeds. The prediction
ε* = mean‖x_i‖₂/E‖w‖₁ (E‖w‖₁ = d√(2/π)): under w ~ N(0, I), wᵀx/‖w‖₁ ≈ N(0, ‖x‖²)/E‖w‖₁, so the
helping fraction is ≈ P(Z > ε/ε*) and its half point sits at Φ⁻¹(3/4)·ε* = 0.674·ε* (``HALF_RATIO``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import scipy.stats

from .._core.errors import NtkflowError
from .._core.stats import Interval, mean_interval, pooled_rate, rate, slope_interval
from .._io import read_json
from ..sweep.store import read_table

__all__ = ["laziness_section", "lambda0_section", "is_laziness_sweep", "is_lambda0_sweep", "lazy_verdict",
           "path_floor", "gram_norm0", "init_fractions", "help_half", "half_crossing", "first_crossing",
           "predicted_eps", "laziness_cells", "copy_curves", "width_slope", "HALF_RATIO", "MEASURES"]

#: Φ⁻¹(3/4): the helping fraction P(Z > ε/ε*) falls to half its ε = 0 value at this ε/ε*.
HALF_RATIO = float(scipy.stats.norm.ppf(0.75))
#: Laziness measures: (key of ``laziness_cells``' rows, label).
MEASURES = (("move", "max_r ‖Δw_r‖"), ("path", "mean path length"), ("flip", "flip fraction"),
            ("drift", "‖H(T_κ) − H(0)‖/‖H(0)‖"))
#: Neurons and bootstrap resamples of ``init_fractions`` / ``help_half``.
INIT_NEURONS = 4000
BOOTSTRAP = 300


# ------------------------------------------------------------------ routing and reading
def _methods(cfg: dict) -> set:
    return {m for g in cfg.get("grid", []) for m in g.get("method", [])}


def _two_layer(cfg: dict) -> bool:
    return cfg.get("model", {}).get("net", "two_layer") == "two_layer"


def is_laziness_sweep(cfg: dict) -> bool:
    """A sweep of the paper's net stopped at κ (train.stop.kappa > 0) with the Gram tracked."""
    return (_two_layer(cfg) and _methods(cfg) <= {"ibp", "standard"}
            and float(cfg["train"].get("stop", {}).get("kappa", 0.0)) > 0 and bool(cfg["track"].get("gram")))


def is_lambda0_sweep(cfg: dict) -> bool:
    """A discrete-training sweep of IBP on the paper's net with λ0 estimated per ε (track.lambda_0)."""
    return (_two_layer(cfg) and _methods(cfg) <= {"ibp"} and bool(cfg["track"].get("lambda_0"))
            and not cfg["train"].get("flow") and not is_laziness_sweep(cfg))


def _load(directory) -> tuple[dict, list[dict], dict]:
    """(config, results rows, cell_id → stored record) of a sweep directory."""
    d = Path(directory)
    if not (d / "config.json").exists() or not (d / "results.csv").exists():
        raise NtkflowError(f"directory: {d} has no config.json and results.csv (not a sweep directory)")
    cfg = read_json(d / "config.json")
    rows = read_table(d / "results.csv")
    if not rows:
        raise NtkflowError(f"directory: {d / 'results.csv'} has no finished cells")
    recs = {}
    for r in rows:
        files = sorted((d / "cells").glob(f"{r['cell_id']}-*.json"))
        if len(files) > 1:
            from ..sweep.cells import Cell, cell_key

            key = cell_key(cfg, Cell(int(r["width"]), r["method"], float(r["eps"]), int(r["seed"])))
            files = [f for f in files if f.stem.endswith(key)]
        recs[r["cell_id"]] = read_json(files[0]) if files else None
    return cfg, rows, recs


def _data(cfg: dict):
    from ..sweep.cells import dataset_for

    return dataset_for(cfg, 0.0)


# ------------------------------------------------------------------ laziness: pieces
def path_floor(eps: float, d: int, x_scale: float) -> float:
    """lim_{m→∞} of ``path_length_lower_bound`` at the rigorous floor of L̄(0)
    (``initial_loss_lower_bound``: n·l(−cεd√m) ≥ n·cεd√m): c·ε·d/X, c = √(2/π)/4. At fixed
    ε > 0 no width brings the needed mean path length below it."""
    from ..theory.necessary import IBP_GAP_CONSTANT

    return IBP_GAP_CONSTANT * eps * d / x_scale


def gram_norm0(X, y, eps: float, m: int, seed: int) -> float:
    """‖H(0)‖₂ (= λmax, H is PSD) of Eq. 6's Gram at the cell's initialization
    (``paper.model.init_params(seed, m, d)``, the one its run started from)."""
    from ..paper.gram import gram_matrix
    from ..paper.model import init_params

    W0, a = init_params(seed, m, np.shape(X)[1])
    H = gram_matrix(W0, a, X, y, eps)
    return float(np.linalg.eigvalsh((H + H.T) / 2)[-1])


def laziness_cells(directory) -> tuple[dict, list[dict]]:
    """(config, one row per finished cell): width, eps, seed, reached (L̄(T) < κ, not diverged),
    the measures of ``MEASURES`` at the run's end (T_κ when reached), L̄(0), the path bound at
    L̄(0), λmax(H(0)) and the epochs run."""
    from ..theory.formulas import input_scale
    from ..theory.necessary import path_length_lower_bound

    cfg, rows, recs = _load(directory)
    kappa = float(cfg["train"]["stop"]["kappa"])
    ds = _data(cfg)
    X, y = np.asarray(ds.X, float), np.asarray(ds.y, float)
    n, d = X.shape
    out = []
    for r in rows:
        rec = recs.get(r["cell_id"]) or {}
        s = rec.get("series", {})
        m, eps, seed = int(r["width"]), float(r["eps"]), int(r["seed"])
        div = bool(r.get("diverged"))
        loss0 = float(s["loss"][0]) if s.get("loss") else math.nan
        h0 = gram_norm0(X, y, eps, m, seed)
        gc = float(s["gram_change"][-1]) if s.get("gram_change") else math.nan
        xs = input_scale(X, eps)
        out.append({"width": m, "eps": eps, "seed": seed, "diverged": div,
                    "reached": (not div) and float(r["final_loss"]) < kappa,
                    "move": float(r["max_weight_change"]), "path": float(r["mean_path_length_final"]),
                    "flip": float(r["flip_fraction_final"]), "drift": gc / h0, "loss0": loss0,
                    "bound": path_length_lower_bound(loss0, kappa, n, xs, m) if np.isfinite(loss0) else math.nan,
                    "floor": path_floor(eps, d, xs), "lambda_max0": h0, "epochs": int(r["epochs_run"]),
                    "lr": float(r["lr"])})
    return cfg, out


def lazy_verdict(slope: Interval, standard: Interval | None = None) -> str:
    """How a measure scales with m, from its log–log slope's 95% interval, against standard
    training's slope under the same protocol (``standard``, ε = 0): lazy (NTK) training's
    movement shrinks like m^{−1/2}. Two slopes differ only when their intervals are disjoint."""
    if not slope.finite:
        return "undecided (fewer than three widths reached κ)"
    if slope.lo > 0:
        return "not lazy: grows with m"
    if slope.hi >= 0:
        return "not lazy: no decrease with m (the interval contains 0)"
    if standard is None or not standard.finite:
        return "shrinks with m (no standard-training slope to compare)"
    if slope.lo > standard.hi:
        return "not lazy at standard training's rate: shrinks significantly slower (disjoint intervals)"
    if slope.hi < standard.lo:
        return "shrinks faster than standard training (disjoint intervals)"
    return "lazy like standard training (the intervals overlap)"


def width_slope(cells, eps, key, min_width=0) -> Interval:
    """The exponent s of ``key`` ∝ m^s over the reached cells at ``eps`` with width ≥ ``min_width``
    (least squares on logs, t interval); NaN with fewer than three widths."""
    pts = [(c["width"], c[key]) for c in cells if c["eps"] == eps and c["reached"] and c["width"] >= min_width
           and np.isfinite(c[key]) and c[key] > 0]
    if len({w for w, _ in pts}) < 3:
        return Interval(math.nan, math.nan, math.nan, len(pts))
    w, v = np.array(pts, float).T
    return slope_interval(np.log(w), np.log(v))


def _fmt_slope(iv: Interval) -> str:
    if not np.isfinite(iv.value):
        return "—"
    return iv.fmt(2) if iv.finite else f"{iv.value:.2f} (no interval)"


def laziness_section(directory) -> list[str]:
    """The Markdown section: is IBP training lazy at fixed ε > 0?"""
    cfg, cells = laziness_cells(directory)
    t, kappa = cfg["train"], float(cfg["train"]["stop"]["kappa"])
    ds = _data(cfg)
    n, d = np.shape(ds.X)
    widths = sorted({c["width"] for c in cells})
    eps_all = sorted({c["eps"] for c in cells})
    seeds = sorted({c["seed"] for c in cells})
    lam = max(c["lambda_max0"] for c in cells)
    data = cfg["data"]
    out = ["## Is IBP training lazy at fixed ε > 0?", "",
           f"- protocol: `{data['source']}`, {n} training images, d = {d} (pool {data.get('pool', 1)}, scale "
           f"{data.get('scale', 1.0):g}, raw pixels); full-batch GD on the summed certified loss L̄ at lr = "
           f"{t['lr']:g}, stopped at T_κ, the first epoch with L̄ < κ = {kappa:.4g} (every training point "
           f"certified), budget {t['epochs']} epochs (gradient-flow time {t['epochs'] * t['lr']:g}); widths "
           f"{', '.join(map(str, widths))}; {len(seeds)} seeds; ε ∈ {{{', '.join(f'{e:g}' for e in eps_all)}}}",
           f"- step size: lr·λmax(H(0)) ≤ {t['lr'] * lam:.3g} over every cell (λmax(H(0)) ≤ {lam:.3g}, Eq. 6 at "
           "each cell's initialization): lr ≤ 1/λmax(H(0))" if t["lr"] * lam <= 1 else
           f"- step size: **lr·λmax(H(0)) reaches {t['lr'] * lam:.3g} > 1** (λmax(H(0)) up to {lam:.3g})",
           "- measures at T_κ (the run's end): max_r ‖w_r − w_r(0)‖₂; the mean path length (1/m)Σ_r Σ_k ‖w_r(k+1) − "
           "w_r(k)‖ (GD's polyline); the flip fraction; ‖H(T_κ) − H(0)‖₂/‖H(0)‖₂. Slopes: least squares of log "
           "measure on log m over the cells that reached κ (each seed a point), t interval (df = points − 2). "
           "Reached fractions: Clopper–Pearson.", "",
           "| ε | m | reached κ | T_κ (epochs, mean) | max‖Δw_r‖ | mean path | path bound at L̄(0) | flip fraction "
           "| Gram drift |", "|---|---|---|---|---|---|---|---|---|"]
    for e in eps_all:
        for w in widths:
            mine = [c for c in cells if c["eps"] == e and c["width"] == w]
            ok = [c for c in mine if c["reached"]]
            k = rate(len(ok), len(mine))

            def mean(key, ok=ok):
                return mean_interval([c[key] for c in ok]).fmt(3) if ok else "—"

            ep = f"{np.mean([c['epochs'] for c in ok]):.0f}" if ok else "—"
            out.append(f"| {e:g} | {w} | {k.fmt()} | {ep} | {mean('move')} | {mean('path')} | {mean('bound')} | "
                       f"{mean('flip')} | {mean('drift')} |")
    out += ["", "Slopes in log m (95% t intervals) over every width, and over m ≥ 1,000:", "",
            "| ε | " + " | ".join(lbl for _, lbl in MEASURES) + " | verdict on max‖Δw_r‖ | path floor c·ε·d/X |",
            "|---|" + "---|" * (len(MEASURES) + 2)]
    slopes = {}
    for e in eps_all:
        row = []
        for key, _ in MEASURES:
            s_all, s_big = width_slope(cells, e, key), width_slope(cells, e, key, min_width=1000)
            slopes[(e, key)] = s_all
            row.append(f"{_fmt_slope(s_all)}; ≥1,000: {_fmt_slope(s_big)}")
        floor = next(c["floor"] for c in cells if c["eps"] == e)
        verdict = "the baseline" if e == 0 else lazy_verdict(slopes[(e, "move")], slopes.get((0.0, "move")))
        out.append(f"| {e:g} | " + " | ".join(row) + f" | {verdict} | {floor:.3g} |")
    ok = [c for c in cells if c["reached"]]
    above = sum(c["path"] >= c["bound"] * (1 - 1e-9) for c in ok)
    tot = rate(sum(c["reached"] for c in cells), len(cells))
    out += ["", f"- runs reaching κ within the budget: {tot.fmt()}; per ε: " + "; ".join(
        f"ε = {e:g}: {rate(sum(c['reached'] for c in cells if c['eps'] == e), sum(c['eps'] == e for c in cells)).fmt()}"
        for e in eps_all),
        f"- the necessary bound (theory.path_length_lower_bound at each run's L̄(0)) holds in {above}/{len(ok)} runs "
        "that reached κ (a theorem: any path to L̄ < κ is at least this long)"]
    out += ["", answer_sentence(cells, slopes, eps_all), ""]
    return out


def answer_sentence(cells, slopes, eps_all) -> str:
    """The one-sentence answer at the largest ε > 0, beside standard training (ε = 0)."""
    pos = [e for e in eps_all if e > 0]
    if not pos:
        return "**Answer:** no ε > 0 in this sweep."
    e = max(pos)
    s, s0 = slopes[(e, "move")], slopes.get((0.0, "move"))
    g, g0 = slopes[(e, "drift")], slopes.get((0.0, "drift"))
    big = max(c["width"] for c in cells if c["eps"] == e)
    paths = [c["path"] for c in cells if c["eps"] == e and c["width"] == big and c["reached"]]
    floor = next(c["floor"] for c in cells if c["eps"] == e)
    lazy = lazy_verdict(s, s0)
    word = "No" if lazy.startswith("not lazy") else ("Yes" if lazy.startswith(("lazy", "shrinks faster")) else
                                                     "Undecided")
    big_s, big_s0 = width_slope(cells, e, "move", min_width=1000), width_slope(cells, 0.0, "move", min_width=1000)
    base = f" (standard training, ε = 0: {_fmt_slope(s0)})" if s0 is not None else ""
    if np.isfinite(big_s.value):
        base += f"; over m ≥ 1,000 s = {_fmt_slope(big_s)} (standard: {_fmt_slope(big_s0)})"
    drift = (f"; the Gram drift ‖H(T_κ) − H(0)‖/‖H(0)‖ scales like m^{_fmt_slope(g)}"
             + (f" (standard: m^{_fmt_slope(g0)})" if g0 is not None else ""))
    path = (f"; at m = {big} the mean path length is {mean_interval(paths).fmt(3)}, and no width can bring it "
            f"below the width-free floor {floor:.3g} (theory.path_length_lower_bound)" if paths else "")
    return (f"**Answer — is IBP training lazy at fixed ε > 0? {word}:** at ε = {e:g}, max_r ‖Δw_r‖ at T_κ scales "
            f"like m^s with s = {_fmt_slope(s)}{base} — {lazy}{drift}{path}.")


# ------------------------------------------------------------------ λ0 collapse: pieces
def predicted_eps(X) -> float:
    """ε* = mean_i ‖x_i‖₂ / E‖w‖₁, E‖w‖₁ = d·√(2/π) (w ~ N(0, I_d)): where the IBP gap ε‖w‖₁
    reaches the typical |wᵀx| ≈ ‖x‖₂."""
    X = np.asarray(X, float)
    return float(np.mean(np.linalg.norm(X, axis=1)) / (X.shape[1] * math.sqrt(2 / math.pi)))


def _ratios(X, neurons: int = INIT_NEURONS, seed: int = 0) -> np.ndarray:
    """t_ir = w_rᵀx_i/‖w_r‖₁ for ``neurons`` draws w_r ~ N(0, I_d): (n, neurons). Neuron r can
    help sample i (y_i a_r = +1) exactly when t_ir > ε, and hurts it (y_i a_r = −1) when t_ir > −ε."""
    X = np.asarray(X, float)
    W = np.random.default_rng(seed).standard_normal((neurons, X.shape[1]))
    return (X @ W.T) / np.abs(W).sum(axis=1)[None, :]


def init_fractions(X, eps_grid, neurons: int = INIT_NEURONS, seed: int = 0) -> dict:
    """{ε: (helping Interval, hurting Interval)} at initialization: P(wᵀx − ε‖w‖₁ > 0) and
    P(wᵀx + ε‖w‖₁ > 0) over w ~ N(0, I_d) and the rows of X (neither depends on a or y: a
    fixes only which of the two a pair is), each the mean over neurons of the per-neuron
    fraction of samples with a t interval (neurons are i.i.d.)."""
    t = _ratios(X, neurons, seed)
    return {float(e): (mean_interval((t > e).mean(axis=0)), mean_interval((t > -e).mean(axis=0)))
            for e in eps_grid}


def help_half(X, neurons: int = INIT_NEURONS, seed: int = 0, boots: int = BOOTSTRAP) -> Interval:
    """ε_½ of the helping fraction: the ε with P(t > ε) = P(t > 0)/2, i.e. the median of the
    positive ratios t_ir (``_ratios``), exact for the draw; the 95% interval is the percentile
    bootstrap over images and neurons resampled together."""
    t = _ratios(X, neurons, seed)
    value = float(np.median(t[t > 0]))
    rng = np.random.default_rng(seed + 1)
    n, k = t.shape
    bs = []
    for _ in range(boots):
        s = t[rng.integers(0, n, n)][:, rng.integers(0, k, k)]
        bs.append(np.median(s[s > 0]))
    lo, hi = np.percentile(bs, [2.5, 97.5])
    return Interval(value, float(lo), float(hi), n)


def first_crossing(eps, values, level: float) -> float:
    """The first ε at which the piecewise-linear curve ``values``(eps) reaches ``level`` from
    the side of its first value (NaN when it never does on the grid)."""
    e, v = np.asarray(eps, float), np.asarray(values, float)
    order = np.argsort(e)
    e, v = e[order], v[order]
    ok = np.isfinite(v)
    e, v = e[ok], v[ok]
    if v.size == 0:
        return math.nan
    up = v[0] < level
    for i in range(1, len(v)):
        if (v[i] >= level) if up else (v[i] <= level):
            a, b = v[i - 1], v[i]
            return float(e[i - 1] + (level - a) / (b - a) * (e[i] - e[i - 1])) if b != a else float(e[i])
    return math.nan


def half_crossing(eps, value, lo, hi) -> Interval:
    """Where a decreasing curve with pointwise 95% intervals falls to half its ε = 0 value: the
    crossing of the value, its interval from the crossings of the lower and upper curves
    (NaN ends where a curve does not cross on the grid)."""
    e = np.asarray(eps, float)
    v, lo, hi = (np.asarray(z, float) for z in (value, lo, hi))
    half = v[np.argmin(e)] / 2
    return Interval(first_crossing(e, v, half), first_crossing(e, lo, half), first_crossing(e, hi, half), len(e))


def _dead_half(rows) -> tuple[Interval, int]:
    """The ε at which the trained net's dead fraction reaches 1/2, per seed, with a t interval
    over seeds (only seeds whose curve crosses on the grid; n = those), and the number of seeds."""
    per = []
    for s in sorted({int(r["seed"]) for r in rows}):
        mine = [r for r in rows if int(r["seed"]) == s and not r.get("diverged")]
        per.append(first_crossing([r["eps"] for r in mine], [r["dead_fraction_final"] for r in mine], 0.5))
    got = [p for p in per if np.isfinite(p)]
    iv = mean_interval(got) if got else Interval(math.nan, math.nan, math.nan, 0)
    return Interval(iv.value, iv.lo, iv.hi, len(got)), len(per)


def _copy_name(cfg: dict) -> str:
    d = cfg["data"]
    parts = [f"pool {d.get('pool', 1)}" if d.get("pool", 1) > 1 else "", f"×{d.get('scale', 1.0):g}"
             if d.get("scale", 1.0) != 1.0 else ""]
    t = cfg["train"]
    proto = f"warm-up {t['eps_warmup']:g}+{t['eps_ramp']:g}" if t.get("eps_warmup") or t.get("eps_ramp") else "tuned"
    return (", ".join(p for p in parts if p) or "raw") + f" ({proto})"


def copy_curves(directory) -> dict:
    """One copy's stored curves: name, ε*, d, ε grid, λ0 rows, the cells' rows, init fractions."""
    cfg, rows, _ = _load(directory)
    ds = _data(cfg)
    X = np.asarray(ds.X, float)
    l0 = read_table(Path(directory) / "lambda0.csv") if (Path(directory) / "lambda0.csv").exists() else []
    grid = sorted({float(r["eps"]) for r in rows})
    return {"name": _copy_name(cfg), "cfg": cfg, "eps_star": predicted_eps(X), "d": X.shape[1], "X": X,
            "grid": grid, "lambda0": sorted(l0, key=lambda r: r["eps"]), "rows": rows,
            "init": init_fractions(X, grid)}


def _cell_stat(rows, e, key) -> Interval:
    """Mean over seeds with its t interval, clipped to [0, 1] (a fraction)."""
    v = [r[key] for r in rows if r["eps"] == e and not r.get("diverged")]
    if not v:
        return Interval(math.nan, math.nan, math.nan, 0)
    iv = mean_interval(v)
    return Interval(iv.value, max(iv.lo, 0.0), min(iv.hi, 1.0), iv.n) if iv.finite else iv


def _frac(iv: Interval) -> str:
    """A fraction with its interval, three significant digits (small fractions stay readable)."""
    if not np.isfinite(iv.value):
        return "—"
    if not iv.finite:
        return f"{iv.value:.3g} (n = {iv.n}, no interval)"
    if iv.lo == iv.hi:  # every draw agrees (e.g. no neuron helps after training): no spread to show
        return f"{iv.value:.3g} (all {iv.n} equal)"
    near = 1.0 - min(iv.value, 1.0)  # near 1, three digits would print 1 [1, 1]: as many as 1 − v needs
    g = f".{min(8, 2 + max(0, math.ceil(-math.log10(near))) if near > 0 else 8)}g" if iv.value > 0.99 else ".3g"
    return f"{iv.value:{g}} [{max(iv.lo, 0.0):{g}}, {min(iv.hi, 1.0):{g}}]"


def _dead_rate(rows, e):
    """The dead fraction pooled over seeds: a count of neurons (Clopper–Pearson)."""
    mine = [r for r in rows if r["eps"] == e and not r.get("diverged")]
    return pooled_rate([r["dead_fraction_final"] for r in mine], [int(r["width"]) for r in mine]) if mine else None


def _lambda_text(r) -> str:
    if r is None:
        return "—"
    if r["ci_high"] - r["ci_low"] <= 1e-9 * abs(r["lambda_0"]):  # ε = 0: the closed form (its control variate is exact)
        return f"{r['lambda_0']:.4g} (closed form)"
    return f"{r['lambda_0']:.4g} [{r['ci_low']:.4g}, {r['ci_high']:.4g}]"


def _copy_lines(label: str, c: dict) -> tuple[list[str], dict]:
    rows, grid, n = c["rows"], c["grid"], int(c["rows"][0]["n_train"])
    lam = {float(r["eps"]): r for r in c["lambda0"]}
    out = [f"### `{label}`: {c['name']}, d = {c['d']}, ε* = ‖x‖₂/E‖w‖₁ = {c['eps_star']:.4g}", "",
           "| ε | ε/ε* | λ0 [95% CI] | helping at init | hurting at init | dead after training (neurons pooled, CP) "
           "| certified training error (pooled, CP) | helping after training (seed mean, t) |",
           "|---|---|---|---|---|---|---|---|"]
    for e in grid:
        h, u = c["init"][e]
        certs = [r["final_certified_error"] for r in rows if r["eps"] == e and not r.get("diverged")]
        cert = pooled_rate(certs, n).fmt() if certs else "—"
        dead = _dead_rate(rows, e)
        out.append(f"| {e:g} | {e / c['eps_star']:.2f} | {_lambda_text(lam.get(e))} | {_frac(h)} | {_frac(u)} | "
                   f"{dead.fmt() if dead else '—'} | {cert} | {_frac(_cell_stat(rows, e, 'helpful_fraction_final'))} |")
    hh = help_half(c["X"])
    l0 = c["lambda0"]
    lh = half_crossing([r["eps"] for r in l0], [r["lambda_0"] for r in l0], [r["ci_low"] for r in l0],
                       [r["ci_high"] for r in l0]) if l0 else Interval(math.nan, math.nan, math.nan, 0)
    dh, seeds = _dead_half(rows)
    star = c["eps_star"]
    div = sum(bool(r.get("diverged")) for r in rows)
    tail = ""
    if l0 and l0[0]["eps"] == 0 and len(l0) > 1:
        last, first = l0[-1], l0[0]["lambda_0"]
        tail = (f"- at the grid's largest ε = {last['eps']:g} ({last['eps'] / star:.2g}ε*): λ0 = "
                f"{last['lambda_0'] / first:.3g} [{last['ci_low'] / first:.3g}, {last['ci_high'] / first:.3g}] × "
                f"λ0(0), helping fraction at init {_frac(c['init'][grid[-1]][0])}")
    out += ["", f"- half points: helping fraction ε_½ = {hh.fmt(4)} (bootstrap over images × neurons), "
            f"prediction Φ⁻¹(3/4)·ε* = {HALF_RATIO * star:.4f} → "
            f"{'inside' if hh.finite and hh.lo <= HALF_RATIO * star <= hh.hi else 'outside'} the interval; "
            f"λ0 at half its ε = 0 value: ε = {_fmt_iv(lh)} (from the pointwise CIs); trained dead fraction "
            f"reaches 1/2 at ε = {_fmt_iv(dh)} ({dh.n}/{seeds} seeds cross on the grid, t over seeds)",
            f"- in units of ε*: helping {hh.value / star:.3g} [{hh.lo / star:.3g}, {hh.hi / star:.3g}], λ0 "
            f"{_ratio(lh, star)}, dead {_ratio(dh, star)}; diverged runs: {div}", *([tail] if tail else []), ""]
    return out, {"help": hh, "lambda0": lh, "dead": dh, "star": star}


def _fmt_iv(iv: Interval) -> str:
    if not np.isfinite(iv.value):
        return "— (not reached on the grid)"
    lo = f"{iv.lo:.4g}" if np.isfinite(iv.lo) else "?"
    hi = f"{iv.hi:.4g}" if np.isfinite(iv.hi) else "> grid"
    return f"{iv.value:.4g} [{lo}, {hi}]"


def _ratio(iv: Interval, star: float) -> str:
    return _fmt_iv(Interval(iv.value / star, iv.lo / star, iv.hi / star, iv.n)).replace(" (not reached on the grid)",
                                                                                       "")


def _common(ivs) -> bool | None:
    """Whether finite intervals share a point (None with fewer than two)."""
    ivs = [i for i in ivs if i.finite]
    if len(ivs) < 2:
        return None
    return max(i.lo for i in ivs) <= min(i.hi for i in ivs)


def lambda0_section(dirs: dict) -> list[str]:
    """The Markdown section on the λ0 collapse over the copies ``dirs`` (label → directory)."""
    curves = {k: copy_curves(v) for k, v in dirs.items()}
    out = ["## The λ0 collapse at large ε: λ0, helping neurons and dead nets", "",
           "wang2022's conjecture: " + "\"We conjecture that this is partly because λ0 can be very small with a "
           "large perturbation\". A neuron with y_i a_r = +1 can raise the IBP margin u̲_i only where w_rᵀx_i > "
           "ε‖w_r‖₁ (helping); one with y_i a_r = −1 lowers it wherever w_rᵀx_i > −ε‖w_r‖₁ (hurting). Per copy of "
           "the data: λ0 = λmin(H∞) with its 95% CI (Monte Carlo, jackknife), the helping / hurting fractions at "
           f"initialization ({INIT_NEURONS} neurons × the training images, t over neurons), and after training "
           "the dead fraction (neurons inactive on every image; mean over seeds, t) and the certified training "
           "error (pooled counts, Clopper–Pearson). Predicted transition ε* = mean‖x_i‖₂/E‖w‖₁; the helping "
           f"fraction ≈ P(Z > ε/ε*) halves at {HALF_RATIO:.3f}·ε*. A rescaled copy is an exact check of the "
           "initialization quantities: with x → s·x the IBP pre-activation and its gradient at ε are s times the raw "
           "ones at ε/s, so H∞(s, ε) = s²·H∞(raw, ε/s) and the λ0 and helping curves coincide in ε/ε*; the trained "
           "nets differ (their margins, and so the logistic loss, scale with s). Pooling changes d and the data.", ""]
    for label, c in curves.items():
        t = c["cfg"]["train"]
        lrs = t["lr"] if isinstance(t["lr"], list) else [t["lr"]]
        out.append(f"- `{label}`: {c['name']}; {c['rows'][0]['n_train']:.0f} images, width "
                   f"{', '.join(str(w) for w in sorted({int(r['width']) for r in c['rows']}))}, "
                   f"{len({int(r['seed']) for r in c['rows']})} seeds; {t['optimizer']} at lr ∈ "
                   f"{{{', '.join(f'{v:g}' for v in lrs)}}} (lowest final training loss kept), {t['epochs']} epochs, "
                   f"stop {t['stop'] or 'none'}")
    out.append("")
    halves = {}
    for label, c in curves.items():
        lines, halves[label] = _copy_lines(label, c)
        out += lines
    out += ["### Do they move together, and does the transition sit at ε ≈ ε*?", "",
            "| copy | ε* | helping ε_½ / ε* | λ0 ε_½ / ε* | dead ε_½ / ε* |", "|---|---|---|---|---|"]
    for label, h in halves.items():
        s = h["star"]
        out.append(f"| `{label}` | {s:.4g} | {_ratio(h['help'], s)} | {_ratio(h['lambda0'], s)} | "
                   f"{_ratio(h['dead'], s)} |")
    keys = {lb: (float(c["cfg"]["data"].get("scale", 1.0)), int(c["cfg"]["data"].get("pool", 1)))
            for lb, c in curves.items()}
    protocols = {lb: c["name"].split("(")[-1].rstrip(")") for lb, c in curves.items()}
    out += ["", _together(halves, keys, protocols), ""]
    return out


def _scaled(iv: Interval, s: float) -> Interval:
    return Interval(iv.value / s, iv.lo / s, iv.hi / s, iv.n)


def _verdict_line(name: str, ivs: list, what: str) -> str:
    fin = [i for i in ivs if np.isfinite(i.value)]
    rng = (_fmt_iv(fin[0]) if len(fin) == 1 else
           f"{min(i.value for i in fin):.3g}–{max(i.value for i in fin):.3g}" if fin else "—")
    verdict = {True: "consistent with one multiple of ε* (the intervals share a point)",
               False: "not one multiple of ε* (some intervals are disjoint)",
               None: "undecided (fewer than two copies with an interval)"}[_common(ivs)]
    return f"{name}: ε_½/ε* = {rng} over {len(fin)} {what}, {verdict}".replace(" 1 copies", " 1 copy")


def _together(halves: dict, keys: dict, protocols: dict) -> str:
    """The verdict. The initialization quantities (helping fraction, λ0) are judged over the
    distinct data copies (``keys``: label → (scale, pool); the first label of each), the dead
    fraction over the copies of each training protocol (``protocols``: label → name): does each
    half point stay one multiple of ε* (its intervals of ε_½/ε* share a point), and in which
    order do the three fall per copy?"""
    firsts = {}
    for label, k in keys.items():
        firsts.setdefault(k, label)
    data = list(firsts.values())
    parts = [_verdict_line(name, [_scaled(halves[lb][key], halves[lb]["star"]) for lb in data],
                           f"data copies ({', '.join(f'`{lb}`' for lb in data)})")
             for key, name in (("help", "helping fraction"), ("lambda0", "λ0"))]
    for proto in dict.fromkeys(protocols.values()):
        mine = [lb for lb in halves if protocols[lb] == proto]
        parts.append(_verdict_line(f"dead fraction under {proto}", [_scaled(halves[lb]["dead"], halves[lb]["star"])
                                                                     for lb in mine], f"copies"))
    order = []
    for label, h in halves.items():
        got = sorted((h[k].value, name) for k, name in (("help", "helping"), ("lambda0", "λ0"), ("dead", "dead"))
                     if np.isfinite(h[k].value))
        order.append(f"`{label}` " + " < ".join(f"{name} {v / h['star']:.2g}ε*" for v, name in got))
    scaled = [lb for lb, k in keys.items() if k[1] == 1 and k[0] != 1.0]
    note = (f" The rescaled copies ({', '.join(f'`{lb}`' for lb in scaled)}) repeat the raw copy's initialization "
            "quantities exactly in ε/ε* (the invariance above; same draws), so they test the code, not the data; "
            "only pooling gives independent data." if scaled else "")
    allv = [h[k].value / h["star"] for lb, h in halves.items() for k in ("help", "lambda0", "dead")
            if np.isfinite(h[k].value)]
    span = (f" Every half point of every copy lies within {min(allv):.2g}–{max(allv):.2g}·ε*: the transition sits at "
            "the scale ε* = ‖x‖₂/E‖w‖₁ as the data are rescaled and pooled, but only the helping fraction at a "
            "fixed multiple of it." if allv else "")
    return ("**Answer:** " + "; ".join(parts) + ". Order of the half points per copy: " + "; ".join(order) + "."
            + span + note)
