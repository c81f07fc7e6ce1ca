"""Where the in-scan penalty of DM-small steps comes from (RESULTS 10c), measured in one process.

The plain (clean cross-entropy) and IBP steps of DM-small (batch 256, float32, inside x64 as
``fit`` runs them), per step of a 2-step epoch, each in four forms:

- ``fit.epoch``: the trainer's jitted ``lax.scan`` over the steps (what a sweep runs);
- ``host loop``: the same step (objective step + SGD update) jitted alone, called once per step;

and three formulations of the convolution (the net is the same; only ``Conv2d._conv`` differs):

- ``NCHW``: ``lax.conv_general_dilated`` with NCHW/OIHW dimension numbers (the layer's own);
- ``NHWC``: the same convolution with the image transposed to NHWC and the kernel to HWIO;
- ``GEMM``: ``nets.conv.conv_gemm`` — patches times a matrix (no convolution op at all);

plus, for the NCHW layer, the host loop's own step body inside one ``lax.scan`` (rolled, and
unrolled: one trip for the epoch), and the batched formulation (one ``conv_general_dilated`` on the
(B, C, H, W) batch instead of the per-sample layer vmapped): the batching rule already folds
the vmapped axis into N, so the two lower to the same convolution.

Times are the best of interleaved rounds (``_common.interleaved_best``).
Usage: python benchmarks/bench_steps.py [--quick]
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from _common import cli, interleaved_best, machine
from ntkflow import nets
from ntkflow.training.steps import epoch
from ntkflow.nets.conv import conv_gemm
from ntkflow.nets.layers import Conv2d
from ntkflow.objectives import Context, objective
from ntkflow.training.settings import optimizer

HIGHEST = jax.lax.Precision.HIGHEST


@dataclass(frozen=True)
class Conv2dNHWC(Conv2d):
    def _conv(self, W, x):
        dt = jnp.result_type(W, x)
        y = jax.lax.conv_general_dilated(
            jnp.transpose(x, (1, 2, 0))[None].astype(dt), jnp.transpose(W, (2, 3, 1, 0)).astype(dt), self.stride,
            [(p, p) for p in self.padding], rhs_dilation=self.dilation, dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=HIGHEST)[0]
        return jnp.transpose(y, (2, 0, 1))


@dataclass(frozen=True)
class Conv2dGEMM(Conv2d):
    def _conv(self, W, x):
        return conv_gemm(x, W, self.stride, self.padding, self.dilation)


_META = ["out_channels", "kernel_size", "stride", "padding", "dilation", "in_channels", "bias", "scale"]
for _cls in (Conv2dNHWC, Conv2dGEMM):
    jax.tree_util.register_dataclass(_cls, data_fields=["fixed"], meta_fields=_META)


def variant(net, cls):
    """``net`` with every Conv2d rebuilt as ``cls`` (same configuration, same params)."""
    def swap(layer):
        if type(layer) is Conv2d:
            return cls(layer.out_channels, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                       layer.in_channels, layer.bias, layer.scale, layer.fixed)
        return layer
    return nets.Net(tuple(swap(v) for v in net.layers), input_shape=net.input_shape)


class Case:
    def __init__(self, B: int, steps: int):
        rng = np.random.default_rng(0)
        self.B, self.steps = B, steps
        self.X = jnp.asarray(rng.uniform(0, 1, (B * steps, 1, 28, 28)), jnp.float32)
        self.y = jnp.asarray(rng.integers(0, 10, B * steps))
        self.idx = jnp.arange(B * steps).reshape(steps, B)
        self.sched = jnp.asarray(np.tile([0.1, 0.0, 0.0, 0.0], (steps, 1)), jnp.float32)
        self.keys = jax.random.split(jax.random.PRNGKey(0), steps)
        self.scale, self.lr = jnp.asarray(float(steps), jnp.float32), jnp.asarray(1e-3, jnp.float32)
        self.opt = optimizer("sgd", None)
        self.params = nets.dm_small().init(0, dtype=jnp.float32)

    def scan(self, net, obj):
        p = self.params
        c = (p, self.opt.init(p), obj.init(p), jax.tree_util.tree_map(jnp.zeros_like, p))
        return lambda: epoch(net, *c, self.X, self.y, self.idx, self.sched, self.keys, self.scale, self.lr, 1.0, obj,
                             self.opt)

    def loop(self, net, obj):
        ctx = Context(*(jnp.asarray(v, jnp.float32) for v in (0.1, 0.0, 0.0)), jax.random.PRNGKey(0),
                      *(jnp.asarray(0.0, jnp.float32) for _ in range(2)))

        @jax.jit
        def step(p, rows):
            g = obj.step(net, p, obj.init(p), self.X[rows], self.y[rows], ctx).grads
            return jax.tree_util.tree_map(lambda u, v: u - self.lr * self.scale * v, p, g)

        return lambda: [step(self.params, self.idx[k]) for k in range(self.steps)]

    def scan_of_step(self, net, obj, unroll: int):
        """The host loop's step body inside one jitted ``lax.scan`` (``unroll``: steps per loop trip)."""
        ctx = Context(*(jnp.asarray(v, jnp.float32) for v in (0.1, 0.0, 0.0)), jax.random.PRNGKey(0),
                      *(jnp.asarray(0.0, jnp.float32) for _ in range(2)))

        def body(p, rows):
            g = obj.step(net, p, obj.init(p), self.X[rows], self.y[rows], ctx).grads
            return jax.tree_util.tree_map(lambda u, v: u - self.lr * self.scale * v, p, g), None

        run = jax.jit(lambda p: jax.lax.scan(body, p, self.idx, unroll=unroll)[0])
        return lambda: run(self.params)

    def batched_plain(self):
        """The plain step with the whole batch through ``lax.conv_general_dilated`` (no vmap), jitted alone."""
        layers = nets.dm_small().layers

        def logits(p, X):
            for layer, q in zip(layers, p):
                if layer.kind == "affine" and isinstance(layer, Conv2d):
                    X = jax.lax.conv_general_dilated(X, q["weight"], layer.stride, [(0, 0), (0, 0)],
                                                     dimension_numbers=("NCHW", "OIHW", "NCHW"), precision=HIGHEST)
                    X = X + q["bias"][None, :, None, None]
                elif layer.kind == "affine":
                    X = jnp.matmul(X, q["weight"].T, precision=HIGHEST) + q["bias"]
                elif layer.kind == "relu":
                    X = jax.nn.relu(X)
                else:
                    X = X.reshape(X.shape[0], -1)
            return X

        @jax.jit
        def step(p, rows):
            loss = lambda p: -jnp.sum(jax.nn.log_softmax(logits(p, self.X[rows]))[jnp.arange(self.B), self.y[rows]])  # noqa: E731
            g = jax.grad(loss)(p)
            return jax.tree_util.tree_map(lambda u, v: u - self.lr * self.scale * v, p, g)

        return lambda: [step(self.params, self.idx[k]) for k in range(self.steps)]


