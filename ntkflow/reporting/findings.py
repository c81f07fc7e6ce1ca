"""The findings page: the paper's Figure 1 claims answered from stored sweep results.

``findings({"tuned": DIR, "fixed-lr": DIR2, ...})`` reads each sweep directory's config and
results table (never retrains) and writes Markdown: the protocol of each directory, each of
Wang et al.'s three Fig. 1 claims with our measurement and a verdict per protocol, the trend
of the certified error with width at ε = 0.001, where IBP training kills the net (every
neuron inactive on every sample, f ≡ 0), and what the initialization already says (L̄(0) of
Lemma 7, the fraction of neurons whose IBP bound can help, λ0).

Uncertainty (``_core.stats``): an error rate is a count, so a cell's training error is the
pooled count over its seeds with a Clopper–Pearson interval (0/2,400 → [0, 0.15%]); a held-out
error carries the binomial error of the one test set all seeds share (n_test images, however
many seeds) joined with the spread over seeds; any other quantity is a mean over seeds with a
t interval (df = seeds − 1). A difference is real only when its 95% interval excludes 0: for
errors the hull of the difference of the two count intervals (MOVER) and Welch's interval over
seeds. Diverged cells are counted, never averaged.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import scipy.stats

from .._core.errors import NtkflowError
from .._core.stats import (Interval, Rate, chance_interval, difference, hull, interval_difference, mean_interval,
                          paired_difference, pooled_rate, rate, slope_interval)
from .._io import read_json
from .advibp import advibp_section
from .phase import is_phase_sweep, phase_section
from .structure import is_lambda0_sweep, is_laziness_sweep, lambda0_section, laziness_section
from ..sweep.store import read_table

__all__ = ["findings", "Protocol", "claim_lines", "methods_section", "initialization_section"]

#: Methods beyond the paper's pair: a directory with any of them is a methods comparison.
_PAPER_METHODS = {"standard", "ibp"}
_ADVIBP_METHODS = {"advibp", "advibp_fixed"}

CLAIMS = (
    "IBP training error is above standard training error at every width",
    "at ε = 0.04 the IBP error does not reach 0 as the width grows",
    "at larger ε IBP training ends near random guessing (error ≈ 50%)",
)

#: wang2022, Sec. 5, on Fig. 1b (quoted for Claim 3) and its conjecture (quoted for the dead nets).
RANDOM_GUESS = ("\"when ε is even larger, IBP training falls into a local minimum of random guess (with errors "
                "close to 50%)\"")
CONJECTURE = ("\"We conjecture that this is partly because λ0 can be very small with a large perturbation\"")
#: wang2022's thesis, §3.1.0.2 "Imbalanced ReLU Activation States".
THESIS_DEAD = ("\"In IBP training, inactive neurons have tighter bounds than active and unstable ones [...] and "
               "thus the optimization tends to push the neurons to be inactive\" (thesis §3.1, \"Imbalanced ReLU "
               "Activation States\")")

#: Keys that are counts over the training set, and over the held-out set.
_TRAIN_COUNTS = ("final_train_error", "final_certified_error", "final_pgd_error", "zero_output_fraction_final")
_TEST_COUNTS = ("final_test_error", "final_test_certified_error")

#: A reading of "≈ 50%": the whole 95% interval within 10 points of one half.
NEAR_HALF = 0.1


def _kind(key: str) -> str | None:
    """"train" / "test" / "neurons" for a key that is a count (of samples, of neurons), else None."""
    if key.startswith(_TEST_COUNTS):
        return "test"
    if key.startswith(_TRAIN_COUNTS):
        return "train"
    return "neurons" if key == "dead_fraction_final" else None


def held_out(values, n_test: int) -> Interval:
    """A held-out error over seeds: the mean, with the hull of the Clopper–Pearson interval of
    the mean count on the one test set of ``n_test`` images (its sampling error does not shrink
    with more seeds) and the t interval over seeds."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    cp = rate(int(round(v.mean() * n_test)), n_test)
    h = hull(Interval(float(v.mean()), cp.lo, cp.hi, int(n_test)), mean_interval(v))
    return Interval(h.value, max(h.lo, 0.0), min(h.hi, 1.0), h.n)


