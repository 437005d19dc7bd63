# Two entry points for a fresh machine: `make pipeline` (the whole job) and `make test`.
# Both create .venv when missing and install the pinned dependencies (idempotent).

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.claimtrace-installed

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS ?= 1

.PHONY: install pipeline lint test browser lock clean-venv bench

# torch first, on its own: `torch==2.13.0` takes the CPU wheel from the machine's local wheel
# folder, while resolving it together with the rest could pull a multi-GB CUDA build.
# requirements.lock pins the whole tree and is installed with --no-deps (see requirements.in).
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q --no-deps -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

install: $(STAMP)

# Debian's chromium for the browser test (the Playwright browser download cannot work offline).
# Under CLAIMTRACE_NO_SKIPS=1 (CI: .ci/run) a missing chromium stops `make test` here, since the
# browser test is the only proof of offsets against the real UI; elsewhere the test is skipped.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "could not install chromium with apt-get"; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ -n "$${CLAIMTRACE_NO_SKIPS:-}" ] && [ "$${CLAIMTRACE_NO_SKIPS}" != 0 ]; then \
	    echo "ERROR: /usr/bin/chromium is missing and CLAIMTRACE_NO_SKIPS is set (CI): the browser test must run; install chromium (apt-get install chromium, as root)" >&2; \
	    exit 1; \
	  elif [ "$$(id -u)" = 0 ]; then echo "WARNING: chromium missing: the browser test will be skipped"; \
	  else echo "chromium missing: run 'sudo apt-get install chromium' (the browser test is skipped)"; fi; \
	fi

pipeline: install
	$(BIN)/dvc repro
	$(BIN)/python -m pipelines.learn.results_table metrics README.md

# ruff settings live in pyproject.toml; `$(BIN)/ruff format .` and `$(BIN)/ruff check --fix .` fix
# most of what these report.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint browser
	$(BIN)/python -m pytest

# Benchmarks (not in `make test`; ~15-25 min on 2 cores): each writes benchmarks/results/<name>.json,
# then the README's bench block is regenerated from those files.
bench: install
	$(BIN)/python -m benchmarks.flops
	$(BIN)/python -m benchmarks.train
	$(BIN)/python -m benchmarks.inference
	$(BIN)/python -m benchmarks.dvc_noop
	if [ -f benchmarks/studio_import.py ]; then $(BIN)/python benchmarks/studio_import.py; fi
	$(BIN)/python -m benchmarks.report

# Regenerate the lock after changing requirements.in (torch and this package are installed apart).
lock:
	$(BIN)/python -m pip freeze --all --exclude-editable | grep -v -E '^(torch|claimtrace)[= ]' > requirements.lock

clean-venv:
	rm -rf $(VENV)
