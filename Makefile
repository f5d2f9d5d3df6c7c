# Two commands matter: `make demo` and `make test`. Both create .venv when it is missing and
# install the package editable with its dev extras, torch pinned through constraints.txt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_WORKERS ?= 2
export OMP_NUM_THREADS ?= 1
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: setup demo test test-fast lab dashboard bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0 -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name workbench --display-name "workbench (.venv)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/python -m workbench.demo

test: setup
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope -q

test-fast: setup
	$(BIN)/python -m pytest -q -x -m "not slow and not browser"

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks

dashboard: setup
	$(BIN)/workbench dashboard

bench: setup
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,bench]'
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache reports/bench/*.json