class Protocol:
    """One sweep directory: its label, resolved config and results rows."""

    def __init__(self, label: str, directory):
        self.label, self.dir = label, Path(directory)
        cfg = read_json(self.dir / "config.json") if (self.dir / "config.json").exists() else None
        if not isinstance(cfg, dict) or "train" not in cfg:
            raise NtkflowError(f"{label}: {self.dir} has no readable config.json (not a sweep directory)")
        self.cfg = cfg
        self.rows = read_table(self.dir / "results.csv")
        if not self.rows:
            raise NtkflowError(f"{label}: {self.dir / 'results.csv'} has no finished cells")
        self.ok = [r for r in self.rows if not r.get("diverged", False)]
        self.seeds = sorted({int(r["seed"]) for r in self.rows})

    @property
    def n_train(self) -> int:
        return int(self.rows[0].get("n_train") or self.cfg["data"]["n_train"])

    @property
    def n_test(self) -> int:
        return int(self.cfg["data"].get("n_test") or 0)

    def select(self, method, width=None, eps=None) -> list[dict]:
        return [r for r in self.ok if r["method"] == method and (width is None or r["width"] == width)
                and (eps is None or r["eps"] == eps)]

    def values(self, key, method, width=None, eps=None) -> np.ndarray:
        return np.asarray([r.get(key, np.nan) for r in self.select(method, width, eps)], float)

    def stat(self, key, method, width=None, eps=None) -> Interval:
        """The cell group's estimate of ``key`` with its 95% interval (module docstring): a
        ``Rate`` for a count over the training set or the neurons, ``held_out`` for a test error,
        else the mean over seeds with its t interval."""
        rows = self.select(method, width, eps)
        v = np.asarray([r.get(key, np.nan) for r in rows], float)
        kind = _kind(key)
        if kind == "test":
            return held_out(v, self.n_test)
        if kind and v.size and np.all(np.isfinite(v)):
            sizes = [self.n_train if kind == "train" else int(r["width"]) for r in rows]
            try:
                return pooled_rate(v, sizes)
            except ValueError:  # not a count of these sizes (a rate averaged upstream): a mean
                pass
        return mean_interval(v)

    def diff(self, key_a, a: tuple, key_b=None, b: tuple = ()) -> Interval:
        """(key_a at cell group a) − (key_b at b), a and b as (method, width, eps): for counts the
        hull of the MOVER interval of the two count intervals and Welch's interval over seeds."""
        key_b = key_b or key_a
        ia, ib = self.stat(key_a, *a), self.stat(key_b, *b)
        welch = difference(self.values(key_a, *a), self.values(key_b, *b))
        if _kind(key_a) is None:
            return welch
        return hull(interval_difference(ia, ib), welch)

    def widths(self, method="ibp", eps=None):
        return sorted({int(r["width"]) for r in self.ok if r["method"] == method and (eps is None or r["eps"] == eps)})

    def eps_values(self):
        return sorted({r["eps"] for r in self.ok if r["method"] == "ibp"})

    def steps_per_epoch(self) -> int:
        b = self.cfg["train"].get("batch_size") or 0
        return math.ceil(self.n_train / b) if b else 1


def _pct(iv: Interval) -> str:
    """A rate as "v% [lo, hi]%" (no count prefix: for tables)."""
    return Interval.fmt(iv, 3, percent=True)


def _mean(iv: Interval, digits: int = 3) -> str:
    """A mean over seeds: "v [lo, hi]", or "v at every seed" when the seeds agree exactly (a
    zero-width interval says no spread was seen, not that the value is known exactly)."""
    if iv.finite and iv.lo == iv.hi:
        return f"{iv.value:.{digits}f} at every seed ({iv.n} seeds)"
    return iv.fmt(digits)


def _sig(iv: Interval) -> str:
    """An estimate in three significant digits, "v [lo, hi]" (for quantities spanning decades)."""
    if not np.isfinite(iv.value):
        return "—"
    return f"{iv.value:.3g} [{iv.lo:.3g}, {iv.hi:.3g}]" if iv.finite else f"{iv.value:.3g} (n = {iv.n}, no interval)"


def _protocol_section(p: Protocol) -> list[str]:
    t, d = p.cfg["train"], p.cfg["data"]
    lr = t["lr"] if isinstance(t["lr"], list) else [t["lr"]]
    stop = t.get("stop") or {}
    env = sorted({(r.get("backend", "?"), r.get("jax_version", "?")) for r in p.rows})
    conv = [r.get("converged", False) for r in p.ok]
    return [
        f"### `{p.label}` — `{p.dir}`",
        f"- data: {d['source']}, n_train = {d['n_train'] or 'all'}, n_test = {d['n_test']}, "
        f"normalize = {d['normalize']}; {t['optimizer']}, batch {t['batch_size'] or 'full'}, dtype {t['dtype']}",
        f"- seeds per cell: {len(p.seeds)} ({', '.join(map(str, p.seeds))})",
        f"- learning rate: {'grid ' + str(lr) + ', chosen per cell by `' + t.get('select', 'final_train_loss') + '`' if len(lr) > 1 else lr[0]}"
        f" (training quantities only)",
        f"- epochs: budget {t['epochs']} ({p.steps_per_epoch()} steps each), "
        + (f"stop on a plateau ({', '.join(f'{k} = {v}' for k, v in stop.items())})"
           if stop else "no stopping rule (the whole budget)")
        + (f"; ε warm-up {t['eps_warmup']} + ramp {t['eps_ramp']} epochs" if t.get("eps_warmup") or t.get("eps_ramp")
           else ""),
        f"- tie rule for errors: `{p.cfg['track'].get('tie', 'wrong')}` (a tie f(x) = 0 counts as an error); "
        f"cells: {len(p.rows)} ({len(p.rows) - len(p.ok)} diverged), converged by the rule: "
        f"{sum(conv)}/{len(conv)}; computed on {', '.join(f'{b} (jax {j})' for b, j in env)}",
        "",
    ]


def _table(p: Protocol) -> list[str]:
    eps = p.eps_values()
    head = "| width | standard (clean) | " + " | ".join(f"IBP ε={e:g} certified / clean" for e in eps) + " |"
    out = [head, "|" + "---|" * (2 + len(eps))]
    for w in sorted({int(r["width"]) for r in p.ok}):
        s = p.stat("final_train_error", "standard", w)
        cells = [_pct(s) if s.n else "—"]
        for e in eps:
            c, k = p.stat("final_certified_error", "ibp", w, e), p.stat("final_train_error", "ibp", w, e)
            cells.append("—" if c.n == 0 else f"{_pct(c)} / {_pct(k)}")
        out.append(f"| {w:,} | " + " | ".join(cells) + " |")
    return out + [""]


