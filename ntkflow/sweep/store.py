"""A sweep's results directory.

    DIR/.lock                an exclusive lock held while a sweep runs (a second sweep is refused)
    DIR/config.json          the resolved config (a different config is refused unless --force)
    DIR/cells/<id>-<key>.json one record per finished cell, written atomically
    DIR/lambda0/eps<ε>-<key>.json  λ0 with CI per ε (when track.lambda_0)
    DIR/invalid/             records that failed validation, moved aside (never deleted)
    DIR/results.csv          tidy table of finished cells, rebuilt atomically from the records
    DIR/lambda0.csv          λ0 table

A record exists only once complete (temp file + rename), so a sweep killed at any
moment loses at most its running cells; the table is derived from the records, so
it never holds a duplicate or half-written row. Records are validated when read: the
cell and key they name must be the cell whose file they sit in, and their final values
numeric; an invalid record is reported by path and moved aside, and its cell recomputed.
Every record carries the environment that computed it (ntkflow and JAX versions, JAX
backend); a sweep refuses to mix environments unless told to (``accept_env``).
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import math
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .._core.errors import NtkflowError
from .._io import ensure_writable_dir, read_json, write_json, write_text
from .build import cell_config
from .cells import Cell, REQUIRED_FINALS, cell_dict, cell_key, cells_of, final_keys, without_later_defaults
from .config import canonical

__all__ = ["Store", "read_table", "COLUMNS", "validate_record"]

COLUMNS = ("method", "width", "eps", "seed", "final_train_error", "final_certified_error", "final_loss",
           "lambda_min_final", "max_weight_change", "flip_fraction_final", "final_test_error",
           "final_test_certified_error", "error_estimate", "diverged", "lr", "converged", "epochs_run",
           "n_lr_diverged", "dead_fraction_final", "zero_output_fraction_final", "final_train_error_tie_positive",
           "final_certified_error_tie_positive", "final_train_error_tie_half", "final_certified_error_tie_half",
           "n_train", "d", "normalized", "assumption_2_holds", "final_pgd_error", "final_certified_error_ibp", "final_certified_error_crown",
           "wall_time", "group", "backend", "jax_version", "ntkflow_version", "cell_id")
L0_COLUMNS = ("eps", "lambda_0", "ci_low", "ci_high", "samples", "n_train")
#: lambda0.csv's columns: a record's own, then d (absent from records that predate it).
L0_TABLE = L0_COLUMNS + ("d",)
#: Columns read back as strings and as booleans; every other column is a number.
TEXT_COLUMNS = frozenset({"method", "cell_id", "backend", "jax_version", "ntkflow_version", "select", "group"})
BOOL_COLUMNS = frozenset({"normalized", "diverged", "converged", "reached_kappa"})
#: Final values that must be finite unless the run diverged.
MUST_BE_FINITE = ("final_train_error", "final_certified_error", "final_loss")


def _env_text(env: dict) -> str:
    return f"ntkflow {env.get('ntkflow')}, jax {env.get('jax')} on {env.get('backend')}"


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_rate(key: str) -> bool:
    """Final values that are fractions of samples or neurons: errors (not the flow's
    ``error_estimate``, a length) and the ``*_fraction*`` columns."""
    return ("error" in key and key != "error_estimate") or "fraction" in key


def validate_record(rec, cfg: dict, cell: Cell) -> str | None:
    """Why ``rec`` is not a valid record of ``cell`` under ``cfg``; None when it is."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    if rec.get("cell") != cell_dict(cell):
        return f"names cell {rec.get('cell')!r}, not {cell.id}"
    if rec.get("key") != cell_key(cfg, cell):
        return "its key does not match the config (computed under another config)"
    final = rec.get("final")
    if not isinstance(final, dict):
        return "has no 'final' table"
    missing = [k for k in REQUIRED_FINALS if k not in final]
    if missing:
        return f"final values missing: {', '.join(missing)}"
    flags = ("diverged", "normalized", "converged")
    bad = [k for k in final_keys() if k in final and k not in flags and not _is_number(final[k])]
    bad += [k for k in flags if not isinstance(final[k], bool)]
    if bad:
        return f"final values not numeric (or flags not booleans): {', '.join(bad)}"
    if not final["diverged"] and not all(math.isfinite(final[k]) for k in MUST_BE_FINITE):
        return "non-finite final error or loss in a run not marked diverged"
    out = [k for k in final if _is_rate(k) and _is_number(final[k]) and not (math.isnan(final[k]) or 0 <= final[k] <= 1)]
    if out:
        return f"rates outside [0, 1]: {', '.join(f'{k} = {final[k]}' for k in out)}"
    env = rec.get("env")
    if not isinstance(env, dict) or not all(isinstance(env.get(k), str) for k in ("ntkflow", "jax", "backend")):
        return "no environment (ntkflow/jax versions, backend)"
    ts, series = rec.get("ts"), rec.get("series")
    if not isinstance(ts, list) or not isinstance(series, dict) or not all(
            isinstance(v, list) and len(v) == len(ts) for v in series.values()):
        return "series missing or of the wrong length"
    return None


