# Two entry points that work on a fresh machine with Python 3.11 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

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

bench: $(STAMP)
	cd benchmarks && ../$(BIN)/python run_all.py

clean:
	rm -rf $(VENV) demo_out
