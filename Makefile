# Two entry points for a fresh machine: `make demo` runs the main job,
# `make test` runs the linter and the test suite. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-gpu lint bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/latent_loss_demo.py --out out/demo

lint: $(STAMP)
	$(BIN)/ruff check netgraph layers examples tests $(wildcard benchmarks)

test: lint
	$(BIN)/python -m pytest

# On a machine with CUDA and CuPy already installed (no network needed): the whole
# suite with every GPU variant, failing if the GPU cannot be used.
test-gpu:
	NETGRAPH_REQUIRE_GPU=1 PYTHONPATH=$(CURDIR) $(PYTHON) -m pytest -p no:cacheprovider

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
