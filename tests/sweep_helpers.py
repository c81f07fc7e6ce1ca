"""Cell functions for the sweep tests (importable in subprocesses and Dask workers)."""

import os
import signal

from ntkflow.sweep import run_cell

TINY = """
[data]
source = "synthetic"
n_train = 12
n_test = 6
d = 6
[grid]
method = ["standard", "ibp"]
width = [20, 40]
eps = [0.01, 0.05]
seed = [0, 1]
[train]
lr = 0.01
epochs = 2
batch_size = 4
dtype = "float64"
[track]
every = 1
"""


def dying_cell(cfg, cell):
    """run_cell, except that the process is SIGKILLed when it reaches the cell named in $NTKFLOW_DIE_AT."""
    if cell.id == os.environ.get("NTKFLOW_DIE_AT"):
        os.kill(os.getpid(), signal.SIGKILL)
    return run_cell(cfg, cell)


def slow_cell(cfg, cell):
    """run_cell after a pause (so that a test can try a second sweep while this one runs)."""
    import time

    time.sleep(float(os.environ.get("NTKFLOW_SLOW", "0.5")))
    return run_cell(cfg, cell)


def failing_cell(cfg, cell):
    """A cell function that fails at once (a config that passes checks but breaks in the cell)."""
    raise RuntimeError("cell failed")


def killing_cell(cfg, cell):
    """Kill the (Dask worker) process on the cell named in $NTKFLOW_KILL_AT."""
    if cell.id == os.environ.get("NTKFLOW_KILL_AT", "ibp-m20-eps0.05-s0"):
        os.kill(os.getpid(), signal.SIGKILL)
    return run_cell(cfg, cell)


def sweep_script(config, out, cell_fn: str) -> str:
    """Python source that runs the sweep of ``config`` into ``out`` with the helper ``cell_fn``
    (for a subprocess that a test kills or races)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return (f"import sys; sys.path.insert(0, {here!r})\n"
            f"from sweep_helpers import {cell_fn}\n"
            "from ntkflow.sweep import load_config, run_sweep\n"
            f"run_sweep(load_config({str(config)!r}), {str(out)!r}, quiet=True, workers=1, cell_fn={cell_fn})\n")
