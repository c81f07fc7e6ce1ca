"""The findings page: the paper's Figure 1 claims answered from stored sweep results.

``findings({"tuned": DIR, "fixed-lr": DIR2, ...})`` reads each sweep directory's config and
results table (never retrains) and writes Markdown: the protocol of each directory, each of
Wang et al.'s three Fig. 1 claims with our measurement (mean ± standard error over seeds)
and a verdict per protocol, the trend of the certified error with width at ε = 0.001, and
where IBP training kills the net (every neuron inactive on every sample, f ≡ 0).

A difference counts as real when it exceeds twice its standard error (seeds independent);
otherwise the verdict says "within noise". Diverged cells are counted, never averaged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._io import read_json
from .sweep.store import read_table

__all__ = ["findings", "Protocol", "claim_lines", "methods_section"]

#: Methods beyond the paper's pair: a directory with any of them is a methods comparison.
_PAPER_METHODS = {"standard", "ibp"}

CLAIMS = (
    "IBP training error is above standard training error at every width",
    "at ε = 0.04 the IBP error does not reach 0 as the width grows",
    "at larger ε IBP training ends near random guessing (error ≈ 50%)",
)


class Protocol:
    """One sweep directory: its label, resolved config and results rows."""

    def __init__(self, label: str, directory):
        self.label, self.dir = label, Path(directory)
        cfg = read_json(self.dir / "config.json") if (self.dir / "config.json").exists() else None
        if not isinstance(cfg, dict) or "train" not in cfg:
            raise ValueError(f"{label}: {self.dir} has no readable config.json (not a sweep directory)")
        self.cfg = cfg
        self.rows = read_table(self.dir / "results.csv")
        if not self.rows:
            raise ValueError(f"{label}: {self.dir / 'results.csv'} has no finished cells")
        self.ok = [r for r in self.rows if not r.get("diverged", False)]

    def stat(self, key, method, width=None, eps=None):
        """(mean, s.e., number of seeds) of ``key`` over the non-diverged seeds of a cell group."""
        v = [r[key] for r in self.ok if r["method"] == method and (width is None or r["width"] == width)
             and (eps is None or r["eps"] == eps)]
        v = np.asarray(v, float)
        if v.size == 0:
            return (np.nan, np.nan, 0)
        return (float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else np.nan, int(v.size))

    def widths(self, method="ibp", eps=None):
        return sorted({int(r["width"]) for r in self.ok if r["method"] == method and (eps is None or r["eps"] == eps)})

    def eps_values(self):
        return sorted({r["eps"] for r in self.ok if r["method"] == "ibp"})


def _pm(s) -> str:
    mean, se, k = s
    if k == 0 or not np.isfinite(mean):
        return "—"
    return f"{mean:.3f} ± {se:.3f}" if np.isfinite(se) else f"{mean:.3f} (1 seed)"


def _diff(a, b) -> tuple[float, float]:
    """a − b and its standard error (independent seeds; a missing s.e. counts as 0)."""
    return a[0] - b[0], float(np.hypot(np.nan_to_num(a[1]), np.nan_to_num(b[1])))


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
        f"- learning rate: {'grid ' + str(lr) + ', chosen per cell by `' + t.get('select', 'final_train_loss') + '`' if len(lr) > 1 else lr[0]}"
        f" (training quantities only)",
        f"- epochs: budget {t['epochs']}, " + (f"stop on a plateau ({', '.join(f'{k} = {v}' for k, v in stop.items())})"
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
        cells = [_pm(p.stat("final_train_error", "standard", w))]
        for e in eps:
            c, k = p.stat("final_certified_error", "ibp", w, e), p.stat("final_train_error", "ibp", w, e)
            cells.append("—" if c[2] == 0 else f"{_pm(c)} / {_pm(k)}")
        out.append(f"| {w:,} | " + " | ".join(cells) + " |")
    return out + [""]


def _claim1(p: Protocol) -> str:
    pairs = [(w, e) for e in p.eps_values() for w in p.widths("ibp", e) if w in p.widths("standard")]
    if not pairs:
        return "no (width, ε) pair with both methods"
    above = sum(1 for w, e in pairs if (lambda d: d[0] > 2 * d[1])(
        _diff(p.stat("final_certified_error", "ibp", w, e), p.stat("final_train_error", "standard", w))))
    return f"IBP certified error above standard error by > 2 s.e. in {above}/{len(pairs)} (width, ε) pairs"


def _claim2(p: Protocol) -> str:
    ws = p.widths("ibp", 0.04)
    if not ws:
        return "no cell at ε = 0.04"
    big, small = p.stat("final_certified_error", "ibp", ws[-1], 0.04), p.stat("final_certified_error", "ibp", ws[0], 0.04)
    clean = p.stat("final_train_error", "ibp", ws[-1], 0.04)
    verdict = "does not reach 0" if big[0] - 2 * np.nan_to_num(big[1]) > 0 else "reaches 0 within 2 s.e."
    return (f"certified error {_pm(small)} at m = {ws[0]:,} → {_pm(big)} at m = {ws[-1]:,} ({verdict}); "
            f"clean error of the same nets at m = {ws[-1]:,}: {_pm(clean)}")


def _claim3(p: Protocol) -> str:
    eps = p.eps_values()
    if not eps:
        return "no IBP cell"
    e = eps[-1]
    parts = []
    for w in p.widths("ibp", e):
        cert, clean = p.stat("final_certified_error", "ibp", w, e), p.stat("final_train_error", "ibp", w, e)
        half = p.stat("final_train_error_tie_half", "ibp", w, e)
        zero = p.stat("zero_output_fraction_final", "ibp", w, e)
        parts.append(f"m = {w:,}: certified {_pm(cert)}, clean {_pm(clean)} (ties as coin flips: {_pm(half)}), "
                     f"f(x) = 0 on {_pm(zero)} of the samples")
    near = [w for w in p.widths("ibp", e) if abs(p.stat("final_certified_error", "ibp", w, e)[0] - 0.5) < 0.1]
    verdict = (f"near 50% at m = {', '.join(f'{w:,}' for w in near)}" if near
               else "not near 50% at any width (certified error)")
    return f"largest ε = {e:g}: " + "; ".join(parts) + f" — {verdict}"


def _trend(p: Protocol, eps=0.001) -> str:
    ws = p.widths("ibp", eps)
    if len(ws) < 2:
        return f"fewer than two widths at ε = {eps:g}"
    lo, hi = p.stat("final_certified_error", "ibp", ws[0], eps), p.stat("final_certified_error", "ibp", ws[-1], eps)
    d = _diff(hi, lo)
    word = "rises" if d[0] > 2 * d[1] else ("falls" if d[0] < -2 * d[1] else "is flat within noise")
    lrs = {w: sorted({r["lr"] for r in p.ok if r["method"] == "ibp" and r["eps"] == eps and r["width"] == w})
           for w in ws}
    tlo, thi = (p.stat("final_test_certified_error", "ibp", w, eps) for w in (ws[0], ws[-1]))
    td = _diff(thi, tlo)
    tword = "rises" if td[0] > 2 * td[1] else ("falls" if td[0] < -2 * td[1] else "is flat within noise")
    held = (f"; on the held-out split it {tword}: {_pm(tlo)} → {_pm(thi)} (difference {td[0]:+.3f} ± {td[1]:.3f})"
            if tlo[2] and np.isfinite(tlo[0]) else "")
    return (f"certified training error {word} with width: {_pm(lo)} at m = {ws[0]:,} → {_pm(hi)} at m = {ws[-1]:,} "
            f"(difference {d[0]:+.3f} ± {d[1]:.3f}){held}; chosen lr per width: "
            + ", ".join(f"{w:,}: {'/'.join(f'{v:g}' for v in lrs[w])}" for w in ws))


def _dead(p: Protocol) -> list[str]:
    out = []
    for e in p.eps_values():
        for w in p.widths("ibp", e):
            z = p.stat("zero_output_fraction_final", "ibp", w, e)
            if z[0] > 0.5:
                dn = p.stat("dead_fraction_final", "ibp", w, e)
                out.append(f"ε = {e:g}, m = {w:,}: f(x) = 0 on {_pm(z)} of the samples, {_pm(dn)} of the neurons dead")
    return out or ["no (ε, m) cell where IBP training zeroed the output on most samples"]


def claim_lines(p: Protocol) -> list[str]:
    """The three claims and the ε = 0.001 trend, one line each, for one protocol."""
    return [f"- claim {i} ({c}): {fn(p)}" for i, (c, fn) in enumerate(zip(CLAIMS, (_claim1, _claim2, _claim3)), 1)] \
        + [f"- trend at ε = 0.001: {_trend(p)}"]


def _series_mean(p: Protocol, method: str, key: str, width=None):
    """(mean, s.e., seeds) over seeds of the time-average of a recorded series (epochs ≥ 1)."""
    from .sweep.store import Store

    vals = []
    for _, rec in Store(p.dir).records(p.cfg):
        c = rec["cell"]
        if c["method"] == method and (width is None or c["width"] == width) and key in rec["series"]:
            v = np.asarray(rec["series"][key][1:], float)
            if np.isfinite(v).any():
                vals.append(np.nanmean(v))
    v = np.asarray(vals)
    if v.size == 0:
        return (np.nan, np.nan, 0)
    return (float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else np.nan, int(v.size))


def _verdict(a, b, better: str) -> str:
    """Verdict on a − b < 0 (seeds independent); "1 seed" when either side has no error bar."""
    d = _diff(a, b)
    if not np.isfinite(d[0]):
        return "not measured"
    if min(a[2], b[2]) < 2:
        return f"one seed, no error bar (difference {d[0]:+.3f})"
    if d[0] < -2 * d[1]:
        return f"supported ({better} by {-d[0]:.3f} ± {d[1]:.3f})"
    if d[0] > 2 * d[1]:
        return f"contradicted (worse by {d[0]:.3f} ± {d[1]:.3f})"
    return f"within noise ({d[0]:+.3f} ± {d[1]:.3f})"


def _series_point(p: Protocol, method: str, key: str, index: int, width) -> tuple:
    """(mean, s.e., seeds) of ``series[key][index]`` over the seeds of (method, width)."""
    from .sweep.store import Store

    v = []
    for _, rec in Store(p.dir).records(p.cfg):
        c, s = rec["cell"], rec["series"]
        if c["method"] == method and c["width"] == width and key in s and np.isfinite(s[key][index]):
            v.append(float(s[key][index]))
    v = np.asarray(v)
    if v.size == 0:
        return (np.nan, np.nan, 0)
    return (float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else np.nan, int(v.size))


def _ntk_lines(p: Protocol, methods) -> list[str]:
    """λmin(H(0)) and the relative Gram drift at the end per width, with the drift's log-log
    slope in the width (the two-layer proof needs ‖H(t) − H(0)‖ to fall like m^-1/2)."""
    out = []
    for mth in methods:
        ws = sorted({int(r["width"]) for r in p.ok if r["method"] == mth})
        lam = {w: _series_point(p, mth, "lambda_min", 0, w) for w in ws}
        drift = {w: _series_point(p, mth, "gram_change_rel", -1, w) for w in ws}
        if not any(v[2] for v in drift.values()):
            continue
        pos = [w for w in ws if drift[w][2] and drift[w][0] > 0]
        slope = np.polyfit(np.log(pos), np.log([drift[w][0] for w in pos]), 1)[0] if len(pos) >= 2 else np.nan
        out.append(f"- `{mth}`: λmin(H(0)) " + ", ".join(f"{w:,}: {_pm(lam[w])}" for w in ws)
                   + "; drift ‖H(T) − H(0)‖/‖H(0)‖ " + ", ".join(f"{w:,}: {_pm(drift[w])}" for w in ws)
                   + (f" — log-log slope in the width {slope:.2f} (lazy training at the two-layer rate: −0.5)"
                      if np.isfinite(slope) else ""))
    return (["Empirical certified-margin NTK (the Gram of the method's margins on the training set):"] + out + [""]
            if out else [])


def methods_section(p: Protocol) -> list[str]:
    """The training-methods comparison (issue 14) of one sweep directory: a table of final
    errors per (ε, width, method) and the seeds' claims, each with its verdict."""
    eps_values = sorted({r["eps"] for r in p.ok if r["eps"] > 0})
    methods = sorted({r["method"] for r in p.ok})
    cols = (("final_train_error", "clean"), ("final_pgd_error", "PGD"), ("final_certified_error_ibp", "IBP"),
            ("final_certified_error_crown", "CROWN"))
    out = []
    for e in eps_values:
        out += [f"Final training errors at ε = {e:g} (mean ± s.e. over seeds):", "",
                "| width | method | " + " | ".join(c for _, c in cols) + " |", "|" + "---|" * (2 + len(cols))]
        for w in sorted({int(r["width"]) for r in p.ok if r["eps"] == e}):
            for mth in methods:
                out.append(f"| {w:,} | {mth} | " + " | ".join(_pm(p.stat(k, mth, w, e)) for k, _ in cols) + " |")
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
            out += [f"- {text}: " + _verdict(p.stat(key, a, w, e), p.stat(key, b, w, e), "lower")
                    for text, key, a, b in claims if a in methods and b in methods]
            out.append("")
    out += _ntk_lines(p, methods)
    if not {"crown", "crown_ibp"} & set(methods):
        return out
    smooth = {m: _series_mean(p, m, "grad_cos_distance") for m in methods}
    out += ["lee2021 (\"tighter relaxations give less smooth landscapes\"): cosine distance between consecutive "
            "minibatch gradients, time-averaged (0 = the same direction, 2 = opposite; lower is smoother): "
            + ", ".join(f"{m} {_pm(v)}" for m, v in smooth.items() if v[2]),
            "- CROWN (tighter) vs IBP: " + _verdict(smooth.get("ibp", (np.nan, np.nan, 0)),
                                                   smooth.get("crown", (np.nan, np.nan, 0)), "smoother with IBP")
            + "; CROWN-IBP vs IBP: " + _verdict(smooth.get("ibp", (np.nan, np.nan, 0)),
                                                smooth.get("crown_ibp", (np.nan, np.nan, 0)), "smoother with IBP"),
            ""]
    if "advibp" in methods:
        inc, cos = _series_mean(p, "advibp", "ibp_increase"), _series_mean(p, "advibp", "cos_adv_ibp")
        out += [f"AdvIBP's approximate projection: the step raised L̄_IBP to first order (⟨g_final, g_IBP⟩ < 0) on "
                f"{_pm(inc)} of its steps (warm-up steps excluded); cos(g_adv, g_IBP) averaged {_pm(cos)}.", ""]
    return out


