"""Progress bars (tqdm) on long loops, off unless asked for."""

from __future__ import annotations


def progress(iterable, enabled: bool, desc: str):
    """``iterable`` wrapped in a tqdm bar when ``enabled``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False)