def _claim1(p: Protocol) -> str:
    pairs = [(w, e) for e in p.eps_values() for w in p.widths("ibp", e) if w in p.widths("standard")]
    if not pairs:
        return "no (width, ε) pair with both methods"
    d = {(w, e): p.diff("final_certified_error", ("ibp", w, e), "final_train_error", ("standard", w)) for w, e in pairs}
    above = sum(1 for v in d.values() if v.sign() > 0)
    zero = [(w, e) for w, e in pairs if p.stat("final_certified_error", "ibp", w, e).value == 0
            and p.stat("final_train_error", "standard", w).value == 0]
    return (f"IBP certified error above standard error (95% interval of the difference above 0) in {above}/{len(pairs)} "
            f"(width, ε) pairs; {len(zero)} pairs are 0 = 0"
            + (f" (ε ≤ {max(e for _, e in zero):g})" if zero else ""))


def budget_bound(p: Protocol, eps_min=0.04) -> str | None:
    """A note when no IBP cell at ε ≥ ``eps_min`` converged by the stopping rule: the numbers
    are where the epoch budget ended, not where training would have. None otherwise."""
    rows = [r for r in p.ok if r["method"] == "ibp" and r["eps"] >= eps_min]
    if not rows or any(r.get("converged", False) for r in rows):
        return None
    budget = p.cfg["train"]["epochs"]
    used = sum(1 for r in rows if int(r.get("epochs_run", budget)) >= budget)
    grid = p.cfg["train"]["lr"] if isinstance(p.cfg["train"]["lr"], list) else [p.cfg["train"]["lr"]]
    top = sum(1 for r in rows if r.get("lr") == max(grid))
    return (f"budget-bound: none of the {len(rows)} IBP cells at ε ≥ {eps_min:g} converged "
            f"({used}/{len(rows)} ran the whole {budget}-epoch budget"
            + (f", {top}/{len(rows)} at the grid's largest lr {max(grid):g}" if len(grid) > 1 else "")
            + "), so these are errors at the end of the budget, not at convergence")


def _claim2(p: Protocol) -> str:
    ws = p.widths("ibp", 0.04)
    if not ws:
        return "no cell at ε = 0.04"
    big, small = p.stat("final_certified_error", "ibp", ws[-1], 0.04), p.stat("final_certified_error", "ibp", ws[0], 0.04)
    clean = p.stat("final_train_error", "ibp", ws[-1], 0.04)
    verdict = "does not reach 0" if big.sign() > 0 else "0 is inside the interval"
    note = budget_bound(p)
    return (f"certified error {small.fmt()} at m = {ws[0]:,} → {big.fmt()} at m = {ws[-1]:,} ({verdict}); "
            f"clean error of the same nets at m = {ws[-1]:,}: {clean.fmt()}" + (f" — {note}" if note else ""))


#: Claim 3's readings: (name, clean key, certified key, what a tie f(x) = 0 counts as).
READINGS = (
    ("tie = error", "final_train_error", "final_certified_error", "an error (our default)"),
    ("coin flip", "final_train_error_tie_half", "final_certified_error_tie_half", "half an error"),
    ("constant classifier", "final_train_error_tie_positive", "final_certified_error_tie_positive",
     "the class +1, as a net with a bias would predict"),
)


def _near_half(iv: Interval) -> bool:
    return iv.finite and 0.5 - NEAR_HALF <= iv.lo and iv.hi <= 0.5 + NEAR_HALF


def claim3_readings(p: Protocol, e: float) -> list[tuple[str, list, bool]]:
    """For each reading of a tie: (name, [(width, clean, certified)], near 50% at every width)."""
    out = []
    for name, kc, kv, _ in READINGS:
        per = [(w, p.stat(kc, "ibp", w, e), p.stat(kv, "ibp", w, e)) for w in p.widths("ibp", e)]
        per = [t for t in per if t[1].n and np.isfinite(t[1].value)]
        out.append((name, per, bool(per) and all(_near_half(c) and _near_half(v) for _, c, v in per)))
    return out


def _claim3(p: Protocol) -> str:
    eps = p.eps_values()
    if not eps:
        return "no IBP cell"
    e = eps[-1]
    parts = []
    for name, per, near in claim3_readings(p, e):
        if not per:
            continue
        parts.append(f"{name}: " + ", ".join(f"m = {w:,} clean {_pct(c)}, certified {_pct(v)}" for w, c, v in per)
                     + (" — near 50%" if near else " — not near 50%"))
    zero = "; ".join(f"m = {w:,}: {_pct(p.stat('zero_output_fraction_final', 'ibp', w, e))}" for w in p.widths("ibp", e))
    support = [name for name, _, near in claim3_readings(p, e) if near]
    return (f"largest ε = {e:g}, f(x) = 0 on {zero} of the samples. " + "; ".join(parts)
            + f". Supported under: {', '.join(support) if support else 'no reading'}")


def _trend(p: Protocol, eps=0.001) -> str:
    ws = p.widths("ibp", eps)
    if len(ws) < 2:
        return f"fewer than two widths at ε = {eps:g}"
    lo_c, hi_c = ("ibp", ws[0], eps), ("ibp", ws[-1], eps)
    d = p.diff("final_certified_error", hi_c, b=lo_c)
    word = {1: "rises", -1: "falls", 0: "is flat within its interval"}[d.sign()]
    lrs = {w: sorted({r["lr"] for r in p.select("ibp", w, eps)}) for w in ws}
    tlo, thi = p.stat("final_test_certified_error", *lo_c), p.stat("final_test_certified_error", *hi_c)
    held = ""
    if tlo.n and np.isfinite(tlo.value):
        td = interval_difference(thi, tlo)
        tword = {1: "rises", -1: "falls", 0: "is flat within its interval"}[td.sign()]
        held = (f"; on the {p.n_test} held-out images it {tword}: {_pct(tlo)} → {_pct(thi)} "
                f"(difference {_pct(td)}, test-set binomial error included)")
    return (f"certified training error {word} with width: {p.stat('final_certified_error', *lo_c).fmt()} at m = {ws[0]:,}"
            f" → {p.stat('final_certified_error', *hi_c).fmt()} at m = {ws[-1]:,} (difference {_pct(d)}){held}; "
            "chosen lr per width: " + ", ".join(f"{w:,}: {'/'.join(f'{v:g}' for v in lrs[w])}" for w in ws))