def findings(dirs: dict, command: str | None = None, preface: str | None = None) -> str:
    """The findings page (Markdown) for the labelled sweep directories ``dirs``; ``preface``
    (Markdown, e.g. a written summary of what the numbers below mean) goes after the title."""
    if not dirs:
        raise ValueError("findings: give at least one LABEL=DIR")
    allp = [Protocol(k, v) for k, v in dirs.items()]
    ps = [p for p in allp if not {r["method"] for r in p.rows} - _PAPER_METHODS
          and p.cfg.get("model", {}).get("net", "two_layer") == "two_layer"]
    mp = [p for p in allp if p not in ps]
    lines = ["# Findings: Figure 1 of Wang et al. (2022) under stated protocols", "",
             "Generated from stored sweep results by "
             f"`{command or 'ntkflow findings ' + ' '.join(f'{p.label}={p.dir}' for p in ps)}`. "
             "Numbers are mean ± standard error over seeds; a difference is called real when it exceeds 2 s.e.; "
             "diverged cells are counted in the protocol lines and left out of every mean.", ""]
    if preface:
        lines += [preface.strip(), ""]
    lines += ["## Protocols", ""]
    for p in ps:
        lines += _protocol_section(p)
    lines += ["## The paper's three Fig. 1 claims", ""]
    for i, (claim, fn) in enumerate(zip(CLAIMS, (_claim1, _claim2, _claim3)), start=1):
        lines += [f"**Claim {i}: {claim}.**", ""] + [f"- `{p.label}`: {fn(p)}" for p in ps] + [""]
    lines += ["## Trend with width at ε = 0.001", ""] + [f"- `{p.label}`: {_trend(p)}" for p in ps] + [""]
    lines += ["## Dead nets (f ≡ 0) after IBP training", ""]
    for p in ps:
        lines += [f"- `{p.label}`: " + "; ".join(_dead(p))]
    lines += ["", "## Tables (final training errors)", ""]
    for p in ps:
        lines += [f"### `{p.label}`", ""] + _table(p)
    if mp:
        lines += ["", "## Training methods side by side, and deep nets (issues 14, 15)", "",
                  "Every method trains the same net from the same initialization through `ntkflow.fit`; errors on "
                  "the training set; PGD counts a sample broken if the clean point or any iterate is misclassified; "
                  "a sound bound gives clean ≤ PGD ≤ CROWN ≤ IBP (CROWN is the tighter bound on this net).", ""]
        for p in mp:
            net = p.cfg.get("model", {}).get("net", "two_layer")
            lines += _protocol_section(p) + ([f"- net: `{net}`, init `{p.cfg['model'].get('init') or 'torch'}`", ""]
                                             if net != "two_layer" else []) + methods_section(p)
    return "\n".join(lines)
