"""A sweep's results directory.

    DIR/config.json          the resolved config (a different config is refused unless --force)
    DIR/cells/<id>-<key>.json one record per finished cell, written atomically
    DIR/lambda0/eps<ε>-<key>.json  λ0 with CI per ε (when track.lambda_0)
    DIR/results.csv          tidy table of finished cells, rebuilt atomically from the records
    DIR/lambda0.csv          λ0 table

A record exists only once complete (temp file + rename), so a sweep killed at any
moment loses at most its running cells; the table is derived from the records, so
it never holds a duplicate or half-written row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
from pathlib import Path

from .._io import read_json, write_json, write_text
from .cells import Cell, cell_key, cells_of
from .config import canonical

__all__ = ["Store", "read_table", "COLUMNS"]

COLUMNS = ("method", "width", "eps", "seed", "final_train_error", "final_certified_error", "final_loss",
           "lambda_min_final", "max_weight_change", "flip_fraction_final", "final_test_error",
           "final_test_certified_error", "error_estimate", "n_train", "normalized", "wall_time", "cell_id")
L0_COLUMNS = ("eps", "lambda_0", "ci_low", "ci_high", "samples", "n_train")


class Store:
    def __init__(self, out):
        self.out = Path(out)

    def prepare(self, cfg: dict, force: bool = False) -> None:
        """Create DIR; refuse a config that differs from the stored one unless ``force``."""
        path = self.out / "config.json"
        if path.exists():
            old = read_json(path)
            if canonical(old) != canonical(cfg):
                if not force:
                    raise ValueError(f"{self.out} holds results of a different config; use another --out, "
                                     "or --force to switch (finished cells still valid under the new config "
                                     "are kept)")
                write_json(self.out / "config.previous.json", old)
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(path, cfg)

    def record_path(self, cfg: dict, cell: Cell) -> Path:
        return self.out / "cells" / f"{cell.id}-{cell_key(cfg, cell)}.json"

    def lambda0_path(self, cfg: dict, eps: float) -> Path:
        key = hashlib.sha1(canonical([cfg["data"], cfg["track"]["lambda_0_samples"], eps]).encode()).hexdigest()[:10]
        return self.out / "lambda0" / f"eps{eps:g}-{key}.json"

    def load(self, path: Path) -> dict:
        rec = read_json(path)
        if not isinstance(rec, dict):
            raise ValueError(f"{path}: corrupt record")
        return rec

    def done(self, path: Path) -> bool:
        if not path.exists():
            return False
        self.load(path)  # a corrupt record is an error naming the file, not a silent rerun
        return True

    def write(self, path: Path, record: dict) -> None:
        write_json(path, record)

    def write_tables(self, cfg: dict) -> Path:
        rows = []
        for cell in cells_of(cfg):
            p = self.record_path(cfg, cell)
            if p.exists():
                rec = self.load(p)
                rows.append({**rec["cell"], **rec["final"], "cell_id": cell.id})
        _write_csv(self.out / "results.csv", COLUMNS, rows)
        if cfg["track"]["lambda_0"]:
            l0 = [self.load(p) for p in (self.lambda0_path(cfg, e) for e in lambda0_eps(cfg)) if p.exists()]
            _write_csv(self.out / "lambda0.csv", L0_COLUMNS, l0)
        return self.out / "results.csv"

    def clean_stale(self, cfg: dict) -> None:
        """With --force: drop records that the new config does not produce."""
        keep = {self.record_path(cfg, c).name for c in cells_of(cfg)}
        for p in (self.out / "cells").glob("*.json"):
            if p.name not in keep:
                p.unlink()
        shutil.rmtree(self.out / "tmp", ignore_errors=True)


def lambda0_eps(cfg: dict) -> list[float]:
    return sorted({c.eps for c in cells_of(cfg)})


def _write_csv(path: Path, columns, rows) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in sorted(rows, key=lambda r: (str(r.get("method", "")),) + tuple(float(r.get(c, 0)) for c in
                                                                          ("width", "eps", "seed"))):
        w.writerow(r)
    write_text(path, buf.getvalue())


def read_table(path) -> list[dict]:
    """Rows of a results.csv (or lambda0.csv) with numbers parsed; a corrupt file → ValueError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror})") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"eps"} <= set(reader.fieldnames):
        raise ValueError(f"{path}: not an ntkflow results table (missing header)")
    rows = []
    for k, r in enumerate(reader, start=2):
        if None in r or any(v is None for v in r.values()):
            raise ValueError(f"{path}: line {k} has the wrong number of fields")
        out = {}
        for c, v in r.items():
            if c in ("method", "cell_id"):
                out[c] = v
            elif c == "normalized":
                out[c] = v == "True"
            else:
                try:
                    out[c] = float(v)
                except ValueError:
                    raise ValueError(f"{path}: line {k}, column {c}: {v!r} is not a number") from None
        rows.append(out)
    return rows
