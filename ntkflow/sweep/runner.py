"""Run a sweep's pending cells on an executor: ``local`` (this machine's processes) or
``dask`` (a distributed cluster, or a LocalCluster). The same cell function runs on
both; the driver writes every record, so workers need no shared file system.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed

from .cells import cells_of, lambda0_task, run_cell
from .store import Store, lambda0_eps

__all__ = ["run_sweep", "EXECUTORS"]

EXECUTORS = ("local", "dask")


def default_workers() -> int:
    """One process per 8 cores: XLA already uses several threads per process."""
    return max(1, (os.cpu_count() or 1) // 8)


def _tasks(cfg, store, cell_fn):
    """(path, callable, args) of everything not yet finished."""
    out = []
    for cell in cells_of(cfg):
        p = store.record_path(cfg, cell)
        if not store.done(p):
            out.append((p, cell_fn, (cfg, cell)))
    if cfg["track"]["lambda_0"]:
        for e in lambda0_eps(cfg):
            p = store.lambda0_path(cfg, e)
            if not store.done(p):
                out.append((p, lambda0_task, (cfg, e)))
    return out


def run_sweep(cfg: dict, out, *, executor: str = "local", workers: int | None = None, scheduler: str | None = None,
              force: bool = False, quiet: bool = False, cell_fn=run_cell):
    """Run every unfinished cell of ``cfg`` into ``out``; return the results.csv path.

    Rerunning skips finished cells. ``cell_fn(cfg, cell) -> record`` is the cell function
    (replaceable in tests).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor: unknown {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if executor == "dask" and not scheduler:
        raise ValueError("scheduler: the dask executor needs --scheduler ADDRESS (or 'local' for a LocalCluster)")
    store = Store(out)
    store.prepare(cfg, force=force)
    if force:
        store.clean_stale(cfg)
    tasks = _tasks(cfg, store, cell_fn)
    workers = workers or default_workers()
    bar = None
    if not quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=f"sweep ({executor})", unit="cell")

    def finished(path, record):
        store.write(path, record)
        store.write_tables(cfg)
        if bar is not None:
            bar.update(1)

    try:
        if executor == "local" and workers == 1:
            for path, fn, args in tasks:
                call = functools.partial(fn, progress=not quiet) if fn is run_cell else fn
                finished(path, call(*args))
        elif executor == "local":
            ctx = multiprocessing.get_context("spawn")  # JAX is multithreaded: never fork it
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futs = {pool.submit(fn, *args): path for path, fn, args in tasks}
                for f in as_completed(futs):
                    finished(futs[f], f.result())
        else:
            _run_dask(tasks, scheduler, workers, finished)
    finally:
        if bar is not None:
            bar.close()
    return store.write_tables(cfg)


def _run_dask(tasks, scheduler, workers, finished):
    from distributed import Client, LocalCluster, as_completed as dask_completed

    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        cluster, client = None, Client(scheduler)
    try:
        futs = {client.submit(fn, *args, pure=False): path for path, fn, args in tasks}
        for f in dask_completed(list(futs)):
            finished(futs[f], f.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
