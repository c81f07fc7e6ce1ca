import numpy as np
from hypothesis import given, strategies as st

import ntkflow as nf
from ntkflow.paper.model import _ibp_lower_margin
from conftest import jacobian_gram, make_problem


@given(seed=st.integers(0, 10_000), eps=st.floats(0.0, 1.0))
def test_structured_gram_equals_jacobian_gram(seed, eps):
    W, a, X, y = make_problem(seed, n=6, m=25, d=5)
    H = nf.gram_matrix(W, a, X, y, eps)
    np.testing.assert_allclose(H, jacobian_gram(W, a, X, y, eps, _ibp_lower_margin), rtol=1e-10, atol=1e-10)


def test_gram_equals_explicit_per_neuron_sum(problem):
    W, a, X, y = problem
    eps = 0.1
    m, n = W.shape[0], X.shape[0]
    Ap, Am = nf.indicators(W, a, X, y, eps)
    H = np.zeros((n, n))
    for r in range(m):
        sg = np.sign(W[r])
        grads = [y[i] * a[r] * (Ap[i, r] * (X[i] - eps * sg) + Am[i, r] * (X[i] + eps * sg)) for i in range(n)]
        G = np.array(grads) / np.sqrt(m)
        H += G @ G.T
    np.testing.assert_allclose(nf.gram_matrix(W, a, X, y, eps), H, rtol=1e-11, atol=1e-12)


@given(seed=st.integers(0, 10_000), eps=st.floats(0.0, 1.0))
def test_gram_symmetric_psd(seed, eps):
    W, a, X, y = make_problem(seed, n=8, m=30, d=4)
    H = nf.gram_matrix(W, a, X, y, eps)
    np.testing.assert_array_equal(H, H.T) if eps == 0 else np.testing.assert_allclose(H, H.T, atol=1e-12)
    assert np.linalg.eigvalsh((H + H.T) / 2).min() > -1e-10 * max(1.0, np.abs(H).max())


def test_terms_sum_to_gram_and_match_eq6(problem):
    W, a, X, y = problem
    eps = 0.2
    t = nf.gram_terms(W, a, X, y, eps)
    np.testing.assert_allclose(t.alpha + t.beta + t.gamma, nf.gram_matrix(W, a, X, y, eps), atol=1e-12)
    # Eq. 6 definitions, brute force
    m, n = W.shape[0], X.shape[0]
    Ap, Am = (np.asarray(v, float) for v in nf.indicators(W, a, X, y, eps))
    A, S = Ap + Am, Ap - Am
    alpha = np.einsum("ir,jr->ij", A, A)
    beta = np.zeros((n, n))
    for r in range(m):
        sg = np.sign(W[r])
        b = np.outer(A[:, r], S[:, r])  # β_rij
        beta += b * (X @ sg)[:, None] + b.T * (X @ sg)[None, :]
    gamma = np.einsum("ir,jr->ij", S, S) * W.shape[1]
    yy = np.outer(y, y) / m
    np.testing.assert_allclose(t.alpha, yy * (X @ X.T) * alpha, atol=1e-12)
    np.testing.assert_allclose(t.beta, -eps * yy * beta, atol=1e-12)
    np.testing.assert_allclose(t.gamma, eps**2 * yy * gamma, atol=1e-12)


def test_chunking_does_not_change_the_result(problem):
    W, a, X, y = problem
    H = nf.gram_matrix(W, a, X, y, 0.05)
    for chunk in (1, 7, 40, 1000):
        np.testing.assert_allclose(nf.gram_matrix(W, a, X, y, 0.05, chunk=chunk), H, rtol=1e-13, atol=1e-13)
