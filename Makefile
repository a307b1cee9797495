# Every target creates .venv on first use and installs the pinned dependencies.
# A second run is a no-op (the stamp file is newer than the lock files).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: venv demo test test-all bench lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-lava.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.lock
	$(PIP) --no-deps --ignore-requires-python -r requirements-lava.lock
	$(PIP) --no-deps -e .
	touch $@

demo: $(STAMP)
	$(VENV)/bin/lava-convert demo

test: $(STAMP)
	$(PY) -m pytest -q

# Also runs the long property tests and sweeps marked `slow`.
test-all: $(STAMP)
	LAVA_CONVERT_SLOW=1 $(PY) -m pytest -q

# Speed and accuracy measurements; writes benchmarks/RESULTS.md.
bench: $(STAMP)
	$(PY) -m benchmarks.run

lint: $(STAMP)
	$(VENV)/bin/ruff check lava_convert tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