def main(quick: bool = False):
    B, steps, rounds = (32, 2, 1) if quick else (256, 2, 3)
    print(f"# bench_steps — {machine()} — DM-small, batch {B}, {steps}-step epochs, float32", flush=True)
    with jax.enable_x64(True):
        c = Case(B, steps)
        base = nets.dm_small()
        forms = {"NCHW": base, "NHWC": variant(base, Conv2dNHWC), "GEMM": variant(base, Conv2dGEMM)}
        for oname, obj in (("plain", objective("standard")), ("IBP", objective("ibp", clip=(0.0, 1.0)))):
            names, fns = [], []
            for fname, net in forms.items():
                names += [f"{fname} fit.epoch scan", f"{fname} host loop"]
                fns += [c.scan(net, obj), c.loop(net, obj)]
            names += ["NCHW lax.scan of the step", f"NCHW lax.scan unroll={steps}"]
            fns += [c.scan_of_step(base, obj, 1), c.scan_of_step(base, obj, steps)]
            if oname == "plain":
                names.append("NCHW batched (no vmap) host loop")
                fns.append(c.batched_plain())
            times = interleaved_best(fns, rounds)
            ref = times[1]  # NCHW host loop: the step jitted alone, as the layer is today
            for n, t in zip(names, times):
                print(f"{oname:5s} {n:34s} {1e3 * t / steps:8.1f} ms/step  {t / ref:5.2f}x NCHW host loop",
                      flush=True)


if __name__ == "__main__":
    cli(main)