def _grid_deaths(p: Protocol, e: float, w: int) -> tuple[int, int]:
    """(lr runs with f = 0 on most samples, lr runs) over the grid runs of the cells (ε, w)."""
    from ..sweep.store import Store

    dead = total = 0
    for _, rec in Store(p.dir).records(p.cfg):
        c = rec["cell"]
        if c["method"] == "ibp" and c["eps"] == e and c["width"] == w:
            for g in rec.get("lr_grid") or []:
                total += 1
                dead += (g.get("zero_output_fraction") or 0) > 0.5
    return dead, total


def _dead(p: Protocol) -> list[str]:
    out = []
    for e in p.eps_values():
        for w in p.widths("ibp", e):
            z = p.stat("zero_output_fraction_final", "ibp", w, e)
            if z.value > 0.5:
                dn = p.stat("dead_fraction_final", "ibp", w, e)
                ep = sorted({int(r.get("epochs_run", 0)) for r in p.select("ibp", w, e)})
                k, K = _grid_deaths(p, e, w)
                out.append(f"ε = {e:g}, m = {w:,}: f(x) = 0 on {_pct(z)} of the samples, {_pct(dn)} of the neurons "
                           f"dead, after {ep[0]}–{ep[-1]} epochs" + (f"; dead at {k}/{K} runs of the lr grid" if K else ""))
    if not out:
        out = ["no (ε, m) cell where IBP training zeroed the output on most samples"]
    alive = [(e, w) for e in p.eps_values() if e >= 0.04 for w in p.widths("ibp", e)
             if p.stat("zero_output_fraction_final", "ibp", w, e).value <= 0.5]
    if alive:
        out.append("alive at ε ≥ 0.04 (f = 0 on at most half the samples): "
                   + ", ".join(f"ε = {e:g}, m = {w:,} (f = 0 on {_pct(p.stat('zero_output_fraction_final', 'ibp', w, e))},"
                               f" neurons dead {_pct(p.stat('dead_fraction_final', 'ibp', w, e))}, certified error "
                               f"{_pct(p.stat('final_certified_error', 'ibp', w, e))})" for e, w in alive))
    return out


def claim_lines(p: Protocol) -> list[str]:
    """The three claims and the ε = 0.001 trend, one line each, for one protocol."""
    return [f"- claim {i} ({c}): {fn(p)}" for i, (c, fn) in enumerate(zip(CLAIMS, (_claim1, _claim2, _claim3)), 1)] \
        + [f"- trend at ε = 0.001: {_trend(p)}"]


# ----------------------------------------------------------------------------- initialization and training time
def _dataset(p: Protocol):
    from ..data import load

    d = p.cfg["data"]
    return load(d["source"], n=d["n_train"] or None, seed=d.get("seed", 0), normalize=d.get("normalize", False),
                n_test=d.get("n_test", 0), d=d.get("d", 784), mnist_dir=d.get("mnist_dir") or None)


def _time_table(ps: list, X, y, lam, e0: float, seeds: int) -> list[str]:
    """Per width at ε = e0: L̄(0)/n over initialization seeds, its first-order value, Eq. 10's
    time, and per protocol the gradient-flow time lr × steps and the final L̄/n."""
    from ..paper.initialization import initial_loss, margin_shift
    from ..theory.formulas import time_needed

    n, dim = X.shape
    out = ["| width | L̄(0)/n | √m·ε·E‖w‖₁/2 | Eq. 10 time | " + " | ".join(
        f"`{p.label}`: lr × steps; final L̄/n" for p in ps) + " |", "|" + "---|" * (4 + len(ps))]
    for w in sorted({w for p in ps for w in p.widths("ibp", e0)}):
        l0 = initial_loss(X, y, e0, w, seeds=range(seeds))
        cells = []
        for p in ps:
            rows = p.select("ibp", w, e0)
            if not rows:
                cells.append("—")
                continue
            t = sorted({float(r["lr"]) * int(r["epochs_run"]) * p.steps_per_epoch() for r in rows})
            fin = mean_interval([r["final_loss"] / p.n_train for r in rows])
            conv = sum(bool(r.get("converged")) for r in rows)
            cells.append(f"{t[0]:.3g}" + (f"–{t[-1]:.3g}" if t[-1] != t[0] else "") + f"; {_sig(fin)} "
                         f"({conv}/{len(rows)} converged)")
        out.append(f"| {w:,} | {l0.fmt(3)} | {margin_shift(w, dim, e0):.3g} | "
                   f"{time_needed(l0.value * n, lam.value):.3g} | " + " | ".join(cells) + " |")
    return out


def _mechanism_table(ps: list, X, lam: dict, samples: int) -> list[str]:
    """Per ε: the fractions of neurons whose IBP bound can help / hurts at initialization, λ0,
    and each protocol's final dead fraction at m = 2,000."""
    from ..paper.initialization import helpful_probability, hurting_probability

    out = ["| ε | P(wᵀx − ε‖w‖₁ > 0) (can help) | P(wᵀx + ε‖w‖₁ > 0) (hurts) | λ0 | " + " | ".join(
        f"`{p.label}`: dead neurons at the end (m = 2,000)" for p in ps) + " |", "|" + "---|" * (4 + len(ps))]
    for e, lo in lam.items():
        h, u = helpful_probability(X, e, samples=samples), hurting_probability(X, e, samples=samples)
        dead = [_pct(p.stat("dead_fraction_final", "ibp", 2000, e)) if p.select("ibp", 2000, e) else "—" for p in ps]
        out.append(f"| {e:g} | {h.fmt(4)} | {u.fmt(4)} | {lo.value:.3g} [{lo.ci[0]:.3g}, {lo.ci[1]:.3g}] | "
                   + " | ".join(dead) + " |")
    return out


