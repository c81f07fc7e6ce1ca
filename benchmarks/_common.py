"""Shared timing helpers: best-of-k wall time of a blocking call, machine facts."""

from __future__ import annotations

import datetime
import os
import platform
import time

import jax


def best_time(fn, repeat: int = 3) -> float:
    """Best wall time over ``repeat`` calls after one warm-up (compilation) call."""
    jax.block_until_ready(fn())
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return best


def interleaved_best(fns, rounds: int, clock=time.perf_counter):
    """Best time of each call, the calls taken in turn each round: on a shared machine
    a load burst then hits every contender alike, so ratios of the minima are stable.
    ``clock``: wall time by default; ``time.process_time`` (CPU seconds of this process, all
    threads) is not inflated by other jobs' time slices on an oversubscribed machine."""
    for fn in fns:
        jax.block_until_ready(fn())
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            t = clock()
            jax.block_until_ready(fn())
            best[k] = min(best[k], clock() - t)
    return best


def machine() -> str:
    dev = jax.devices()[0]
    return (f"{datetime.date.today()} · {platform.processor() or platform.machine()} · "
            f"{os.cpu_count()} cores · {dev.platform}:{dev.device_kind} · jax {jax.__version__}")


def cli(main) -> None:
    """Run ``main(quick)`` with a ``--quick`` flag for smoke runs."""
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    main(p.parse_args().quick)
