"""H∞ = E[H(0)] over the initialization, and λ0 = λmin(H∞) (Sec. 3.4, Lemma 3).

``h_inf`` is a Monte Carlo estimate over neurons with the ε = 0 closed form
(``h_inf_exact``) as a control variate; ``lambda_0`` adds a 95% interval.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.stats

from .. import _validate as V
from .._jax import chunk_size, mm, mmt, x64
from .._progress import progress as progress_bar
from .gram import _assemble, _sums
from .model import _ibp_preact, sample_neurons

__all__ = ["h_inf", "h_inf_exact", "lambda_0", "MatrixEstimate", "EigenEstimate"]

@dataclass(frozen=True)
class MatrixEstimate:
    """A Monte Carlo estimate of H∞: ``mean`` and ``stderr`` (both (n, n)).

    ``samples`` neurons were drawn in ``batches`` equal batches; ``stderr`` comes from
    the spread of the batch means. ``control_beta`` is the control-variate coefficient
    (0: plain Monte Carlo) and ``variance_reduction`` the ratio of the plain estimator's
    total variance to the one reported (1: none).
    """

    mean: np.ndarray
    stderr: np.ndarray
    samples: int
    batches: int
    control_beta: float
    variance_reduction: float


@dataclass(frozen=True)
class EigenEstimate:
    """λ0 estimate: ``value`` with a 95% interval ``ci = (low, high)`` and ``stderr``.

    ``plain_value`` is λmin of the estimated H∞ (biased low by O(1/samples));
    ``value = plain_value − bias`` with ``bias`` the jackknife estimate of that bias.
    ``stderr`` is the delete-a-group jackknife standard error over ``groups`` groups;
    ``delta_stderr`` the first-order (delta-method) one, for comparison.
    ``gap`` is λ2 − λ1 of the estimated H∞; ``h_inf`` the matrix estimate behind it.
    """

    value: float
    ci: tuple[float, float]
    stderr: float
    samples: int
    gap: float
    plain_value: float
    bias: float
    delta_stderr: float
    groups: int
    h_inf: MatrixEstimate


def h_inf_exact(X, y) -> np.ndarray:
    """H∞ at ε = 0 in closed form (Du et al. 2019, arc-cosine kernel). (n, n) float64.

    H∞_ij = y_i y_j x_iᵀx_j (π − arccos(cos θ_ij)) / (2π), θ_ij the angle between x_i, x_j.
    """
    X, y, _ = V.data(X, y, gram=True)
    H = _h_inf_exact(X, y)
    V.finite_result("H∞", H, "X")
    return H


def _h_inf_exact(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    G = X @ X.T
    norms = np.sqrt(np.diag(G))
    denom = np.outer(norms, norms)
    cos = np.divide(G, denom, out=np.ones_like(G), where=denom > 0)
    theta = np.arccos(np.clip(cos, -1.0, 1.0))
    return np.outer(y, y) * G * (np.pi - theta) / (2 * np.pi)


# ----------------------------------------------------------------------------- sampling
def _chunk_neurons(key, k, c, d):
    kw, ka = jax.random.split(jax.random.fold_in(key, k))
    return sample_neurons(kw, ka, c, d)


@partial(jax.jit, static_argnames=("c",))
def _batch_grams(key, k, X, y, eps, c):
    """(H_eps, H_0) of one batch of c fresh neurons, each normalised by c."""
    W, a = _chunk_neurons(key, k, c, X.shape[1])
    h_eps = sum(_assemble(X, y, eps, c, _sums(W, a, X, y, eps)))
    act0 = (mmt(X, W) > 0).astype(X.dtype)
    h_0 = (y[:, None] * y[None, :]) * mmt(X, X) * mmt(act0, act0) / c
    return h_eps, h_0


@jax.jit
def _accumulate(sq, ge, g0, h_eps, h_0, shift_e, shift_0):
    """Add one shifted batch to its group sums and to the running Σ², Σ cross terms."""
    de, d0 = h_eps - shift_e, h_0 - shift_0
    return (sq[0] + de * de, sq[1] + d0 * d0, sq[2] + de * d0), ge + de, g0 + d0


@partial(jax.jit, static_argnames=("c",))
def _quad_forms(key, k, X, y, eps, v, c):
    """Per-neuron vᵀ h_r(ε) v and vᵀ h_r(0) v for one batch, each (c,)."""
    W, a = _chunk_neurons(key, k, c, X.shape[1])
    z, s = _ibp_preact(W, a, X, y, eps)
    act = (z > 0).astype(X.dtype)
    g = mm((s * act * v[:, None]).T, X) - eps * jnp.sign(W) * mm(act.T, v)[:, None]
    act0 = (mmt(X, W) > 0).astype(X.dtype)
    g0 = mm((act0 * (v * y)[:, None]).T, X)
    return jnp.sum(g * g, axis=1), jnp.sum(g0 * g0, axis=1)


def _plan(samples: int, n: int, d: int) -> tuple[int, int, int]:
    """(neurons per batch, batches, jackknife groups).

    At least 32 batches when samples allow; the batches are dealt round-robin into
    G groups (G ≤ 20, fewer for large n so the G (n, n) group sums stay near 300 MB),
    and their number is rounded up to a multiple of G.
    """
    c = max(1, min(chunk_size(n, samples, d), samples // 32))
    K = -(-samples // c)
    G = max(2, min(20, K, int(4e7 // (n * n))))
    return c, -(-K // G) * G, G


def _moments(n_, s1, s2):
    mean = s1 / n_
    return mean, np.maximum(s2 / n_ - mean * mean, 0.0) * n_ / (n_ - 1)


@dataclass(frozen=True)
class _Draws:
    """What ``lambda_0`` needs from the H∞ pass: group sums of batch means and the plan."""

    key: jax.Array
    c: int
    K: int
    group_e: list  # G arrays (n, n): Σ over the group's batches of (h_eps − shift_e)
    group_0: list
    shift_e: np.ndarray
    shift_0: np.ndarray
    exact0: np.ndarray


@x64
def _h_inf(X, y, eps, samples, seed, control_variate, progress):
    n = X.shape[0]
    c, K, G = _plan(samples, n, X.shape[1])
    key = jax.random.PRNGKey(seed)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    shift_e, shift_0 = _batch_grams(key, 0, Xj, yj, eps, c)
    zero = jnp.zeros((n, n))
    sq, ge, g0 = (zero,) * 3, [zero] * G, [zero] * G
    for k in progress_bar(range(K), progress, "H∞ batches"):
        sq, ge[k % G], g0[k % G] = _accumulate(sq, ge[k % G], g0[k % G], *_batch_grams(key, k, Xj, yj, eps, c),
                                               shift_e, shift_0)
    See, S00, Se0 = (np.asarray(t) for t in sq)
    ge, g0 = [np.asarray(t) for t in ge], [np.asarray(t) for t in g0]
    shift_e, shift_0 = np.asarray(shift_e), np.asarray(shift_0)
    me, var_e = _moments(K, sum(ge), See)
    m0, var_0 = _moments(K, sum(g0), S00)
    cov = (Se0 / K - me * m0) * K / (K - 1)
    me, m0 = me + shift_e, m0 + shift_0
    exact0 = _h_inf_exact(X, y)
    beta = 0.0
    if control_variate and var_0.sum() > 0:
        beta = float(cov.sum() / var_0.sum())
    mean = me - beta * (m0 - exact0)
    var = np.maximum(var_e - 2 * beta * cov + beta**2 * var_0, 0.0)
    reduction = float(var_e.sum() / var.sum()) if var.sum() > 0 else float("inf")
    est = MatrixEstimate(
        mean=(mean + mean.T) / 2,
        stderr=np.sqrt(var / K),
        samples=c * K,
        batches=K,
        control_beta=beta,
        variance_reduction=reduction,
    )
    return est, _Draws(key, c, K, ge, g0, shift_e, shift_0, exact0)


def h_inf(X, y, eps, *, samples: int = 100_000, seed: int = 0, control_variate: bool = True,
          progress: bool = False) -> MatrixEstimate:
    """Monte Carlo estimate of H∞ = E[H(0)] (Sec. 3.4) over w ~ N(0, I), a ~ unif{±1}.

    Neurons are drawn in equal batches (``samples`` is rounded up to a whole number
    of batches; ``.samples`` says how many were used); memory does not grow with
    ``samples``. With ``control_variate`` each neuron's ε = 0 Gram contribution, whose
    mean is ``h_inf_exact``, is subtracted with a fitted scalar coefficient: exact at
    ε = 0 and a large variance reduction for small ε. Same seed, same numbers.
    """
    X, y, eps = V.data(X, y, eps, gram=True)
    samples = V.positive_int("samples", samples, minimum=2)
    seed = V.seed(seed)
    est = _h_inf(X, y, eps, samples, seed, control_variate, progress)[0]
    V.finite_result("the H∞ estimate", est.mean, "X")
    return est


def lambda_0(X, y, eps, *, samples: int = 100_000, seed: int = 0, control_variate: bool = True,
             progress: bool = False, warn: bool = True) -> EigenEstimate:
    """λ0 = λmin(H∞) (Lemma 3) with a 95% confidence interval.

    λmin(Ĥ) of a Monte Carlo Ĥ is biased low by O(1/samples) (λmin is concave), and
    on real data the bottom eigenvalues crowd together (MNIST 2-vs-5: gap λ2 − λ1
    comparable to the noise), where a first-order (delta-method) interval is too
    narrow and off-centre. So the neurons' batches are dealt into G groups (up to 20)
    and a delete-a-group jackknife gives both the bias-corrected ``value`` and the
    standard error; the interval is value ± t_{G−1, 0.975}·se. It assumes the
    jackknife's usual conditions (λmin(Ĥ) a smooth function of the mean, bias of order
    1/samples, roughly normal leave-one-group-out values); its width shrinks like
    1/√samples, unlike a Weyl bound from ‖stderr‖_F (valid but far wider). With
    ``control_variate`` the ε = 0 closed form is used with the coefficient that is
    optimal for the quadratic form vᵀĤv (v the bottom eigenvector), fitted on a
    second pass over the same neurons. A warning is issued when λ2 − λ1 < 4 se (``warn=False``
    leaves it to the caller, who has ``.gap`` and ``.stderr``).
    """
    X, y, eps = V.data(X, y, eps, gram=True)
    samples = V.positive_int("samples", samples, minimum=2)
    seed = V.seed(seed)
    return _lambda_0(X, y, eps, samples, seed, control_variate, progress, warn)


@x64
def _lambda_0(X, y, eps, samples, seed, control_variate, progress, warn):
    est, dr = _h_inf(X, y, eps, samples, seed, control_variate, progress)
    V.finite_result("the H∞ estimate", est.mean, "X")
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    v = jnp.asarray(scipy.linalg.eigh(est.mean)[1][:, 0])
    sums = np.zeros(5)
    for k in progress_bar(range(dr.K), progress, "λ0 control coefficient"):
        q, q0 = (np.asarray(t) for t in _quad_forms(dr.key, k, Xj, yj, eps, v, dr.c))
        sums += [q.sum(), q0.sum(), (q * q).sum(), (q0 * q0).sum(), (q * q0).sum()]
    N = dr.c * dr.K
    mq, var_q = _moments(N, sums[0], sums[2])
    mq0, var_0 = _moments(N, sums[1], sums[3])
    cov = (sums[4] / N - mq * mq0) * N / (N - 1)
    # the control coefficient that is optimal for this quadratic form, not for the whole matrix
    beta = float(cov / var_0) if control_variate and var_0 > 0 else 0.0
    delta_se = float(np.sqrt(max(var_q - 2 * beta * cov + beta**2 * var_0, 0.0) / N))

    G = len(dr.group_e)
    tot_e, tot_0 = sum(dr.group_e), sum(dr.group_0)

    def eig(se, s0, batches):
        H = se / batches + dr.shift_e - beta * (s0 / batches + dr.shift_0 - dr.exact0)
        return scipy.linalg.eigvalsh((H + H.T) / 2)

    evals = eig(tot_e, tot_0, dr.K)
    lam = float(evals[0])
    gap = float(evals[1] - evals[0]) if len(evals) > 1 else float("inf")
    kg = dr.K - dr.K // G
    loo = np.array([eig(tot_e - ge, tot_0 - g0, kg)[0]
                    for ge, g0 in progress_bar(list(zip(dr.group_e, dr.group_0)), progress, "λ0 jackknife")])
    bias = float((G - 1) * (loo.mean() - lam))
    value = lam - bias
    se = float(np.sqrt((G - 1) / G * np.sum((loo - loo.mean()) ** 2)))
    half = float(scipy.stats.t.ppf(0.975, G - 1)) * se
    if warn and gap < 4 * se:
        warnings.warn(
            f"lambda_0: gap λ2−λ1 = {gap:.3g} is under 4 standard errors ({se:.3g}): "
            "λ0 is nearly degenerate here; the jackknife carries the interval",
            stacklevel=4,
        )
    return EigenEstimate(value=value, ci=(value - half, value + half), stderr=se, samples=N, gap=gap,
                         plain_value=lam, bias=bias, delta_stderr=delta_se, groups=G, h_inf=est)
