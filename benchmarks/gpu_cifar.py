"""Deep certified-training steps on CIFAR-shaped input (3×32×32, 10 classes, batch 256, ε = 8/255,
clip (0, 1)): DM-small, CNN7 and CNN7 with BatchNorm (Shi et al. 2021), the objectives' own steps
(what ``fit`` scans: clean cross-entropy, IBP, CROWN-IBP at β = 0 and β = 1 unfused, β = 1 with
loss fusion), float32.

Every product of the layers and the bound engine asks for ``Precision.HIGHEST`` (``ntkflow._jax``:
a sound bound must not run as TF32), so a ``jax.default_matmul_precision("tensorfloat32")`` context
cannot turn TF32 on: the plain step is timed under both contexts to show that its time does not
move (a TF32 training bound would need a precision setting the layers do not have).

Prints per-step times and the epoch time a 50,000-image CIFAR-10 epoch would take at that step
(195 steps of 256), and the certified error of the initialized net on one batch in float32 at
HIGHEST. ``--quick``: a CPU-sized version (batch 8, 16×16 input, narrow nets) for the test run.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from _common import best_time
from ntkflow import nets
from ntkflow.bounds.engine import margin_bounds
from ntkflow.objectives import Context, objective

quick = "--quick" in sys.argv
B, HW, EPS = (8, 16, 8 / 255) if quick else (256, 32, 8 / 255)
STEPS_PER_EPOCH = 50_000 // 256
REPS = 2 if quick else 10


def _nets():
    kw = dict(width=4, linear=16) if quick else {}
    shape = (3, HW, HW)
    return {"DM-small": nets.dm_small(shape, 10), "CNN7": nets.cnn7(shape, 10, **kw),
            "CNN7-BN": nets.cnn7(shape, 10, bn=True, **kw)}


def _step(net, obj, opt):
    def step(params, opt_state, obj_state, X, y, ctx):
        out = obj.step(net, params, obj_state, X, y, ctx)
        upd, opt_state = opt.update(out.grads, opt_state, params)
        return optax.apply_updates(params, upd), opt_state, out.state, out.loss

    return jax.jit(step)


def _time(fn, args, reps=REPS):
    """Seconds per call: ``_common.best_time`` over batches of ``reps`` calls."""
    return best_time(lambda: [fn(*args) for _ in range(reps)][-1]) / reps


def main():
    print(f"# CIFAR-shaped steps, {jax.devices()[0].device_kind}, jax {jax.__version__}, batch {B}, "
          f"{HW}×{HW}, ε = {EPS:.4f}, float32", flush=True)
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.uniform(size=(B, 3, HW, HW)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, B))
    opt = optax.sgd(1e-3)
    methods = {"plain": ("standard", {}), "IBP": ("ibp", {"clip": (0.0, 1.0)}),
               "CROWN-IBP β=0": ("crown_ibp", {"clip": (0.0, 1.0)}),
               "CROWN-IBP β=1": ("crown_ibp", {"clip": (0.0, 1.0)}),
               "CROWN-IBP β=1 fused": ("crown_ibp", {"clip": (0.0, 1.0), "loss_fusion": True})}
    for name, net in _nets().items():
        params = net.init(0, (3, HW, HW), dtype=jnp.float32)
        times = {}
        for label, (method, options) in methods.items():
            try:
                obj = objective(method, **options)
            except (ValueError, TypeError) as e:  # an option this build does not have
                print(f"  {name}: {label}: skipped ({e})", flush=True)
                continue
            beta = 1.0 if "β=1" in label else 0.0
            ctx = Context(jnp.float32(EPS), jnp.float32(beta), jnp.float32(0.0), jax.random.PRNGKey(0),
                          jnp.float32(1.0), jnp.float32(0.5))
            step = _step(net, obj, opt)
            args = (params, opt.init(params), obj.init(params), X, y, ctx)
            with jax.default_matmul_precision("highest"):
                times[label] = _time(step, args)
            if label == "plain":
                with jax.default_matmul_precision("tensorfloat32"):
                    times[label + " (TF32 context)"] = _time(_step(net, obj, opt), args)
        base = times.get("IBP")
        for label, t in times.items():
            rel = f" = {t / base:.2f}× IBP" if base else ""
            print(f"{name}: {label}: {t * 1e3:.3f} ms/step, {t * STEPS_PER_EPOCH:.2f} s per CIFAR epoch{rel}",
                  flush=True)
        with jax.default_matmul_precision("highest"):
            m = margin_bounds(net, params, X, y, EPS, "ibp", clip=(0.0, 1.0))
        print(f"{name}: certified error at init (IBP, one batch, full precision): "
              f"{float(jnp.mean(jnp.any(m <= 0, axis=1))):.3f}", flush=True)


if __name__ == "__main__":
    main()
