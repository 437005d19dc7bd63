# Two entry points for a fresh machine: `make pipeline` (the whole job) and `make test`.
# Both create .venv when missing and install the pinned dependencies (idempotent).

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.claimtrace-installed
# DVC runs each stage's `python -m pipelines...` with the `python` found on PATH: recipes that
# call dvc put the venv first on PATH (as `source .venv/bin/activate` would), so `make pipeline`
# works from a plain shell and `dvc repro` from an activated venv runs the same commands.
IN_VENV := PATH="$(abspath $(BIN)):$$PATH" VIRTUAL_ENV="$(abspath $(VENV))"

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS ?= 1

.PHONY: install pipeline lint test browser postgres lock clean-venv bench plots-template seed-report

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

# Debian's PostgreSQL server for the team Label Studio test (tests/pg_server.py runs its own
# private cluster from /usr/lib/postgresql/*/bin on a free port; nothing is configured here).
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	    || echo "WARNING: could not install postgresql: the PostgreSQL tests will be skipped"; \
	  else echo "postgresql missing: run 'sudo apt-get install postgresql' (the PostgreSQL tests are skipped)"; fi; \
	fi

pipeline: install
	$(IN_VENV) $(BIN)/dvc repro
	$(BIN)/python -m pipelines.learn.results_table metrics README.md

# ruff settings live in pyproject.toml; `$(BIN)/ruff format .` and `$(BIN)/ruff check --fix .` fix
# most of what these report.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint browser postgres
	$(BIN)/python -m pytest

# Benchmarks (not in `make test`; ~15-25 min on 2 cores): each writes benchmarks/results/<name>.json,
# then the README's bench block is regenerated from those files.
bench: install
	$(BIN)/python -m benchmarks.flops
	$(BIN)/python -m benchmarks.precision --repeats 1  # bf16 is 60-300x slower here: one repeat is minutes
	$(BIN)/python -m benchmarks.train
	$(BIN)/python -m benchmarks.inference
	$(BIN)/python -m benchmarks.runtime
	$(BIN)/python -m benchmarks.span_decoding
	$(BIN)/python -m benchmarks.dvc_noop
	$(BIN)/python -m benchmarks.studio_import
	$(BIN)/python -m benchmarks.report

# The README's seed block: what `predict` finds in the seed article, from a real run of the
# trained models (after `make pipeline`).
seed-report: install
	$(BIN)/python -m pipelines.use.seed_report data/corpus/articles.jsonl README.md

# `dvc plots show` renders offline with tools/dvc-plots/offline.html (plots.html_template in
# .dvc/config): vega, vega-lite and vega-embed inlined from the npm packages pinned in
# tools/dvc-plots/package-lock.json. The built page is committed; rebuild it after changing
# package.json (needs node/npm and the npm registry).
plots-template: install
	cd tools/dvc-plots && npm ci --ignore-scripts --no-audit --no-fund
	$(BIN)/python tools/dvc-plots/build.py

# Regenerate the lock after changing requirements.in (torch and this package are installed apart).
lock:
	$(BIN)/python -m pip freeze --all --exclude-editable | grep -v -E '^(torch|claimtrace)[= ]' > requirements.lock

clean-venv:
	rm -rf $(VENV)
