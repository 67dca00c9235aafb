# One command to run the pipeline, one to test it. Both build .venv on first use,
# installing exactly the versions pinned in constraints.txt.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PIP_VERSION := 26.3
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
RUN_ARGS ?= --dataset adult

export DO_NOT_TRACK := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 60

.PHONY: run test lint bench lock clean

$(PYTHON):
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet pip==$(PIP_VERSION)

$(STAMP): pyproject.toml constraints.txt | $(PYTHON)
	$(PYTHON) -m pip install --quiet -c constraints.txt -e .
	touch $@

$(DEV_STAMP): pyproject.toml constraints.txt | $(PYTHON)
	$(PYTHON) -m pip install --quiet -c constraints.txt -e '.[dev,dask,bench]'
	touch $@ $(STAMP)

run: $(STAMP)
	$(VENV)/bin/fairdistill run $(RUN_ARGS)

test: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Speed and scale benchmarks in their quick configuration (see benchmarks/RESULTS.md);
# reports are written to benchmarks/output/. Expect several minutes on two CPU cores.
bench: $(DEV_STAMP)
	$(PYTHON) -m benchmarks.speed
	$(PYTHON) -m benchmarks.throughput --rows 1000000 --threads 1 --output benchmarks/output/throughput-1-thread.json
	$(PYTHON) -m benchmarks.throughput --rows 1000000 --threads 2 --output benchmarks/output/throughput-2-threads.json
	$(PYTHON) -m benchmarks.scale --sizes 10000 100000 1000000 --threads 1

# Regenerate the lock from the current, tested venv.
lock: $(DEV_STAMP)
	$(PYTHON) -m pip freeze --exclude-editable | grep -v '^fairdistill' > constraints.txt

clean:
	rm -rf .fairdistill
