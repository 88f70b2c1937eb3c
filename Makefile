# sparsegen: one command to install (make setup), one to test (make test).
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PYTEST_JOBS ?= 2
# Optional Debian packages: ccache (faster Verilator rebuilds), iverilog (second simulator),
# opensta (static timing in `sparsegen synth`; without it timing fields are null),
# qflow-tech-osu018 (the osu018 liberty, unpacked only, see constraints/fetch_osu018.sh).
APT_PACKAGES := ccache iverilog opensta

.PHONY: setup test test-slow lint gen synth sim-example clean help

help:
	@echo "make setup      create $(VENV) and install sparsegen with its toolchain"
	@echo "make test       run the default test suite (5 to 9 minutes on 2 cores)"
	@echo "make test-slow  run everything, including the slow full cross products"
	@echo "make lint       ruff, and verilator --lint-only on every design at its defaults"
	@echo "make gen        generate dbb-pe (block_size=8, nnz=4) into out/"
	@echo "make synth      synthesize that design for sky130hd and print the area"
	@echo "make sim-example  a random GEMM on s2ta (variant aw) on Verilator, checked vs golden"

setup: $(VENV)/.installed
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq $(APT_PACKAGES) >/dev/null) \
	        || echo "setup: optional apt packages not installed ($(APT_PACKAGES)); continuing"; \
	    sh constraints/fetch_osu018.sh build/pdk/osu018 \
	        || echo "setup: osu018 liberty not unpacked; --tech osu018 stays unavailable"; \
	else \
	    echo "setup: no root apt-get: skipping optional $(APT_PACKAGES) and osu018"; \
	fi
	@$(BIN)/sparsegen --version

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

test:
	$(BIN)/python -m pytest -n $(PYTEST_JOBS) -m "not slow"

test-slow:
	$(BIN)/python -m pytest -n $(PYTEST_JOBS)

lint:
	$(BIN)/ruff check .
	@for design in $$($(BIN)/python -c "from sparsegen.gen.registry import DESIGNS; print(*DESIGNS)"); do \
	    $(BIN)/sparsegen lint $$design || exit 1; \
	done

gen:
	$(BIN)/sparsegen gen dbb-pe -p block_size=8 -p nnz=4 -o out/

synth:
	$(BIN)/sparsegen synth dbb-pe -p block_size=8 -p nnz=4 --tech sky130hd

sim-example:
	@mkdir -p out
	$(BIN)/python -c "import numpy as np; from sparsegen.sim.golden.dbb import prune_activations; \
	r = np.random.default_rng(0); \
	np.save('out/A.npy', np.maximum(r.integers(-128, 128, (64, 512)), 0).astype(np.int8)); \
	np.save('out/W.npy', prune_activations(r.integers(-128, 128, (64, 512)), 8, 4).T.astype(np.int8))"
	$(BIN)/sparsegen sim s2ta -p variant=aw -p nnz_w=4 -p nnz_a=2 --a out/A.npy --w out/W.npy -o out/O.npy

clean:
	rm -rf build out sim_build .pytest_cache
