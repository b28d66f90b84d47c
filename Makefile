# The two commands a newcomer needs: `make dev` starts certbound, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

## Start certbound on its embedded default: SQLite and a development PKI in ./data, https://127.0.0.1:8443
dev: $(STAMP)
	exec $(BIN)/certbound serve --dev

## Run the whole test suite, with the linters and the type checker first.
test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

## The side-by-side benchmark against oidc-provider (docs/performance.md); ~11 minutes.
bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
