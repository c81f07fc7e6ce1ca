"""Atomic, pickle-free file writing (temp file in the same directory + rename)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path, obj) -> None:
    """Write ``obj`` as JSON atomically."""
    data = json.dumps(obj, indent=2, sort_keys=True, default=_default).encode()
    _atomic(Path(path), lambda f: f.write(data))


def write_text(path, text: str) -> None:
    _atomic(Path(path), lambda f: f.write(text.encode()))


def write_npz(path, arrays: dict) -> None:
    """Write arrays as an uncompressed .npz atomically (numeric arrays only)."""
    _atomic(Path(path), lambda f: np.savez(f, **arrays))


def read_json(path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({type(e).__name__})") from None


def read_npz(path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError) as e:
        raise ValueError(f"{path}: not a readable npz file ({type(e).__name__})") from None


def _default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
