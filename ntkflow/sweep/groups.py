"""Cells trained together: one ``training.batched.fit_group`` call per group, one record per cell.

Cells group when ``run.batch_models`` (the default) and they share everything a jitted
epoch depends on — the net (model.net at the same width), the data (the same ε when
data.normalize puts each ε on its own box; the same point on the data axes grid.n_train /
grid.d), the method and its options — and are trained
by ``training.fit`` (deep nets; on the paper's net every method but the closed-form IBP /
standard loop, which runs alone). Seeds, ε targets and the learning rates of an lr grid
vary inside a group: each (cell, lr) is one model of the group. Every model equals the
same cell run alone (``batched``: bit-identical with the loop grouping used on CPU, within
float rounding with vmap on an accelerator); each cell's lr choice and record are made
exactly as ``run_cell`` makes them. A kill loses at most the group in flight.
"""

from __future__ import annotations

import time

from .build import cell_config, dataset_for, fit_settings_for, method_options, model_for
from .cells import Cell, finish_record
from .config import DEFAULTS

__all__ = ["groups_of", "run_group", "group_id", "MAX_GROUP"]

#: Most cells per group (the models of a group sit in memory together, and a kill loses the group).
MAX_GROUP = 32


def _fast_path(cfg: dict, cell: Cell) -> bool:
    """Cells on the paper's net that ``training.fastpath`` trains with its closed-form epoch (or the flow)."""
    from ..objectives import objective
    from ..training.fastpath import closed_form_method

    two_layer = cfg.get("model", DEFAULTS["model"])["net"] == "two_layer"
    return two_layer and (cfg["train"]["flow"] or closed_form_method(
        objective(cell.method, **method_options(cfg, cell.method)), cell.eps))


def group_id(cfg: dict, cell: Cell) -> str:
    """The label of the group a cell trains in ("" when it runs alone)."""
    if not cfg.get("run", DEFAULTS["run"])["batch_models"] or _fast_path(cfg, cell):
        return ""
    eps = f"-eps{cell.eps:g}" if cfg["data"]["normalize"] else ""
    # the paper's net freezes a (drawn with the seed) inside the net: one group per seed
    seed = f"-s{cell.seed}" if cfg.get("model", DEFAULTS["model"])["net"] == "two_layer" else ""
    data = (f"-n{cell.n_train}" if cell.n_train else "") + (f"-d{cell.d}" if cell.d else "")  # its own data
    return f"{cell.method}-m{cell.width}{eps}{seed}{data}"


def groups_of(cfg: dict, cells: list) -> list[list]:
    """``cells`` split into groups (lists of at most MAX_GROUP cells; singletons run alone)."""
    by: dict = {}
    for c in cells:
        gid = group_id(cfg, c)
        by.setdefault(gid or c.id, []).append(c)
    out = []
    for gid, members in by.items():
        out += [members[i: i + MAX_GROUP] for i in range(0, len(members), MAX_GROUP)]
    return out


def run_group(cfg: dict, cells: list, progress: bool = False) -> list[dict]:
    """Train ``cells`` (one group) as one ``fit_group``; return their records in order."""
    from ..training.batched import fit_group
    from .protocol import lr_grid, select_run, train_summary

    t0 = time.perf_counter()
    grid = lr_grid(cfg["train"]["lr"])
    built = []
    for cell in cells:
        ds = dataset_for(cell_config(cfg, cell), cell.eps)
        built.append((cell, ds, *model_for(cfg, cell, ds)))
    models = [(k, lr) for k in range(len(cells)) for lr in grid]
    net, X, y = built[0][2], built[0][4], built[0][1].y
    method = cells[0].method
    trs = fit_group(net, [built[k][3] for k, _ in models], X, y, [cells[k].eps for k, _ in models],
                    lrs=[lr for _, lr in models], seeds=[cells[k].seed for k, _ in models], objective=method,
                    options=method_options(cfg, method), **fit_settings_for(cfg, method, progress).parts())
    wall = (time.perf_counter() - t0) / len(cells)
    gid = group_id(cfg, cells[0])
    out = []
    for k, (cell, ds, net_k, _, X_k) in enumerate(built):
        runs = [tr for (j, _), tr in zip(models, trs) if j == k]
        summaries = [train_summary(tr, lr, cell.method) for tr, lr in zip(runs, grid)]
        c = select_run(summaries, cfg["train"]["select"])
        rec = finish_record(cfg, cell, ds, net_k, X_k, runs[c], grid[c], summaries, wall)
        rec["group"] = f"{gid}[{len(cells)}]"
        out.append(rec)
    return out
