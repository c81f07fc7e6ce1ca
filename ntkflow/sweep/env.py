"""What computed a record: the environment every cell record carries."""

from __future__ import annotations

__all__ = ["environment"]


def environment() -> dict:
    """What computed a record: ntkflow and JAX versions and the JAX backend (cpu/gpu/tpu)."""
    import jax

    from .. import __version__

    return {"ntkflow": __version__, "jax": jax.__version__, "backend": jax.default_backend()}
