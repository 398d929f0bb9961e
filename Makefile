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

test: lint
	$(BIN)/python -m pytest -q

wheel: install
	$(BIN)/pip wheel -q --no-deps -w dist .
