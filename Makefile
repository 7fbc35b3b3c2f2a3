# Two commands on a fresh clone (Python 3.11, pip, gcc; no ROS install needed):
#   make demo   installs into .venv, starts the node on the embedded model, streams frames, writes out/*.png
#   make test   installs into .venv and runs the test suite
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install demo test test-jazzy lint bench evaluate clean

$(BIN)/.installed: setup.py requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/anomaly-seg demo --out out

# Static checks first (lint, format, types, layer contracts: a broken layer fails CI), then the suite with
# line coverage of the package (ROS 2 Kilted wheels, numpy 2), then the suite again on ROS 2 Jazzy wheels with
# numpy 1.26 in .venv-jazzy. pytest exits 5 when it collected no test; say so plainly.
test: install lint
	@$(BIN)/python -m pytest -q --cov=anomaly_seg_ros --cov-report=term test; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo 'pytest collected no tests'; exit 0; fi; exit $$rc
	PYTHON=$(PYTHON) bash test/jazzy_check.sh

# The suite on ROS 2 Jazzy + numpy 1.26 only (.venv-jazzy, installed from requirements-jazzy.txt when missing or stale)
test-jazzy:
	PYTHON=$(PYTHON) bash test/jazzy_check.sh

lint: install
	bash test/py310_check.sh
	$(BIN)/ruff check anomaly_seg_ros test launch
	$(BIN)/ruff format --check anomaly_seg_ros test launch
	$(BIN)/mypy anomaly_seg_ros
	$(BIN)/lint-imports

bench: install
	$(BIN)/anomaly-seg bench

evaluate: install
	$(BIN)/anomaly-seg evaluate --model default --count 200 --seed 1000 --size 1024x512

clean:
	rm -rf $(VENV) .venv-jazzy out build *.egg-info
