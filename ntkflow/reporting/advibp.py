"""AdvIBP against its fixed-κ baseline (fan2021 §4, "Baseline comparison"): the findings
section from a stored sweep directory (``experiments/advibp.toml``), never retraining.

``advibp_section(directory)`` returns Markdown lines. Per (width, ε) group and method:

- the held-out IBP-verified (certified) error — fan2021's measure — pooled over seeds into
  one count with its Clopper–Pearson interval (``pooled_rate``), and its mean over seeds with
  a t interval (df = seeds − 1, ``mean_interval``). The seeds share one test set, so the
  pooled interval treats seed × image as independent draws: it is the interval of this test
  set's error under the protocol, not of the population's;
- the AdvIBP − baseline difference, paired by seed (seed s initializes both methods alike;
  ``paired_difference``), real only when its 95% interval excludes 0 (``Interval.excludes``);
  seeds that all differ by the same amount give no spread and no decision;
- the lr the selection rule chose, the converged counts (stop rule), the branch frequencies
  of Alg. 1 over the joint phase (the ``case_*`` columns of the aux summary), and the FOSC
  threshold c_max against the FOSC the runs measured.

fan2021's claim, "reduces the IBP verified errors by 9.1% to 31.9%", does not say whether
the percentages are points or relative: both readings are judged (``claim_verdict``).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np

from .._core.errors import NtkflowError
from .._core.stats import Interval, mean_interval, paired_difference, pooled_rate
from .._io import read_json
from ..objectives.advibp import CASES
from ..sweep.store import read_table

__all__ = ["advibp_section", "FAN2021_CLAIM", "MEASURED_FOSC", "branch_frequencies", "fosc_range",
           "c_max_check", "claim_verdict", "difference_verdict"]

FAN2021_CLAIM = ("We consider a baseline method that uses the same warm-up strategy in Algorithm 2 but fixes "
                 "the coefficients to κ_adv = 1.0 and κ_IBP = 1.0 (effectively using the weighted sum method). "
                 "As shown in Figure 2, AdvIBP, which automatically adapts the coefficients, reduces the IBP "
                 "verified errors by 9.1% to 31.9% compared with the baseline.")
#: The smallest and largest reduction fan2021 reports (Fig. 2).
CLAIMED_REDUCTION = (0.091, 0.319)
#: The batch-mean FOSC of the FGSM points measured on the two-layer net at ε = 0.003
#: (findings/methods, every recorded epoch of both methods).
MEASURED_FOSC = (0.0014, 0.019)
#: Alg. 1's branches in the joint phase (the warm-up cases excluded).
JOINT_CASES = tuple(c for c in CASES if not c.startswith("warmup"))
METHODS = ("advibp", "advibp_fixed")


# ------------------------------------------------------------------ reading the directory
def _load(directory) -> tuple[dict, list[dict], dict]:
    """(config, results rows of the two methods, cell_id → record) of a sweep directory."""
    d = Path(directory)
    if not (d / "config.json").exists() or not (d / "results.csv").exists():
        raise NtkflowError(f"directory: {d} has no config.json and results.csv (not a sweep directory)")
    cfg = read_json(d / "config.json")
    rows = [r for r in read_table(d / "results.csv") if r["method"] in METHODS]
    if not rows:
        raise NtkflowError(f"directory: {d / 'results.csv'} has no advibp or advibp_fixed cells")
    return cfg, rows, {r["cell_id"]: _record(d, cfg, r) for r in rows}


def _record(d: Path, cfg: dict, row: dict) -> dict | None:
    """The stored record of a results row: cells/<id>-<key>.json, the key of the stored config
    when older records of the same cell lie beside it."""
    files = sorted((d / "cells").glob(f"{row['cell_id']}-*.json"))
    if len(files) > 1:
        from ..sweep.cells import Cell, cell_key

        cell = Cell(int(row["width"]), row["method"], float(row["eps"]), int(row["seed"]))
        files = [f for f in files if f.stem.endswith(cell_key(cfg, cell))]
    return read_json(files[0]) if files else None


def _n_test(cfg: dict) -> int:
    n = int(cfg["data"].get("n_test", 0))
    if n <= 0:
        raise NtkflowError("directory: its config has data.n_test = 0 (the test-set size is needed for the counts)")
    return n


# ------------------------------------------------------------------ pieces (pure)
def branch_frequencies(records) -> dict[str, float]:
    """Fraction of the joint-phase steps in each of Alg. 1's branches, pooled over runs.

    Each record's ``case_<name>`` series holds, per recorded epoch, the fraction of that
    epoch's steps in each case; epochs have equal step counts, so summing them over records
    and runs and normalizing over the joint cases gives the step fractions (they sum to 1).
    Only the recorded epochs count: with ``track.every = 1`` that is every epoch."""
    tot = dict.fromkeys(JOINT_CASES, 0.0)
    for rec in records:
        s = (rec or {}).get("series", {})
        for c in JOINT_CASES:
            v = np.asarray(s.get(f"case_{c}", []), float)
            tot[c] += float(np.nansum(v))
    z = sum(tot.values())
    return {c: (v / z if z > 0 else math.nan) for c, v in tot.items()}


def fosc_range(records) -> tuple[float, float]:
    """(min, max) of the recorded batch-mean FOSC over the runs (NaN, NaN without any)."""
    v = [x for rec in records for x in np.asarray((rec or {}).get("series", {}).get("fosc", []), float).ravel()
         if np.isfinite(x)]
    return (float(min(v)), float(max(v))) if v else (math.nan, math.nan)


def c_max_check(c_max: float, lo: float, hi: float) -> tuple[bool, str]:
    """(inside, sentence): whether c_max lies in the measured FOSC range [lo, hi]. Below it the
    adversarial branch (FOSC ≤ c_t ≤ c_max) never fires; above it, it fires whenever the
    moments disagree until c_t has decayed into the range."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return False, f"c_max = {c_max:g}: no FOSC recorded, the threshold cannot be checked"
    if c_max < lo:
        return False, (f"**flagged**: c_max = {c_max:g} is below the measured FOSC range [{lo:.2g}, {hi:.2g}]: "
                       "the adversarial-priority branch can never fire")
    if c_max > hi:
        return False, (f"**flagged**: c_max = {c_max:g} is above the measured FOSC range [{lo:.2g}, {hi:.2g}]: "
                       "every disagreement prioritizes the adversarial gradient until c_t decays")
    return True, f"c_max = {c_max:g} lies inside the measured FOSC range [{lo:.2g}, {hi:.2g}]"


