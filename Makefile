# Two commands for a new machine:   make demo   |   make test
# Both create .venv, install drsn-edge with a CPU build of torch (never the multi-GB CUDA wheels
# unless you installed torch yourself), and need nothing else: no broker, GPU or data download.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Set TORCH_SPEC= (empty) to keep a torch you installed yourself (CUDA builds, Jetson wheels).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
EXTRAS ?= train,export,ort,demo,dev

.PHONY: setup test demo lint typecheck clean

$(VENV)/.installed: pyproject.toml constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ] && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
	  echo "installing $(TORCH_SPEC) (CPU build)"; \
	$(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"; fi
	$(BIN)/python -m pip install -q $(if $(TORCH_SPEC),-c constraints-cpu.txt) -e ".[$(EXTRAS)]"
	@bash scripts/ensure-mosquitto.sh || true
	touch $@

setup: $(VENV)/.installed

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy runtime export drsn_edge

test: setup lint
	$(BIN)/python -m pytest -q

demo: setup
	$(BIN)/drsn-edge demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
