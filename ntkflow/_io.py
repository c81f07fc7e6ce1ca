"""Atomic, pickle-free file writing (temp file in the same directory + rename), and the
checks that an output path can be written before any work is done."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from ._core.errors import NtkflowError


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
        raise NtkflowError(f"{path}: not a readable JSON file ({type(e).__name__})") from None


def read_npz(path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):  # a bare .npy under an .npz name
                raise NtkflowError("a single array, not an npz archive")
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise NtkflowError(f"{path}: not a readable npz file ({type(e).__name__})") from None


def _default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (a file, if a file is on the way)."""
    p = path
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _probe(directory: Path, name: str, path: Path) -> None:
    """Create and remove a temp file in ``directory``: the one test that also holds for root,
    read-only mounts and ACLs."""
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ntkflow-probe.", suffix=".tmp")
    except OSError as e:
        raise NtkflowError(f"{name}: cannot write to {path} ({e.strerror or type(e).__name__} in {directory})") from None
    os.close(fd)
    os.unlink(tmp)


def ensure_writable_dir(path, name: str) -> Path:
    """Check that directory ``path`` exists and is writable, or can be created; return it as a Path.

    Creates nothing (so a command that fails later leaves no empty directory). A regular
    file at ``path`` or on the way to it, or a directory that cannot be written, is a
    one-line ``ValueError`` starting with ``name`` (the argument, e.g. ``--out``).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NtkflowError(f"{name}: {path} is a file, not a directory")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise NtkflowError(f"{name}: cannot create {path}: {base} is a file, not a directory")
    _probe(base, name, path)
    return path


def ensure_writable_file(path, name: str) -> Path:
    """Check that file ``path`` can be written (atomically: through a temp file beside it, its
    directory created if missing); return it as a Path. Creates and changes nothing.

    ``path`` being a directory, lying under a file, or in a directory that cannot be
    written is a one-line ``ValueError`` starting with ``name`` (e.g. ``--json``).
    """
    path = Path(path)
    if path.is_dir():
        raise NtkflowError(f"{name}: {path} is a directory, not a file")
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise NtkflowError(f"{name}: cannot create {path}: {base} is a file, not a directory")
    _probe(base, name, path)
    return path