def difference_verdict(d: Interval) -> str:
    """"real (AdvIBP lower/higher)" when the interval excludes 0; "within noise" when it
    contains 0; "undecided" when it has no spread (seeds that all differ alike) or no interval."""
    if not d.finite or d.lo == d.hi:
        return "undecided (no spread over seeds to estimate an interval)" if d.finite else "undecided (no interval)"
    if d.excludes(0.0):
        return "real: AdvIBP " + ("lower" if d.hi < 0 else "higher")
    return "within noise (the interval contains 0)"


def claim_verdict(reduction: Interval, claimed=CLAIMED_REDUCTION) -> str:
    """fan2021's claim against a measured reduction (baseline − AdvIBP, points or relative):
    ``supported`` when the reduction is real (interval above 0) and reaches the smallest
    claimed value (upper end ≥ claimed[0]); ``not reproduced`` when the interval lies below
    the smallest claimed value (the data exclude a reduction that large); ``unknown``
    otherwise (a reduction that large is possible but not shown real)."""
    if not reduction.finite:
        return "unknown (no interval)"
    if reduction.hi < claimed[0]:
        return f"not reproduced (the interval excludes a reduction ≥ {claimed[0]:.3g})"
    if reduction.lo > 0:
        return "supported"
    return "unknown (the interval contains 0 and the claimed reduction)"


# ------------------------------------------------------------------ the section
def _groups(rows):
    return sorted({(int(r["width"]), float(r["eps"])) for r in rows})


def _by_seed(rows, method, width, eps, key) -> dict[int, float]:
    """seed → value of ``key``; a diverged run is NaN (counted apart, never averaged)."""
    return {int(r["seed"]): (math.nan if r.get("diverged") else float(r[key])) for r in rows
            if r["method"] == method and int(r["width"]) == width and float(r["eps"]) == eps}


def _method_line(rows, recs, method, width, eps, n_test) -> str:
    cert = _by_seed(rows, method, width, eps, "final_test_certified_error")
    clean = _by_seed(rows, method, width, eps, "final_test_error")
    ok = [s for s, v in cert.items() if np.isfinite(v)]
    mine = [r for r in rows if r["method"] == method and int(r["width"]) == width and float(r["eps"]) == eps]
    lrs = Counter(float(r["lr"]) for r in mine if not r.get("diverged"))
    conv = sum(bool(r.get("converged")) for r in mine)
    epochs = [int(r["epochs_run"]) for r in mine]
    freq = branch_frequencies([recs[r["cell_id"]] for r in mine])
    shown = ", ".join(f"{c} {v:.3f}" for c, v in freq.items() if np.isfinite(v) and v > 0) or "—"
    return (f"| {method} | {pooled_rate([cert[s] for s in ok], n_test).fmt()} | "
            f"{mean_interval([cert[s] for s in ok]).fmt(3, percent=True)} | "
            f"{pooled_rate([clean[s] for s in ok if np.isfinite(clean[s])], n_test).fmt()} | "
            f"{', '.join(f'{lr:g} ({k})' for lr, k in sorted(lrs.items()))} | {conv}/{len(mine)} "
            f"(epochs {min(epochs)}–{max(epochs)}) | {len(mine) - len(ok)} | {shown} |")