def _validate_lambda0(rec, eps: float) -> str | None:
    if not isinstance(rec, dict):
        return "not a JSON object"
    if not all(_is_number(rec.get(k)) for k in L0_COLUMNS):
        return f"needs numeric {', '.join(L0_COLUMNS)}"
    if rec["eps"] != eps:
        return f"is for ε = {rec['eps']}, not {eps}"
    return None


class Store:
    """One results directory. ``say(line)`` reports what the store did (moved records,
    kept cells); by default it prints to stderr."""

    def __init__(self, out, say=None):
        self.out = Path(out)
        self.say = say or (lambda msg: print(f"ntkflow: {msg}", file=sys.stderr))

    # ------------------------------------------------------------------ lock and set-up
    @contextmanager
    def lock(self):
        """Hold DIR/.lock exclusively; a second sweep on the same directory is refused."""
        self._mkdir()
        path = self.out / ".lock"
        f = open(path, "a+")
        try:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                who = f.read().strip() or "another process"
                raise NtkflowError(f"out: {self.out} is in use by another sweep ({who}); wait for it to finish or "
                                 "use another --out") from None
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()}")
            f.flush()
            yield self
        finally:
            f.close()  # closing the file releases the lock

    def _mkdir(self) -> None:
        ensure_writable_dir(self.out, "out")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NtkflowError(f"out: cannot create {self.out} ({e.strerror})") from None

    def clean_tmp(self) -> int:
        """Remove temp files a killed write left behind (call under the lock)."""
        n = 0
        for sub in (self.out, self.out / "cells", self.out / "lambda0"):
            for p in sub.glob(".*.tmp") if sub.is_dir() else ():
                p.unlink(missing_ok=True)
                n += 1
        return n

    def prepare(self, cfg: dict, force: bool = False) -> None:
        """Create DIR and write the config; refuse a config that differs from the stored one
        while finished cells of the stored one exist, unless ``force`` (call under the lock).

        Finished cells are never deleted: with ``force``, those the new grid does not produce
        stay in cells/ and out of results.csv, and the store says how many.
        """
        self._mkdir()
        if self.clean_tmp():
            self.say(f"removed temp files left by an interrupted write in {self.out}")
        path = self.out / "config.json"
        if path.exists():
            try:
                old = read_json(path)
                finished = sum(1 for _ in self.records(old, repair=None)) if isinstance(old, dict) and "grid" in old else 0
            except (ValueError, KeyError, TypeError):
                old, finished = None, 0
            if old is not None and canonical(without_later_defaults(old)) != canonical(without_later_defaults(cfg)) \
                    and finished:
                if not force:
                    raise NtkflowError(f"out: {self.out} holds {finished} finished cells of a different config; use "
                                     "another --out, or --force to switch (finished cells are kept)")
                write_json(self.out / "config.previous.json", old)
                kept = {self.record_path(old, c).name for c in cells_of(old)} - {
                    self.record_path(cfg, c).name for c in cells_of(cfg)}
                n_out = sum((self.out / "cells" / k).exists() for k in kept)
                if n_out:
                    self.say(f"config changed: {n_out} finished cells outside the new grid are kept in "
                             f"{self.out / 'cells'} (not in results.csv)")
        write_json(path, cfg)

    # ------------------------------------------------------------------ records
    def record_path(self, cfg: dict, cell: Cell) -> Path:
        return self.out / "cells" / f"{cell.id}-{cell_key(cfg, cell)}.json"

    def lambda0_path(self, cfg: dict, eps: float, n_train: int = 0, d: int = 0) -> Path:
        """λ0 at ε on the data of the cells at (n_train, d) on the data axes (0: off them)."""
        data = without_later_defaults({"data": cell_config(cfg, Cell(0, "", eps, 0, n_train, d))["data"]})["data"]
        key = hashlib.sha1(canonical([data, cfg["track"]["lambda_0_samples"], eps]).encode()).hexdigest()[:10]
        axes = (f"-n{n_train}" if n_train else "") + (f"-d{d}" if d else "")
        return self.out / "lambda0" / f"eps{eps:g}{axes}-{key}.json"

    def _read(self, path: Path, check, repair):
        """The record at ``path`` if valid; else None — reported and moved aside when ``repair``,
        reported when False, silent when None."""
        if not path.exists():
            return None
        try:
            rec = read_json(path)
            why = check(rec)
        except ValueError:
            rec, why = None, "not readable JSON (truncated or corrupt)"
        if why is None:
            return rec
        if repair is None:
            return None
        if repair:
            dest = self.out / "invalid" / f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}"
            dest.parent.mkdir(exist_ok=True)
            os.replace(path, dest)
            self.say(f"invalid record {path} ({why}): moved to {dest}; the cell will be recomputed")
        else:
            self.say(f"invalid record {path} ({why}): ignored")
        return None

    def record(self, cfg: dict, cell: Cell, repair: bool = False):
        """The valid record of ``cell`` or None."""
        return self._read(self.record_path(cfg, cell), lambda r: validate_record(r, cfg, cell), repair)

    def lambda0_record(self, cfg: dict, eps: float, n_train: int = 0, d: int = 0, repair: bool = False):
        return self._read(self.lambda0_path(cfg, eps, n_train, d), lambda r: _validate_lambda0(r, eps), repair)

    def records(self, cfg: dict, repair: bool = False):
        """(cell, record) for every finished cell of ``cfg``, validated."""
        for cell in cells_of(cfg):
            rec = self.record(cfg, cell, repair)
            if rec is not None:
                yield cell, rec

    def check_env(self, cfg: dict, env: dict, accept: bool) -> None:
        """Refuse to add results from ``env`` to a directory whose records came from another
        environment (unless ``accept``)."""
        if accept:
            return
        seen = {canonical(r["env"]): r["env"] for _, r in self.records(cfg, repair=None)}
        other = [e for k, e in seen.items() if k != canonical(env)]
        if other:
            raise NtkflowError(f"out: {self.out} holds cells computed with {_env_text(other[0])}; this run is "
                             f"{_env_text(env)}. Use --accept-env to mix them, or another --out")

    def write(self, path: Path, record: dict) -> None:
        write_json(path, record)

    def write_tables(self, cfg: dict) -> Path:
        rows = [{**rec["cell"], **rec["final"], **_env_columns(rec["env"]), "cell_id": cell.id,
                 "group": rec.get("group", "")}
                for cell, rec in self.records(cfg)]
        _write_csv(self.out / "results.csv", COLUMNS + _extra_columns(rows), rows)
        if cfg["track"]["lambda_0"]:
            l0 = [r for r in (self.lambda0_record(cfg, *pt) for pt in lambda0_points(cfg)) if r is not None]
            _write_csv(self.out / "lambda0.csv", L0_TABLE, l0)
        return self.out / "results.csv"


