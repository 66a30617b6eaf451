# lumoe: every target first brings .venv up to date, so a fresh clone needs no set-up step.
#   make sim [SEED=n] [WAVES=1]   the whole accelerator end to end in Verilator
#   make test                     the fast test suite (what CI runs)
# Run `make` or `make help` for the full list.

SEED ?= 0
WAVES ?= 0
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WAVES_FLAG := $(if $(filter 1 yes true,$(WAVES)),--waves,)

.DEFAULT_GOAL := help
.PHONY: help setup test test-all train train-convshare fidelity optics sim sim-units sim-board vectors hls verilog bitstream report bench lint clean

help: ## show this list
	@echo "lumoe make targets (SEED=n picks the random vectors, WAVES=1 writes waveforms):"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-10s %s\n", $$1, $$2}'

# The venv is rebuilt when it is missing or older than pyproject.toml.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || \
	  { echo "error: lumoe needs python3 >= 3.10 on PATH (or make PYTHON=/path/to/python3)"; exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || \
	  { echo "error: could not create $(VENV): install python3-venv (Debian: apt-get install python3-venv)"; exit 2; }
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create or update .venv with every tool (pip only)

test: $(STAMP) ## fast tests: pyref, XLS JIT, Amaranth sim, cocotb benches (skips slow)
	$(PY) -m pytest

test-all: $(STAMP) ## every test, the slow ones (bitstreams, big sweeps) too
	$(PY) -m pytest -m ''

train: $(STAMP) ## train the tiny model (CPU, ~2 min) into pyref/checkpoints (shipped)
	$(PY) -m scripts.train --seed=$(SEED)

train-convshare: $(STAMP) ## train ConvShareViT (valid, same) and its ViT baseline (~12 min, shipped)
	$(PY) -m scripts.train_convshare --seed=$(SEED)

optics: $(STAMP) ## ConvShareViT through the simulated 4f system; optics vs GPU vs FPGA model
	$(PY) -m scripts.optics --seed=$(SEED)

fidelity: $(STAMP) ## integer golden model against float: errors, SQNR, width sweep
	$(PY) -m scripts.fidelity

vectors: $(STAMP) ## write seeded test vectors and manifests to build/vectors
	$(PY) -m scripts.vectors --seed=$(SEED)

hls: $(STAMP) ## regenerate hls/formats.x; DSLX -> pipelined Verilog in build/hls
	$(PY) -m scripts.hls

verilog: $(STAMP) hls ## emit Amaranth designs to build/verilog
	$(PY) -m scripts.verilog

sim: $(STAMP) ## the whole accelerator end to end (tiny, 8 images, both tasks), the optical I/O unit
	$(PY) -m scripts.sim --seed=$(SEED) $(WAVES_FLAG)

sim-units: $(STAMP) ## every unit's bench in Verilator, bit-exact against pyref
	$(PY) -m scripts.sim --units --seed=$(SEED) $(WAVES_FLAG)

sim-board: $(STAMP) ## the board over its UART model, memory simulated then SDRAM: the host's code loads and runs the tiny model
	$(PY) -m scripts.sim board board_sdram --seed=$(SEED) $(WAVES_FLAG)

bitstream: $(STAMP) ## ECP5 bitstreams and reports in build/bitstream/<design>, the ULX3S board last
	$(PY) -m scripts.bitstream --seed=$(SEED)

report: $(STAMP) ## rebuild build/report/report.md from saved results
	$(PY) -m scripts.report

bench: $(STAMP) ## heavy measurements: many seeds, simulator speed, into build/report
	$(PY) -m scripts.bench --seed=$(SEED)

lint: $(STAMP) ## ruff over the Python sources
	$(PY) -m ruff check pyref hls hw sim scripts tests

clean: ## remove build/ (keeps .venv)
	rm -rf build