def initialization_section(ps: list, *, eps_grid=(0.001, 0.01, 0.02, 0.04), seeds: int = 10,
                           samples: int = 20_000) -> list[str]:
    """What the initialization says, on the data of the first two-layer protocol: L̄(0)/n per
    width at ε = eps_grid[0] (Lemma 7; Eq. 10's time to κ grows with it) beside each protocol's
    gradient-flow time lr × steps and final L̄/n; and per ε the fraction of neurons whose IBP
    bound can help, λ0 and the final dead fraction (the paper's conjecture and its mechanism)."""
    from ..paper.hinf import lambda_0

    if not ps:
        return []
    ds = _dataset(ps[0])
    X, y = np.asarray(ds.X, float), np.asarray(ds.y, float)
    lam = {e: lambda_0(X, y, e, samples=samples, seed=0, warn=False) for e in eps_grid}
    e0 = eps_grid[0]
    return (["## What the initialization already says", "",
             f"Computed on the training set of `{ps[0].label}` (n = {X.shape[0]}, d = {X.shape[1]}) at the paper's "
             f"initialization; L̄(0) over {seeds} initialization seeds (t interval), the neuron fractions over "
             f"{samples:,} neurons (t interval over neurons), λ0 with its jackknife interval (`paper.hinf.lambda_0`, "
             f"{samples:,} neurons).", "",
             f"**Training time (Lemma 7, Eq. 10).** At ε = {e0:g} the IBP loss at initialization grows with the width "
             "(first order: √m·ε·E‖w‖₁/2, E‖w‖₁ = d·√(2/π)), and Eq. 10's sufficient time to reach κ, "
             "(4/λ0)(log(L̄(0)/κ) + L̄(0)), grows with it. Eq. 10 is a sufficient time, far above the times at which "
             "runs reach the plateau; what carries over is its growth with L̄(0): a fixed budget of flow time "
             "leaves wider nets further from converged. Each protocol's gradient-flow time is lr × steps (the SGD "
             f"step is a flow step of the summed L̄); λ0 = {lam[e0].value:.3g} [{lam[e0].ci[0]:.3g}, "
             f"{lam[e0].ci[1]:.3g}] at ε = {e0:g}.", ""]
            + _time_table(ps, X, y, lam[e0], e0, seeds)
            + ["", "**Why IBP training kills the net at large ε.** A neuron with y·a = +1 can raise the IBP margin "
               "only where wᵀx − ε‖w‖₁ > 0; one with y·a = −1 lowers it wherever wᵀx + ε‖w‖₁ > 0 "
               "(`paper.initialization`; by w → −w the second probability is one minus the first). "
               f"The paper's conjecture: {CONJECTURE}. The thesis names the pull towards inactive neurons: "
               f"{THESIS_DEAD}.", ""]
            + _mechanism_table(ps, X, lam, samples) + [""])


# ----------------------------------------------------------------------------- methods and deep nets
def _series_values(p: Protocol, method: str, key: str, width=None, index=None) -> dict:
    """{seed: value}: the time-average over epochs ≥ 1 of a recorded series (``index`` None) or
    its entry ``index``, per seed of (method, width)."""
    from ..sweep.store import Store

    out = {}
    for _, rec in Store(p.dir).records(p.cfg):
        c = rec["cell"]
        if c["method"] != method or (width is not None and c["width"] != width) or key not in rec["series"]:
            continue
        v = np.asarray(rec["series"][key], float)
        v = v[1:] if index is None else v[index:index + 1] if index >= 0 else v[index:][:1]
        if np.isfinite(v).any():
            out[(c["seed"], c["width"])] = float(np.nanmean(v))
    return out


def _series_mean(p: Protocol, method: str, key: str, width=None) -> Interval:
    return mean_interval(list(_series_values(p, method, key, width).values()))


def _series_point(p: Protocol, method: str, key: str, index: int, width) -> Interval:
    return mean_interval(list(_series_values(p, method, key, width, index).values()))


def chance_error(p: Protocol) -> float:
    """The error of a random guess on the sweep's data: 1 − 1/classes."""
    d = p.cfg["data"]
    classes = 10 if d["source"] in ("mnist10", "cifar10") or d.get("classes") == "all" else 2
    return 1 - 1 / classes


def _verdict(a: Interval, b: Interval, better: str, d: Interval | None = None, chance: Interval | None = None) -> str:
    """Verdict on a − b < 0 from the difference's 95% interval ``d`` (default: MOVER of a, b);
    both inside the ``chance`` band → indistinguishable from chance, whatever the difference."""
    d = d if d is not None else interval_difference(a, b)
    if not np.isfinite(d.value):
        return "not measured"
    if min(a.n, b.n) < 2 and not isinstance(a, Rate):
        return f"one seed, no interval (difference {d.value:+.3f})"
    if chance is not None and all(chance.lo <= v.value <= chance.hi for v in (a, b)):
        return (f"indistinguishable from chance (both errors in the chance band [{chance.lo:.3f}, 1] of a random "
                f"guess; difference {d.fmt(3)})")
    if not d.finite:
        return f"no interval (difference {d.value:+.3f})"
    if d.hi < 0:
        return f"supported ({better}: difference {d.fmt(3)})"
    if d.lo > 0:
        return f"contradicted (difference {d.fmt(3)})"
    return f"not distinguishable (difference {d.fmt(3)}, interval contains 0)"


