"""Resumable width/ε sweeps: config → cells → executor → results directory."""

from .cells import Cell, cells_of, run_cell
from .config import load_config, resolve
from .runner import run_sweep
from .store import COLUMNS, Store, read_table

__all__ = ["load_config", "resolve", "Cell", "cells_of", "run_cell", "run_sweep", "Store", "read_table", "COLUMNS"]
