"""Run a sweep's pending cells on an executor: ``local`` (this machine's processes) or
``dask`` (a distributed cluster, or a LocalCluster). The same cell function runs on
both; the driver writes every record, so workers need no shared file system.

The driver holds the directory's lock for the whole run, validates every stored record
before trusting it (an invalid one is moved aside and its cell recomputed), and checks
that new records come from the same environment (versions, backend) as the stored ones.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed

from .._core.errors import NtkflowError
from .build import cell_config, check_objectives, dataset_for
from .cells import cells_of, lambda0_task, run_cell
from .env import environment
from .groups import groups_of, run_group
from .store import Store, lambda0_points

__all__ = ["run_sweep", "check_runnable", "EXECUTORS"]

EXECUTORS = ("local", "dask")


def default_workers() -> int:
    """One process per 8 cores: XLA already uses several threads per process."""
    return max(1, (os.cpu_count() or 1) // 8)


def check_runnable(cfg: dict) -> None:
    """What only building can tell: every method's objective builds with its options, the data
    set loads and the batch fits it.

    Run before a sweep writes anything, so that a config that would fail at its first
    cell never locks a results directory.
    """
    check_objectives(cfg)
    B = cfg["train"]["batch_size"]
    for cell in {(c.n_train, c.d): c for c in cells_of(cfg)}.values():  # one per point on the data axes
        n = len(dataset_for(cell_config(cfg, cell), 0.0).y)
        if B > n and cfg["train"]["optimizer"] != "gd":
            raise NtkflowError(f"config: train.batch_size = {B} exceeds the {n} training samples")


def each(fn, cfg, items, progress: bool = False) -> list:
    """[fn(cfg, item) for item in items] — a task of single cells (or λ0 values)."""
    if fn is run_cell:
        return [fn(cfg, it, progress=progress) for it in items]
    if fn is lambda0_task:  # an item is a point (ε, n_train, d)
        return [fn(cfg, *it) for it in items]
    return [fn(cfg, it) for it in items]


def _tasks(cfg, store, cell_fn):
    """(paths, callable, args) of everything not yet finished (invalid records are moved
    aside): a group of cells trained together (``groups.groups_of``) or one cell each; the
    callable returns one record per path."""
    pending = [c for c in cells_of(cfg) if store.record(cfg, c, repair=True) is None]
    out = []
    for group in (groups_of(cfg, pending) if cell_fn is run_cell else [[c] for c in pending]):
        paths = [store.record_path(cfg, c) for c in group]
        out.append((paths, run_group, (cfg, group)) if len(group) > 1 else (paths, each, (cell_fn, cfg, group)))
    if cfg["track"]["lambda_0"]:
        for pt in lambda0_points(cfg):
            if store.lambda0_record(cfg, *pt, repair=True) is None:
                out.append(([store.lambda0_path(cfg, *pt)], each, (lambda0_task, cfg, [pt])))
    return out


def run_sweep(cfg: dict, out, *, executor: str = "local", workers: int | None = None, scheduler: str | None = None,
              force: bool = False, accept_env: bool = False, quiet: bool = False, cell_fn=run_cell, say=None):
    """Run every unfinished cell of ``cfg`` into ``out``; return the results.csv path.

    Rerunning skips finished cells. ``cell_fn(cfg, cell) -> record`` is the cell function
    (replaceable in tests). ``force`` accepts a config that differs from the stored one
    (finished cells are kept); ``accept_env`` lets records of another ntkflow/JAX version
    or backend sit beside the stored ones. ``say(line)`` receives the store's notes.
    """
    if executor not in EXECUTORS:
        raise NtkflowError(f"executor: unknown {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if executor == "dask" and not scheduler:
        raise NtkflowError("scheduler: the dask executor needs --scheduler ADDRESS (or 'local' for a LocalCluster)")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise NtkflowError(f"workers: must be an integer >= 1, got {workers!r}")
    check_runnable(cfg)  # everything a cell needs is checked before the directory is touched
    store = Store(out, say=say)
    with store.lock():
        store.prepare(cfg, force=force)
        if executor == "local":  # a dask cluster's environment is known only from its records
            store.check_env(cfg, environment(), accept_env)
        tasks = _tasks(cfg, store, cell_fn)
        _execute(cfg, store, tasks, executor, workers or default_workers(), scheduler, accept_env, quiet)
        return store.write_tables(cfg)


def _execute(cfg, store, tasks, executor, workers, scheduler, accept_env, quiet):
    bar = None
    if not quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(len(t[0]) for t in tasks), desc=f"sweep ({executor})", unit="cell")

    def finished(paths, records):
        for path, record in zip(paths, records):
            if "env" in record:
                store.check_env(cfg, record["env"], accept_env)
            store.write(path, record)
        store.write_tables(cfg)
        if bar is not None:
            bar.update(len(paths))

    try:
        if executor == "local" and workers == 1:
            for paths, fn, args in tasks:
                finished(paths, functools.partial(fn, progress=not quiet)(*args))
        elif executor == "local":
            ctx = multiprocessing.get_context("spawn")  # JAX is multithreaded: never fork it
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futs = {pool.submit(fn, *args): path for path, fn, args in tasks}
                for f in as_completed(futs):
                    finished(futs[f], f.result())
        else:
            _run_dask(tasks, scheduler, workers, finished, cfg.get("run", {}).get("dask_resources") or {})
    finally:
        if bar is not None:
            bar.close()


def _dask_error(e: BaseException, scheduler: str) -> ValueError:
    """One line for what a cluster can do to a sweep (finished cells are already on disk)."""
    what = {"KilledWorker": "a worker died running a cell (KilledWorker)",
            "CommClosedError": "the connection to the scheduler closed",
            "CancelledError": "the cluster cancelled the tasks (scheduler lost?)"}.get(
        type(e).__name__, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": "))
    return ValueError(f"dask ({scheduler}): {what}; finished cells are kept, rerun the same command to resume")


def _run_dask(tasks, scheduler, workers, finished, resources=None):
    """Every task on the cluster; ``resources`` (``[run] dask_resources``, e.g. {GPU = 1}) are
    asked of each task, so a worker started with ``--resources GPU=1`` takes one group (or
    cell) at a time; a LocalCluster ("local") is started with them on every worker."""
    import dask
    from distributed import Client, LocalCluster, as_completed as dask_completed

    cluster = None
    try:
        if scheduler == "local":
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                   resources=resources or None)
            client = Client(cluster)
        else:
            # how long to wait for an address: dask's own connect timeout (30 s by default) is
            # long for a mistyped address; ``ntkflow.scheduler-timeout`` in dask's config sets it.
            client = Client(scheduler, timeout=dask.config.get("ntkflow.scheduler-timeout", "10s"))
    except (OSError, TimeoutError) as e:
        raise NtkflowError(f"scheduler: cannot reach dask scheduler {scheduler!r} "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'timed out'})") from None
    try:
        futs = {client.submit(fn, *args, pure=False, resources=resources or None): path for path, fn, args in tasks}
        for f in dask_completed(list(futs)):
            finished(futs[f], f.result())
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 — KilledWorker, CommClosedError, CancelledError, lost scheduler
        raise _dask_error(e, scheduler) from None
    finally:
        try:
            client.close()
        finally:
            if cluster is not None:
                cluster.close()