#: A rate of the Gram drift in the width is claimed only from this many widths, every drift below 1.
RATE_MIN_WIDTHS = 4


def drift_rate(widths, drifts: dict) -> tuple[Interval, str | None]:
    """The log-log slope of the relative Gram drift in the width over every seed's point, with
    its t interval, and the reason no rate is claimed (None when one is: ≥ ``RATE_MIN_WIDTHS``
    widths, every drift < 1, an interval)."""
    pts = [(w, v) for w in widths for v in drifts.get(w, []) if np.isfinite(v) and v > 0]
    slope = slope_interval(np.log([w for w, _ in pts]), np.log([v for _, v in pts])) if len(pts) >= 2 \
        else Interval(math.nan, math.nan, math.nan, 0)
    ws = sorted({w for w, _ in pts})
    big = [w for w in ws if np.mean(drifts[w]) >= 1]
    if len(ws) < RATE_MIN_WIDTHS:
        why = f"{len(ws)} widths (a rate needs ≥ {RATE_MIN_WIDTHS})"
    elif big:
        why = f"drift ≥ 1 at m = {', '.join(f'{w:,}' for w in big)} (not lazy)"
    elif not slope.finite:
        why = "no interval on the slope"
    else:
        why = None
    if why and big and len(ws) < RATE_MIN_WIDTHS:
        why += f" and drift ≥ 1 at m = {', '.join(f'{w:,}' for w in big)} (not lazy)"
    return slope, why


def _ntk_lines(p: Protocol, methods) -> list[str]:
    """λmin(H(0)) and the relative Gram drift at the end per width, with the drift's log-log
    slope in the width (the two-layer proof needs ‖H(t) − H(0)‖ to fall like m^-1/2)."""
    out = []
    for mth in methods:
        ws = sorted({int(r["width"]) for r in p.ok if r["method"] == mth})
        lam = {w: _series_point(p, mth, "lambda_min", 0, w) for w in ws}
        raw = {w: list(_series_values(p, mth, "gram_change_rel", w, -1).values()) for w in ws}
        drift = {w: mean_interval(raw[w]) for w in ws}
        if not any(v.n for v in drift.values()):
            continue
        slope, why = drift_rate(ws, raw)
        rate_txt = (f" — log-log slope in the width {slope.fmt(2)}: " +
                    (f"no rate claimed ({why})" if why else f"drift falls like m^{slope.value:.2f}")
                    if np.isfinite(slope.value) else "")
        out.append(f"- `{mth}`: λmin(H(0)) " + ", ".join(f"{w:,}: {_mean(lam[w])}" for w in ws)
                   + "; drift ‖H(T) − H(0)‖/‖H(0)‖ " + ", ".join(f"{w:,}: {_mean(drift[w])}" for w in ws) + rate_txt)
    return (["Empirical certified-margin NTK (the Gram of the method's margins on the training set):"] + out + [""]
            if out else [])


LEE2021 = ("lee2021 claims that IBP has \"a more favorable (smooth) loss landscape than other linear relaxation-based "
           "methods\", blames \"the relaxed gradient approximation\" of those methods (CROWN-IBP at β = 1, CAP) and "
           "proposes a method with both \"tightness and smoothness\"; it does not claim that tighter bounds are always "
           "less smooth. Its primary measure is the loss variation along the gradient direction (zeroth-order "
           "smoothness); the l2 and cosine distances of consecutive gradients come second")


def _paired_series(p: Protocol, a: str, b: str, key: str, width) -> tuple[int, int, int]:
    """Checkpoints where series[key] of ``a`` is above / below / not distinguishable from ``b``'s,
    paired by seed (same initialization) with a t interval per checkpoint."""
    from ..sweep.store import Store

    per = {}
    for _, rec in Store(p.dir).records(p.cfg):
        c = rec["cell"]
        if c["method"] in (a, b) and c["width"] == width and key in rec["series"]:
            per[(c["method"], c["seed"])] = np.asarray(rec["series"][key], float)
    seeds = sorted({s for m, s in per if (a, s) in per and (b, s) in per})
    if not seeds:
        return 0, 0, 0
    T = min(len(per[(a, s)]) for s in seeds)
    signs = []
    for t in range(1, T):
        d = paired_difference([per[(a, s)][t] for s in seeds], [per[(b, s)][t] for s in seeds])
        if np.isfinite(d.value):
            signs.append(d.sign())
    return signs.count(1), signs.count(-1), signs.count(0)


def _matched_loss(p: Protocol, a: str, b: str, width) -> Interval | str:
    """Mean cosine distance of ``a`` minus ``b`` over the checkpoints whose training loss lies in
    the range both methods' runs visit (per seed; Welch over seeds): smoothness at matched loss."""
    from ..sweep.store import Store

    pts = {a: {}, b: {}}
    for _, rec in Store(p.dir).records(p.cfg):
        c, s = rec["cell"], rec["series"]
        if c["method"] in pts and c["width"] == width and "grad_cos_distance" in s:
            pts[c["method"]][c["seed"]] = (np.asarray(s["loss"], float)[1:], np.asarray(s["grad_cos_distance"], float)[1:])
    if not pts[a] or not pts[b]:
        return Interval(math.nan, math.nan, math.nan, 0)
    span = {m: (min(np.nanmin(v[0]) for v in pts[m].values()), max(np.nanmax(v[0]) for v in pts[m].values()))
            for m in pts}
    lo, hi = max(v[0] for v in span.values()), min(v[1] for v in span.values())
    if lo > hi:
        return ("not comparable: the losses visited after epoch 0 do not overlap ("
                + ", ".join(f"{m} {v[0]:.3g}–{v[1]:.3g}" for m, v in span.items()) + ")")
    means = {m: [float(np.nanmean(cd[(lv >= lo) & (lv <= hi)])) for lv, cd in pts[m].values()
                 if np.isfinite(cd[(lv >= lo) & (lv <= hi)]).any()] for m in pts}
    return difference(means[a], means[b])


