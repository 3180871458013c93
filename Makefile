# Two commands set everything up: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PUL := $(VENV)/bin/pul
WORK ?= work/demo
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint bench clean help

help:
	@echo "make demo   run the PUL demo pipeline on the bundled data (work dir: $(WORK))"
	@echo "make test   run the test suite (the fast part: minutes)"
	@echo "make test-slow  the long tests CI also runs (Ray fault tolerance, resume, sweeps)"
	@echo "make lint   ruff"
	@echo "make bench  run the benchmarks under bench/"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PUL) demo --work $(WORK)

test: $(STAMP)
	$(PY) -m pytest

# The long tests that guard promises (fault tolerance, stop and resume, sweeps); CI runs them.
test-slow: $(STAMP)
	$(PY) -m pytest -m "slow and not slurm and not gpu"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) bench/shards_read.py
	$(PY) bench/track_speed.py
	$(PY) bench/train_throughput.py --quick

clean:
	rm -rf $(VENV) work

# The real 2-node dev Slurm cluster (cluster/dev/README.md): up, down, and its tests.
PUL_SLURM_DIR ?= /tmp/pul-slurm
.PHONY: slurm-up slurm-down test-slurm

slurm-up:
	bash cluster/dev/install.sh
	bash cluster/dev/start.sh $(PUL_SLURM_DIR)

slurm-down:
	bash cluster/dev/stop.sh $(PUL_SLURM_DIR)

test-slurm: $(STAMP) slurm-up
	. $(PUL_SLURM_DIR)/env.sh && PUL_REQUIRE_SLURM=1 $(PY) -m pytest -m slurm
