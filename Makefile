# The two README commands: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint serve wheel
$(BIN)/idp: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(BIN)/idp

install: $(BIN)/idp

demo: install
	$(BIN)/idp demo

lint: install
	$(BIN)/ruff check .

# Four test processes (pytest-xdist): the suite waits on servers, browsers and subprocesses as much as it
# computes, so even 2 cores gain from more workers than cores (measured here: 1 process 8.5 min, 2 workers
# 5.4, 3 workers 4.1, 4 workers 3.8-4.0). Each worker has its own database server and face models;
# `loadfile` keeps a module's tests, and so its module fixtures, on one worker (3.75 min, least CPU), and
# tests/conftest.py puts all browser tests on one worker and starts the longest units first.
# `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 4
test: lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

wheel: install
	$(BIN)/pip wheel -q --no-deps -w dist .