def _lee2021_lines(p: Protocol, methods) -> list[str]:
    out = [LEE2021 + ".", ""]
    beta = (p.cfg["train"].get("beta_start"), p.cfg["train"].get("beta_end"))
    if "crown_ibp" in methods:
        out += [f"On the two-layer net CROWN-IBP at β = 1 is CROWN (its only intermediate bounds are the first layer's, "
                f"where IBP is exact); this sweep's `crown_ibp` runs β from {beta[0]:g} to {beta[1]:g}, so it ends as IBP "
                "training.", ""]
    for w in sorted({int(r["width"]) for r in p.ok}):
        cos = {m: _series_mean(p, m, "grad_cos_distance", w) for m in methods}
        var = {m: _series_mean(p, m, "loss_variation", w) for m in methods}
        loss = {m: p.stat("final_loss", m, w) for m in methods}
        have = [m for m in methods if cos[m].n and np.isfinite(loss[m].value)]
        out.append(f"Width {w:,}, per method: time-averaged cosine distance of consecutive gradients; loss variation "
                   "(lee2021's measure); final training loss:")
        out += [f"- {m}: {_mean(cos[m])}; {_mean(var[m]) if var[m].n else 'not stored'}; {_mean(loss[m], 1)}"
                for m in have]
        if len(have) >= 3:
            rho, pv = scipy.stats.spearmanr([cos[m].value for m in have], [loss[m].value for m in have])
            out.append(f"- the cosine distance tracks distance from convergence: Spearman ρ = {rho:.2f} against the final "
                       f"loss over {len(have)} methods (p = {pv:.2g}), so an end-of-run average compares runs at "
                       "different losses")
        if {"crown", "ibp"} <= set(methods):
            above, below, same = _paired_series(p, "crown", "ibp", "grad_cos_distance", w)
            lv = _paired_series(p, "crown", "ibp", "loss_variation", w)
            out.append(f"- CROWN vs IBP along the whole run (paired by seed, per checkpoint): cosine distance higher "
                       f"with CROWN at {above}, lower at {below}, not distinguishable at {same} checkpoints"
                       + (f"; loss variation higher at {lv[0]}, lower at {lv[1]}, not distinguishable at {lv[2]}"
                          if sum(lv) else ""))
            ml = _matched_loss(p, "crown", "ibp", w)
            out.append("- CROWN − IBP cosine distance at matched training loss: " + (ml if isinstance(ml, str)
                                                                                     else ml.fmt(3)))
        missing = [m for m in have if not var[m].n]
        if missing:
            out.append(f"- loss variation not stored for {', '.join(missing)} (their cells were stored without it): "
                       f"lee2021's primary comparison needs these cells rerun (`ntkflow sweep` of this config into "
                       f"a fresh directory) with `loss_variation` recorded at every checkpoint")
        out.append("")
    return out


def methods_section(p: Protocol) -> list[str]:
    """The training-methods comparison of one sweep directory: a table of final errors per
    (ε, width, method) and the papers' claims, each with its verdict."""
    eps_values = sorted({r["eps"] for r in p.ok if r["eps"] > 0})
    methods = sorted({r["method"] for r in p.ok})
    cols = (("final_train_error", "clean"), ("final_pgd_error", "PGD"), ("final_certified_error_ibp", "IBP"),
            ("final_certified_error_crown", "CROWN"))
    chance = chance_error(p)
    out = []
    for e in eps_values:
        out += [f"Final training errors at ε = {e:g} (pooled over {len(p.seeds)} seeds, Clopper–Pearson 95%):", "",
                "| width | method | " + " | ".join(c for _, c in cols) + " |", "|" + "---|" * (2 + len(cols))]
        for w in sorted({int(r["width"]) for r in p.ok if r["eps"] == e}):
            for mth in methods:
                out.append(f"| {w:,} | {mth} | " + " | ".join(_pct(p.stat(k, mth, w, e)) for k, _ in cols) + " |")
        out.append("")
        claims = (("PGD training lowers the PGD error vs standard training", "final_pgd_error", "pgd", "standard"),
                  ("IBP training lowers the IBP-certified error vs standard training", "final_certified_error_ibp",
                   "ibp", "standard"),
                  ("fan2021: AdvIBP lowers the IBP-verified error vs its fixed-κ baseline (Eq. 5)",
                   "final_certified_error_ibp", "advibp", "advibp_fixed"),
                  ("CROWN-IBP training vs IBP training, CROWN-certified error", "final_certified_error_crown",
                   "crown_ibp", "ibp"))
        for w in sorted({int(r["width"]) for r in p.ok if r["eps"] == e}):
            out.append(f"At ε = {e:g}, width {w:,}:")
            for text, key, a, b in claims:
                if a in methods and b in methods:
                    ia, ib = p.stat(key, a, w, e), p.stat(key, b, w, e)
                    band = chance_interval(chance, ia.n) if ia.n else None
                    out.append(f"- {text}: " + _verdict(ia, ib, "lower", p.diff(key, (a, w, e), b=(b, w, e)), band))
            out.append("")
    out += _ntk_lines(p, methods)
    if {"crown", "crown_ibp"} & set(methods):
        out += _lee2021_lines(p, methods)
    if "advibp" in methods:
        inc, cos = _series_mean(p, "advibp", "ibp_increase"), _series_mean(p, "advibp", "cos_adv_ibp")
        out += [f"AdvIBP's approximate projection: the step raised L̄_IBP to first order (⟨g_final, g_IBP⟩ < 0) on "
                f"{_mean(inc)} of its steps (warm-up steps excluded); cos(g_adv, g_IBP) averaged {_mean(cos)}.", ""]
    return out


