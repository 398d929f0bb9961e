# The two README commands: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test serve
$(BIN)/idp: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/idp

install: $(BIN)/idp

demo: install
	$(BIN)/idp demo

test: install
	$(BIN)/python -m pytest -q
