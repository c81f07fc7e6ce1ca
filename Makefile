# Two entry points that work on a fresh machine with Python 3.11 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

FLOORS_VENV ?= .venv-floors

.PHONY: demo test test-floors bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ntkflow demo --out demo_out

test: $(STAMP)
	$(BIN)/python -m pytest tests

# The whole suite on the oldest dependency versions pyproject.toml allows (ci/floors.txt).
test-floors:
	rm -rf $(FLOORS_VENV)
	$(PY) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install -q --upgrade pip
	$(FLOORS_VENV)/bin/python -m pip install -q -c ci/floors.txt -e '.[test]'
	$(FLOORS_VENV)/bin/python -m pip list | grep -iE '^(jax|jaxlib|numpy|scipy|matplotlib|mlxtend|diffrax|equinox|optax|tqdm|dask|distributed|pytest|hypothesis) '
	$(FLOORS_VENV)/bin/python -m pytest tests

bench: $(STAMP)
	cd benchmarks && ../$(BIN)/python run_all.py

clean:
	rm -rf $(VENV) $(FLOORS_VENV) demo_out
