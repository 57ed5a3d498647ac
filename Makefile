# Customer Center: `make run` starts the whole suite with demo data, `make test` runs every test.
# Both create the virtual environment and install what they need on a fresh machine: the Python
# packages into .venv, and (ops/machine.sh) the Debian packages and services they use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Every component's source folder goes on the venv's path (the Dockerfile sets PYTHONPATH alike).
SOURCE_ROOTS := . services/identity services/licensing services/distribution services/forum gateway
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench lint format definitions clean machine-test machine-run

# Cheap when the machine is ready (a few look-ups); installs with apt-get as root, else says how.
machine-test:
	bash ops/machine.sh test

machine-run:
	bash ops/machine.sh run

$(STAMP): requirements.txt requirements-test.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-test.txt
	site=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  for root in $(SOURCE_ROOTS); do echo "$(CURDIR)/$$root"; done > "$$site/customer_center.pth"
	touch $(STAMP)

run: $(STAMP) machine-run
	$(BIN)/python -m ops.run

test: $(STAMP) machine-test
	$(BIN)/python -m pytest

test-fast: $(STAMP) machine-test
	$(BIN)/python -m pytest -m "not browser and not fault"

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The broker definitions compose loads, generated from the event catalogue.
definitions: $(STAMP)
	mkdir -p deploy/rabbitmq
	$(BIN)/python -m shared.topology > deploy/rabbitmq/definitions.json

clean:
	rm -rf $(VENV) var
