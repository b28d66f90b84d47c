# The two commands a newcomer needs: `make dev` starts certbound, `make test` runs the tests.
# The venv's interpreter: PYTHON when given (`make clean && make test PYTHON=python3.12`); else the
# system's /usr/bin/python3 when it is 3.11 to 3.13 (the versions src/certbound/tls/openssl_verify.py
# knows) and can make a venv; else python3 on PATH. A distribution's build (Debian's, Ubuntu's) is a
# static PGO+LTO build and runs certbound ~15-25% faster than a plain shared source build such as
# pyenv's default (docs/performance.md, "The interpreter"); python3 on PATH is often the latter.
# An up-to-date venv is kept as it is, whichever interpreter made it (its stamp names it).
PYTHON ?=
SYSTEM_PYTHON := /usr/bin/python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test bench clean

$(STAMP): pyproject.toml
	@rm -rf $(VENV); \
	if [ -n "$(PYTHON)" ]; then $(PYTHON) -m venv $(VENV); \
	elif $(SYSTEM_PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 14))' 2>/dev/null \
	    && $(SYSTEM_PYTHON) -m venv $(VENV) >/dev/null 2>&1; then :; \
	else rm -rf $(VENV); python3 -m venv $(VENV); fi
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -c 'import os, sys; print(os.path.realpath(sys._base_executable), sys.version.split()[0])' \
	    > $(STAMP).new && mv $(STAMP).new $(STAMP) && sed 's/^/venv: /' $(STAMP)

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