def _figure1_lines(ps: list, init: bool, init_kw: dict | None) -> list[str]:
    """The Figure 1 part of the page: protocols, the three claims, the trend, dead nets, the
    initialization and the tables of the paper-pair sweeps ``ps``."""
    lines = ["## Protocols", ""]
    for p in ps:
        lines += _protocol_section(p)
    lines += ["## The paper's three Fig. 1 claims", ""]
    for i, (claim, fn) in enumerate(zip(CLAIMS, (_claim1, _claim2, _claim3)), start=1):
        lines += [f"**Claim {i}: {claim}.**", ""]
        if i == 3:
            lines += [f"The paper's words: {RANDOM_GUESS}. A dead net (f ≡ 0) is a constant; how its ties are "
                      "scored decides the number. Readings: " + "; ".join(f"{n} (a tie counts as {t})"
                                                                          for n, _, _, t in READINGS) + ".", ""]
        lines += [f"- `{p.label}`: {fn(p)}" for p in ps] + [""]
    lines += ["## Trend with width at ε = 0.001", ""] + [f"- `{p.label}`: {_trend(p)}" for p in ps] + [""]
    lines += ["## Dead nets (f ≡ 0) after IBP training", ""]
    for p in ps:
        lines += [f"- `{p.label}`: " + "; ".join(_dead(p))]
    lines += [""]
    if init and ps:
        lines += initialization_section(ps, **(init_kw or {}))
    lines += ["## Tables (final training errors, pooled over seeds, Clopper–Pearson 95%)", ""]
    for p in ps:
        lines += [f"### `{p.label}`", ""] + _table(p)
    return lines


def findings(dirs: dict, command: str | None = None, preface: str | None = None, *, init: bool = True,
             init_kw: dict | None = None) -> str:
    """The findings page (Markdown) for the labelled sweep directories ``dirs``; ``preface``
    (Markdown, e.g. a written summary of what the numbers below mean) goes after the title.
    ``init``: add the initialization section (computed from the data, not stored; ``init_kw``
    goes to ``initialization_section``)."""
    if not dirs:
        raise NtkflowError("findings: give at least one LABEL=DIR")
    allp = [Protocol(k, v) for k, v in dirs.items()]
    # the theorem's structure (ntkflow.reporting.structure): sweeps stopped at κ with the Gram
    # tracked (laziness), IBP sweeps with λ0 per ε (the λ0 collapse) and sweeps over the data
    # axes n, d (the phase diagram, ntkflow.reporting.phase) get their own sections
    ph = [p for p in allp if is_phase_sweep(p.cfg)]
    lz = [p for p in allp if p not in ph and is_laziness_sweep(p.cfg)]
    l0 = [p for p in allp if p not in ph and p not in lz and is_lambda0_sweep(p.cfg)]
    rest = [p for p in allp if p not in lz and p not in l0 and p not in ph]
    ps = [p for p in rest if not {r["method"] for r in p.rows} - _PAPER_METHODS
          and p.cfg.get("model", {}).get("net", "two_layer") == "two_layer"]
    ap = [p for p in rest if p not in ps and {r["method"] for r in p.rows} <= _ADVIBP_METHODS]
    mp = [p for p in rest if p not in ps and p not in ap]
    seeds = ", ".join(f"`{p.label}` {len(p.seeds)}" for p in allp)
    lines = ["# Findings: Figure 1 of Wang et al. (2022) under stated protocols", "",
             "Generated from stored sweep results by "
             f"`{command or 'ntkflow findings ' + ' '.join(f'{p.label}={p.dir}' for p in ps)}`. "
             f"Seeds per cell: {seeds}. Errors are counts: a cell's error is pooled over its seeds with a "
             "Clopper–Pearson 95% interval; held-out errors carry the binomial error of the one test set; other "
             "quantities are means over seeds with a t interval (df = seeds − 1). A difference is called real only "
             "when its 95% interval excludes 0. Diverged cells are counted in the protocol lines and left out of "
             "every estimate.", ""]
    if preface:
        lines += [preface.strip(), ""]
    if ps:
        lines += _figure1_lines(ps, init, init_kw)
    if mp:
        lines += ["", "## Training methods side by side, and deep nets", "",
                  "Every method trains the same net from the same initialization through `ntkflow.training.fit`; errors on "
                  "the training set; PGD counts a sample broken if the clean point or any iterate is misclassified; "
                  "a sound bound gives clean ≤ PGD ≤ CROWN ≤ IBP (CROWN is the tighter bound on this net).", ""]
        for p in mp:
            net = p.cfg.get("model", {}).get("net", "two_layer")
            lines += _protocol_section(p) + ([f"- net: `{net}`, init `{p.cfg['model'].get('init') or 'torch'}`", ""]
                                             if net != "two_layer" else []) + methods_section(p)
    for p in ap:
        # A sweep of AdvIBP and its fixed-κ baseline alone (experiments/advibp.toml) is judged by
        # fan2021's own measure, held out and paired by seed, in its own section.
        lines += [""] + advibp_section(p.dir)
    for p in lz:
        lines += [""] + laziness_section(p.dir)
    if l0:
        lines += [""] + lambda0_section({p.label: p.dir for p in l0})
    for p in ph:
        lines += [""] + phase_section(p.dir, label=p.label)
    return "\n".join(lines)