def _conflict_line(recs) -> str:
    """How often Alg. 1 consulted the FOSC test (only when the moments disagree, ⟨m₁, m₂⟩ ≤ 0)
    and the per-run mean cos(g_adv, g_IBP) over the joint phase: how much c_max could matter."""
    f = branch_frequencies(recs)
    used = f["adv_priority"] + f["ibp_priority"]
    cos = [float(np.nanmean(c)) for rec in recs
           if np.any(np.isfinite(c := np.asarray((rec or {}).get("series", {}).get("cos_adv_ibp", []), float)))]
    cos_txt = f"; mean cos(g_adv, g_IBP) per run {min(cos):.2f}–{max(cos):.2f}" if cos else ""
    return (f"- AdvIBP's FOSC test (Alg. 1 line 12, reached only when ⟨m₁, m₂⟩ ≤ 0) decided {used:.3f} of its "
            f"joint steps: c_max can change at most these{cos_txt}")


def _paired(rows, width, eps, key="final_test_certified_error"):
    """Paired (AdvIBP, baseline) values over the seeds where both runs are finite."""
    a, b = (_by_seed(rows, m, width, eps, key) for m in METHODS)
    seeds = sorted(s for s in set(a) & set(b) if np.isfinite(a[s]) and np.isfinite(b[s]))
    return np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])


def _comparison_lines(rows, width, eps) -> list[str]:
    a, b = _paired(rows, width, eps)
    d = paired_difference(a, b)
    absolute = paired_difference(b, a)  # the reduction, in points
    keep = b > 0
    relative = mean_interval((b[keep] - a[keep]) / b[keep]) if keep.any() else Interval(math.nan, math.nan,
                                                                                        math.nan, 0)
    return [f"- AdvIBP − baseline, held-out certified error, paired over {d.n} seeds: "
            f"{d.fmt(3, percent=True)} → **{difference_verdict(d)}**",
            f"- fan2021's reduction read in points (baseline − AdvIBP ≥ 9.1 points): "
            f"{absolute.fmt(3, percent=True)} → {claim_verdict(absolute)}",
            f"- read as relative ((baseline − AdvIBP)/baseline ≥ 9.1%, {int(keep.sum())} seeds with a baseline "
            f"error > 0): {relative.fmt(3, percent=True)} → {claim_verdict(relative)}"]


def _protocol_lines(cfg, rows, recs) -> list[str]:
    t, adv = cfg["train"], cfg["advibp"]
    seeds = sorted({int(r["seed"]) for r in rows})
    lo, hi = fosc_range([recs[r["cell_id"]] for r in rows])
    _, fosc_line = c_max_check(float(adv["c_max"]), lo, hi)
    _, stored_line = c_max_check(float(adv["c_max"]), *MEASURED_FOSC)
    lr = t["lr"] if isinstance(t["lr"], list) else [t["lr"]]
    return [f"- protocol (both methods): warm-up {t['t_nat']:g} clean + {t['t_adv']:g} FGSM epochs at the target ε "
            f"(fan2021 Alg. 2), ε ramp {t['eps_ramp']:g} epochs; lr grid {', '.join(f'{v:g}' for v in lr)}, the run "
            f"with the lowest `{t['select']}` kept (training quantities only); budget {t['epochs']} epochs, stop "
            f"rule {t['stop'] or 'none'}; {len(seeds)} seeds ({', '.join(map(str, seeds))}), paired",
            f"- FOSC threshold: {fosc_line} (this sweep); against the range measured in findings/methods: "
            f"{stored_line.replace('the measured FOSC range', 'it')}; c_t decays to 0 over T′ = {adv['decay']:g} "
            "epochs after the ramp",
            "- judged by the held-out IBP-verified (certified) error (fan2021's measure); pooled intervals: "
            "Clopper–Pearson on seeds × test images (one shared test set); seed means: t, df = seeds − 1"]


def advibp_section(directory) -> list[str]:
    """The Markdown section comparing AdvIBP with its fixed-κ baseline in ``directory``."""
    cfg, rows, recs = _load(directory)
    n_test = _n_test(cfg)
    out = ["## AdvIBP vs its fixed-κ baseline (fan2021)", "",
           f"fan2021 (§4): “{FAN2021_CLAIM}”", "", *_protocol_lines(cfg, rows, recs), ""]
    for width, eps in _groups(rows):
        out += [f"### width {width}, ε = {eps:g} (test set: {n_test} images)", "",
                "| method | held-out certified error (pooled, CP) | seed mean (t) | held-out clean error (pooled) "
                "| chosen lr (seeds) | converged | diverged | joint-phase branches |",
                "|---|---|---|---|---|---|---|---|"]
        out += [_method_line(rows, recs, m, width, eps, n_test) for m in METHODS
                if any(r["method"] == m and int(r["width"]) == width and float(r["eps"]) == eps for r in rows)]
        mine = [recs[r["cell_id"]] for r in rows
                if r["method"] == "advibp" and int(r["width"]) == width and float(r["eps"]) == eps]
        out += [""] + ([_conflict_line(mine)] if mine else []) + (_comparison_lines(rows, width, eps) if all(
            any(r["method"] == m and int(r["width"]) == width and float(r["eps"]) == eps for r in rows)
            for m in METHODS) else ["- only one method in this group: no comparison"]) + [""]
    return out
