"""Tracked metrics as a registry: one entry per quantity, read by the trainer, the sweep's
results table and the figures.

A ``Metric`` names a quantity, says how to compute it from a ``Probe`` (a net's params on
the training set, with lazily computed and cached margins, attacks and Grams, so metrics
that share a computation share it) and, optionally, the results.csv column of its final
value. Adding a metric is one ``register(Metric(...))``: ``recorder`` records it along
training, ``ntkflow.sweep`` writes its ``final`` column, the store validates it.

Errors follow ``tracker.error_rate`` (ties by ``tie``; a multi-class sample is wrong when
any margin is ≤ 0). PGD error counts a sample as broken when the clean point or any PGD
iterate is misclassified (``attacks.pgd`` keeps the smallest margin seen, the clean point
included), so pgd_error ≥ train_error; a sound bound gives certified ≥ pgd error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import jax.numpy as jnp
import numpy as np
import scipy.linalg
from ._core.errors import NtkflowError

__all__ = ["Metric", "METRICS", "register", "unregister", "Probe", "AttackSettings", "recorder", "min_margin", "final_columns",
           "CROWN_BUDGET", "LOSS_VARIATION_STEPS", "SUBSAMPLE", "SANDWICH_RELUS"]

#: Largest per-sample backward-pass matrix (entries) for which the CROWN-certified error is
#: computed; above it (deep, wide nets) the column is NaN (empty).
CROWN_BUDGET = 1 << 22


@dataclass(frozen=True)
class AttackSettings:
    """Evaluation attack (PGD) for the ``pgd_error`` metric; ``steps = 0`` switches it off (NaN)."""

    steps: int = 20
    restarts: int = 1
    step_size: float | None = None  # relative to ε; default 2.5/steps
    seed: int = 0


@dataclass(frozen=True)
class Metric:
    """``fn(probe) -> float``. ``final``: results.csv column of the run's last value (None:
    series only). ``needs``: "gram" (O(n²P); only with gram tracking), "two_layer" (the
    paper's net only), "costly" (an attack or a backward bound over the whole set: computed
    on ``record(..., full=True)`` only, NaN elsewhere), "opt_in" (recorded only when asked
    for by name: MILPs)."""

    name: str
    fn: Callable
    doc: str
    final: str | None = None
    needs: tuple = ()


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add ``metric``: every run records its series, and a sweep writes its ``final`` column."""
    if not isinstance(metric, Metric):
        raise NtkflowError(f"metric: expected a Metric, got {type(metric).__name__}")
    if metric.name in METRICS:
        raise NtkflowError(f"metric: {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


def unregister(name: str) -> None:
    """Remove the metric ``name`` (a test's own metric)."""
    if name not in METRICS:
        raise NtkflowError(f"metric: {name!r} is not registered")
    del METRICS[name]


def min_margin(u) -> np.ndarray:
    """Per-sample smallest margin: (n,) as is, (n, S) → min over S."""
    u = np.asarray(u, float)
    return u if u.ndim == 1 else u.min(axis=1)


@dataclass
class Probe:
    """The net at one record: params on (X, y) at radius ``eps``. Margins, attacks and Grams
    are computed on first use and cached. ``own_bound``: the bound the training method
    certifies with (IBP for standard / adversarial methods). ``ref``: the Probe at t = 0
    (for change metrics); ``H0``: Grams at t = 0 by key."""

    net: object
    params: object
    X: object
    y: object
    eps: float
    own_bound: str = "ibp"
    attack_points: Callable | None = None  # params -> X_adv for Grams at attack points (pgd/fgsm)
    attack: AttackSettings = AttackSettings()
    tie: str = "wrong"
    gram: bool = False
    ref: "Probe | None" = None
    H0: dict = field(default_factory=dict)
    theory: dict | None = None  # the two-layer closed-form block (``tracker.tracker``)
    loss_fn: Callable | None = None  # params -> the method's loss on (X, y), differentiable
    lr: float = float("nan")  # the training step (loss_variation's step grid)

    # ------------------------------------------------------------------ cached pieces
    @cached_property
    def clean(self):
        from .bounds import clean_margins

        return np.asarray(clean_margins(self.net, self.params, self.X, self.y))

    def bound(self, method: str):
        cache = self.__dict__.setdefault("_bounds", {})
        if method not in cache:
            from .bounds import margin_bounds

            cache[method] = np.asarray(margin_bounds(self.net, self.params, self.X, self.y, self.eps, method))
        return cache[method]

    @cached_property
    def pgd(self):
        from .attacks import pgd_margin

        a = self.attack
        if a.steps == 0:  # evaluation attack switched off (a sweep's attack.eval_steps = 0)
            return np.full(np.shape(self.clean), np.nan)
        if self.eps == 0:
            return self.clean
        return np.asarray(pgd_margin(self.net, self.params, self.X, self.y, self.eps, steps=a.steps,
                                     restarts=a.restarts, seed=a.seed,
                                     step_size=None if a.step_size is None else a.step_size * self.eps))

    def error(self, u) -> float:
        from .paper.tracker import error_rate

        y = np.asarray(self.y, float) if np.ndim(u) == 1 else np.ones(len(self.y))  # ±1 labels: the "positive" tie rule
        return error_rate(min_margin(u), y, self.tie)

    def crown_fits(self) -> bool:
        from .bounds.linear import backward_cost

        shape = tuple(np.shape(self.X)[1:])
        return backward_cost(self.net, shape, "backward", max(1, self.net.num_outputs - 1)) <= CROWN_BUDGET

    def own_gram(self):
        """Gram of the margins the method trains on: the certified margins of ``own_bound``,
        or the clean margins at the attack points (the NTK of u(x_adv), gao2019)."""
        cache = self.__dict__
        if "_gram" not in cache:
            from .kernels import margin_gram

            if self.attack_points is not None:
                Xa = self.attack_points(self.params)
                H = margin_gram(self.net, self.params, Xa, self.y, 0.0, "ibp", trace=True)
            else:
                H = margin_gram(self.net, self.params, self.X, self.y, self.eps, self.own_bound, trace=True)
            cache["_gram"] = np.asarray(H, np.float64)
        return cache["_gram"]


    def gram_change(self) -> float:
        """‖H(t) − H(0)‖₂ of the method's own Gram (cached: ``gram_change`` and ``gram_change_rel``
        share one eigendecomposition)."""
        if "_gram_change" not in self.__dict__:
            from .paper.tracker import sym_norm

            self.__dict__["_gram_change"] = sym_norm(self.own_gram() - self.ref.own_gram())
        return self.__dict__["_gram_change"]

    def gram_norm(self) -> float:
        """‖H‖₂ of the method's own Gram (cached; the reference probe's serves every record)."""
        if "_gram_norm" not in self.__dict__:
            from .paper.tracker import sym_norm

            self.__dict__["_gram_norm"] = sym_norm(self.own_gram())
        return self.__dict__["_gram_norm"]


# ---------------------------------------------------------------------- the registry
def _theory(name):
    return lambda p: float(p.theory[name])


def _lambda_min(p):
    return float(scipy.linalg.eigvalsh(p.own_gram(), subset_by_index=[0, 0])[0])


def _gram_change(p):
    return p.gram_change()


def _gram_change_rel(p):
    return p.gram_change() / p.ref.gram_norm()


def _pair_fraction(which):
    """``paper.initialization.helpful_fraction`` / ``hurting_fraction`` at the probe's params:
    of the (sample, neuron) pairs with y_i a_r = +1, the fraction with w_rᵀx_i − ε‖w_r‖₁ > 0
    (the neuron can raise u̲_i); of those with y_i a_r = −1, the fraction with
    w_rᵀx_i + ε‖w_r‖₁ > 0 (it lowers u̲_i). The paper's two-layer net only (NaN otherwise)."""

    def fn(p):
        if getattr(p.net, "tag", None) != "two_layer":
            return float("nan")
        from .nets import two_layer_weights
        from .paper import initialization as I

        W, a = (np.asarray(v, np.float64) for v in two_layer_weights(p.net, p.params))
        f = I.helpful_fraction if which == "helpful" else I.hurting_fraction
        return f(W, a, np.asarray(p.X, np.float64), np.asarray(p.y, np.float64), p.eps)

    return fn


def _crown_error(p):
    return p.error(p.bound("crown")) if p.crown_fits() else float("nan")


#: Step sizes of ``loss_variation``, in units of the training lr (a GD step of the summed loss).
LOSS_VARIATION_STEPS = (0.0, 0.5, 1.0, 2.0, 4.0)
#: Samples (the first ones) on which the costly per-sample measures are taken.
SUBSAMPLE = 16
#: Largest number of ReLUs for which ``sandwich_violations`` solves its MILPs.
SANDWICH_RELUS = 64


def _loss_variation(p):
    """lee2021 Sec. 4.1: the range of L(θ − η∇L(θ)) over η ∈ lr·LOSS_VARIATION_STEPS."""
    if p.loss_fn is None or not np.isfinite(p.lr):
        return float("nan")
    import jax

    from .analysis.landscape import loss_variation

    g = jax.grad(p.loss_fn)(p.params)
    return float(loss_variation(p.loss_fn, p.params, g, p.lr * np.asarray(LOSS_VARIATION_STEPS)).variation)


def _relaxed_jacobian(p):
    """lee2021 Sec. 5: mean over the first SUBSAMPLE samples of ‖∇_w g‖₂ for the method's own
    relaxation (0 for IBP, lee2021's zero-slope relaxation)."""
    from .analysis.landscape import relaxed_gradient_norm
    from .nets import two_layer_weights

    W, a = (np.asarray(v, np.float64) for v in two_layer_weights(p.net, p.params))
    k = min(SUBSAMPLE, len(p.y))
    r = relaxed_gradient_norm(W, a, np.asarray(p.X)[:k], np.asarray(p.y)[:k], p.eps, p.own_bound)
    return float(np.mean(r.jac_spectral))


def _sandwich(p):
    """fan2021 Eq. 4 violations (a violation is a bug) on the first SUBSAMPLE // 2 samples;
    NaN for nets with more than SANDWICH_RELUS ReLUs (MILP cost)."""
    shapes = p.net.shapes(tuple(np.shape(p.X)[1:]))
    relus = sum(int(np.prod(shapes[i])) for i, layer in enumerate(p.net.layers) if layer.kind == "relu")
    if relus > SANDWICH_RELUS or p.eps <= 0:
        return float("nan")
    from .analysis.landscape import sandwich

    k = min(SUBSAMPLE // 2, len(p.y))
    return float(sandwich(p.net, p.params, np.asarray(p.X)[:k], np.asarray(p.y)[:k], p.eps, steps=20,
                          bound=p.own_bound, time_limit=10).violations)


for _m in (
    Metric("train_error", lambda p: p.error(p.clean), "clean error on the training set", "final_train_error"),
    Metric("certified_error", lambda p: p.error(p.bound(p.own_bound)),
           "error under the method's own bound (IBP for standard and adversarial methods)", "final_certified_error"),
    Metric("certified_error_ibp", lambda p: p.error(p.bound("ibp")), "IBP-certified error",
           "final_certified_error_ibp"),
    Metric("certified_error_crown", _crown_error, "CROWN-certified error (NaN where the net is too large)",
           "final_certified_error_crown", ("costly",)),
    Metric("pgd_error", lambda p: p.error(p.pgd), "PGD error (clean point and every iterate count)",
           "final_pgd_error", ("costly",)),
    Metric("lambda_min", _lambda_min, "λmin of the Gram of the margins the method trains on", "lambda_min_final",
           ("gram",)),
    Metric("gram_change", _gram_change, "‖H(t) − H(0)‖₂ of that Gram", None, ("gram",)),
    Metric("gram_change_rel", _gram_change_rel, "‖H(t) − H(0)‖₂ / ‖H(0)‖₂ (the drift; lazy training keeps it small)",
           "gram_change_rel_final", ("gram",)),
    Metric("mean_path_length", lambda p: float("nan"),
           "(1/m)Σ_r Σ_k ‖w_r(k+1) − w_r(k)‖ over epoch ends (recorded by the trainer along its run; "
           "one params has no path: NaN)", "mean_path_length_final", ("two_layer",)),
    Metric("eps", lambda p: float(p.eps), "the radius ε at the record (a schedule's value)"),
    Metric("helpful_fraction", _pair_fraction("helpful"),
           "of the pairs (i, r) with y_i a_r = +1, the fraction with w_rᵀx_i − ε‖w_r‖₁ > 0 (can raise u̲_i; "
           "two-layer net)", "helpful_fraction_final"),
    Metric("hurting_fraction", _pair_fraction("hurting"),
           "of the pairs (i, r) with y_i a_r = −1, the fraction with w_rᵀx_i + ε‖w_r‖₁ > 0 (lowers u̲_i; "
           "two-layer net)", "hurting_fraction_final"),
    Metric("loss_variation", _loss_variation, "lee2021: range of the loss along −∇L over lr·(0, .5, 1, 2, 4)",
           "loss_variation_final", ("costly",)),
    Metric("relaxed_jacobian", _relaxed_jacobian, "lee2021 Sec. 5: ‖∇_w g‖₂ of the own relaxation (two-layer)",
           None, ("costly", "two_layer")),
    Metric("sandwich_violations", _sandwich, "fan2021 Eq. 4 violations on 8 samples (nets ≤ 64 ReLUs; "
           "one MILP per sample and class: opt-in, by name; series only)", None, ("costly", "opt_in")),
):
    register(_m)

for _name, _doc, _final in (
    ("flip_fraction", "fraction of (i, r) whose IBP activation changed since t = 0", "flip_fraction_final"),
    ("neuron_flip_fraction", "fraction of neurons with any activation change", None),
    ("max_weight_change", "max_r ‖w_r − w_r(0)‖₂", "max_weight_change"),
    ("identity_residual", "dL̄/dt + l'ᵀHl' (Eq. 5; gradient flow only)", None),
    ("dead_fraction", "neurons inactive on every sample", "dead_fraction_final"),
    ("zero_output_fraction", "samples with f(x) = 0 (every neuron inactive)", "zero_output_fraction_final"),
):
    register(Metric(_name, _theory(_name), _doc, _final, ("two_layer",)))


def final_columns() -> tuple:
    """results.csv columns the registry adds (every metric with a ``final``)."""
    return tuple(m.final for m in METRICS.values() if m.final)


def recorder(net, params0, X, y, eps, *, names=None, own_bound="ibp", attack_points=None,
             attack: AttackSettings = AttackSettings(), tie: str = "wrong", gram: bool = False, theory=None,
             loss_fn=None, lr: float = float("nan")):
    """Builder: ``record(params, eps=None, loss=nan) -> dict`` of the metrics ``names``
    (default: every registered metric that applies) plus ``loss``.

    ``theory``: for the paper's two-layer net, the closed-form ``tracker.tracker`` record
    function ``(W, eps) -> dict``; its values serve the two-layer metrics, the clean and IBP
    errors (Eq. 1, Eq. 3), ``certified_error`` when the method is judged by IBP, and
    ``lambda_min``, ``gram_change`` when it trains on IBP margins (Eq. 6); ``record(...,
    loss=None)`` takes its loss (Eq. 2 at the record's ε). ``loss_fn(params, eps)``: the
    method's loss (``loss_variation``), ``lr`` the training step.
    """
    selected = [m for m in METRICS.values() if (m.name in names if names is not None else "opt_in" not in m.needs)
                and ("two_layer" not in m.needs or theory is not None)]
    if names is not None:
        unknown = sorted(set(names) - set(METRICS))
        if unknown:
            raise NtkflowError(f"metrics: unknown {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    closed_gram = theory is not None and attack_points is None and own_bound == "ibp"
    # metric name → the closed-form block's key that serves it on the paper's net
    closed = {} if theory is None else {"train_error": "train_error", "certified_error_ibp": "certified_error",
                                        **({"certified_error": "certified_error"} if own_bound == "ibp" else {}),
                                        **({"lambda_min": "lambda_min", "gram_change": "gram_change"}
                                           if closed_gram else {})}

    def probe(params, e):
        th = None
        if theory is not None:
            from .nets import two_layer_weights

            th = theory(jnp.asarray(two_layer_weights(net, params)[0]), e)
        fn = None if loss_fn is None else (lambda p: loss_fn(p, e))
        return Probe(net, params, X, y, e, own_bound, attack_points, attack, tie, gram, theory=th, loss_fn=fn, lr=lr)

    ref = probe(params0, eps)

    def record(params, eps_t=None, loss=float("nan"), full: bool = True) -> dict:
        e = eps if eps_t is None else eps_t
        p = probe(params, e)
        p.ref = ref
        if loss is None and theory is None:
            raise NtkflowError("loss: None takes the closed-form loss, which only the paper's net has (theory=)")
        out = {"loss": float(p.theory["loss"] if loss is None else loss)}
        for m in selected:
            if ("gram" in m.needs and not gram) or ("costly" in m.needs and not full):
                out[m.name] = float("nan")
            elif m.name in closed:
                out[m.name] = float(p.theory[closed[m.name]])
            else:
                out[m.name] = m.fn(p)
        return out

    return record
