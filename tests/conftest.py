import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("ntkflow", max_examples=25, deadline=None, derandomize=True)
settings.load_profile("ntkflow")


def make_problem(seed=0, n=7, m=40, d=6, lo=0.05, hi=1.0):
    """A small random problem with data in [lo, hi]^d."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((m, d))
    a = rng.choice([-1.0, 1.0], m)
    X = rng.uniform(lo, hi, (n, d))
    y = rng.choice([-1.0, 1.0], n)
    return W, a, X, y


def jacobian_gram(W, a, X, y, eps, fn):
    """Reference H = J Jᵀ from an explicit (n, m·d) Jacobian of ``fn`` (autodiff)."""
    with jax.enable_x64(True):
        args = [jnp.asarray(v, dtype=jnp.float64) for v in (a, X, y)]
        J = jax.jacrev(lambda w: fn(w, *args, eps))(jnp.asarray(W, dtype=jnp.float64))
        J = J.reshape(X.shape[0], -1)
        return np.asarray(J @ J.T)


@pytest.fixture
def problem():
    return make_problem()


@pytest.fixture
def x64():
    """Run a test with 64-bit JAX types (the net/bound engine follows the inputs' precision)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture
def config(tmp_path):
    """A tiny sweep config file (synthetic data, two widths, two ε, two seeds)."""
    from sweep_helpers import TINY

    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return p
