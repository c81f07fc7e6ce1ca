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
