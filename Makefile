# Two entry points for a fresh machine: `make demo` runs the main job,
# `make test` runs the linter and the test suite. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-latent pictures test test-gpu lint bench bench-gpu gpu-check clean system-tools

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The seed-001 VAE (examples/mnist_vae.py): MNIST when it is cached or can be downloaded, else
# Fashion-MNIST, installed from Debian's dataset-fashion-mnist when it is missing and we are root.
HAVE_MNIST := $(BIN)/python -c "from netgraph.datasets import mnist; mnist(download=True)"
HAVE_FASHION := $(BIN)/python -c "from netgraph.datasets import fashion_mnist; fashion_mnist()"
demo: $(STAMP) system-tools
	@if ! $(HAVE_MNIST) >/dev/null 2>&1 && ! $(HAVE_FASHION) >/dev/null 2>&1 \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "MNIST cannot be downloaded and Fashion-MNIST is missing: apt-get install -y dataset-fashion-mnist"; \
		apt-get install -y dataset-fashion-mnist || (apt-get update && apt-get install -y dataset-fashion-mnist) \
		    || echo "(apt-get failed; the example says how to get the data)"; \
	fi
	$(BIN)/python examples/mnist_vae.py --out out/mnist_vae
	@echo "pictures: out/mnist_vae/samples.png, reconstructions.png, interpolation.png, loss.png"

# The latentLoss graph alone, checked against the closed-form KL divergence and drawn.
demo-latent: $(STAMP)
	$(BIN)/python examples/latent_loss_demo.py --out out/demo

# The README's pictures (examples/make_pictures.py) into docs/pictures/: the net drawing, samples of each seed
# example (its trained net from out/ when there is one, else a quick run's), the training panel's loss plot and the
# latent explorer's page in headless Chromium. About 3 minutes on 2 CPU cores the first time.
pictures: $(STAMP) system-tools
	$(BIN)/python examples/make_pictures.py --out docs/pictures

# Net drawings use Graphviz's dot, and the latent explorer's page is tested in a headless Chromium: both from
# Debian's packages, installed when missing and we are root (without them those tests skip, saying why).
SYSTEM_TOOLS := $(if $(shell command -v dot),,graphviz) $(if $(shell command -v chromium),,chromium)
system-tools:
	@if [ -n "$(strip $(SYSTEM_TOOLS))" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "apt-get install -y $(strip $(SYSTEM_TOOLS))"; \
		apt-get install -y $(SYSTEM_TOOLS) >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 \
		    && apt-get install -y $(SYSTEM_TOOLS) >/dev/null 2>&1) || echo "(apt-get failed: those tests will skip)"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check netgraph layers examples tests $(wildcard benchmarks)

test: lint system-tools
	$(BIN)/python -m pytest

# Training speed, netgraph against PyTorch (benchmarks/train_speed.py; about 10 minutes on 2 quiet cores).
# PyTorch stays out of .venv: without it the script times netgraph alone. To compare, install torch in an
# environment of its own and point BENCH_PYTHON at it; BENCH_ARGS passes options (--quick, --profile, --nets ...;
# --ranks 2 adds netgraph under mpiexec and PyTorch DDP, which need `pip install mpi4py mpich` in that environment).
# The tree goes on PYTHONPATH, so that environment needs no install of netgraph.
BENCH_PYTHON ?= $(BIN)/python
BENCH_ARGS ?=
bench: $(STAMP)
	@$(BENCH_PYTHON) -c "import torch" 2>/dev/null || echo "PyTorch is not in $(BENCH_PYTHON), so netgraph \
	is timed alone; install torch as the script says below, then: make bench BENCH_PYTHON=torchenv/bin/python"
	PYTHONPATH=$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} $(BENCH_PYTHON) benchmarks/train_speed.py $(BENCH_ARGS)

# On a machine with CUDA and CuPy already installed (no network needed): the whole
# suite with every GPU variant, failing if the GPU cannot be used.
test-gpu:
	NETGRAPH_REQUIRE_GPU=1 PYTHONPATH=$(CURDIR) $(PYTHON) -m pytest -p no:cacheprovider

# Training speed on the GPU, netgraph (CuPy) against PyTorch CUDA (benchmarks/train_speed.py --device GPU), on a
# machine with CUDA and CuPy already installed, as test-gpu: no .venv, no network. Without PyTorch CUDA in
# BENCH_GPU_PYTHON the script times netgraph alone; without CuPy or a GPU it stops at once (exit status 2).
# BENCH_ARGS passes options as for bench (--quick, --nets ..., --data synthetic without Fashion-MNIST).
BENCH_GPU_PYTHON ?= $(PYTHON)
bench-gpu:
	PYTHONPATH=$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} $(BENCH_GPU_PYTHON) benchmarks/train_speed.py --device GPU $(BENCH_ARGS)

# Everything GPU in one go, about 8 minutes (benchmarks/gpu_check.sh): test-gpu, each example on the GPU for a
# few batches and bench-gpu's --quick run, with a summary of what passed.
gpu-check:
	PYTHON=$(PYTHON) bash benchmarks/gpu_check.sh

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