def _env_columns(env: dict) -> dict:
    return {"backend": env["backend"], "jax_version": env["jax"], "ntkflow_version": env["ntkflow"]}


def _extra_columns(rows) -> tuple:
    """Final values beyond COLUMNS (e.g. a protocol's lr and convergence columns), in record order."""
    extra: dict = {}
    for r in rows:
        for k in r:
            if k not in COLUMNS:
                extra[k] = None
    return tuple(extra)


def lambda0_points(cfg: dict) -> list[tuple]:
    """(ε, n_train, d) of every λ0 the cells need: one per ε, and per point on the data axes."""
    return sorted({(c.eps, c.n_train, c.d) for c in cells_of(cfg)})


def _write_csv(path: Path, columns, rows) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in sorted(rows, key=lambda r: (str(r.get("method", "")),) + tuple(float(r.get(c, 0)) for c in
                                                                          ("width", "eps", "seed", "n_train", "d"))):
        w.writerow(r)
    write_text(path, buf.getvalue())


def read_table(path) -> list[dict]:
    """Rows of a results.csv (or lambda0.csv) with numbers parsed; a corrupt file → ValueError."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise NtkflowError(f"{path}: cannot read ({getattr(e, 'strerror', None) or type(e).__name__})") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"eps"} <= set(reader.fieldnames):
        raise NtkflowError(f"{path}: not an ntkflow results table (missing header)")
    rows = []
    for k, r in enumerate(reader, start=2):
        if None in r or any(v is None for v in r.values()):
            raise NtkflowError(f"{path}: line {k} has the wrong number of fields")
        out = {}
        for c, v in r.items():
            if c in TEXT_COLUMNS:
                out[c] = v
            elif c in BOOL_COLUMNS:
                if v not in ("True", "False"):
                    raise NtkflowError(f"{path}: line {k}, column {c}: {v!r} is not True/False")
                out[c] = v == "True"
            else:
                try:
                    out[c] = float(v) if v != "" else float("nan")  # empty: a column the record predates
                except ValueError:
                    raise NtkflowError(f"{path}: line {k}, column {c}: {v!r} is not a number") from None
        rows.append(out)
    return rows
