"""Every shipped experiment config resolves (defaults filled, every key and value validated),
so a typo in experiments/ fails here rather than at the start of a 30-minute sweep."""

from pathlib import Path

import pytest

from ntkflow.sweep.cells import cells_of
from ntkflow.sweep.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_experiment_config_resolves_to_a_nonempty_grid(path):
    cfg = load_config(path)
    assert len(cells_of(cfg)) > 0
