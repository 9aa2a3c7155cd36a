# Two commands on a fresh machine: `make train-app` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist
APP_CONFIG ?= configs/fashion_mnist_default.yaml
ARGS ?=

.PHONY: help setup data train-app test test-slow bench export new-app clean

help:
	@echo "make train-app   set up, then train, evaluate and export the default app ($(APP_CONFIG))"
	@echo "make test        set up, then run the fast test suite"
	@echo "make test-slow   the long runs (full trainings)"
	@echo "make bench       benchmarks/ (pipeline vs plain fit)"
	@echo "make export RUN=runs/<app>/<stamp>   export a finished run for TF Serving"
	@echo "make new-app NAME=my_task            scaffold a new task (app, config, test)"
	@echo "ARGS='--set epochs=2' passes extra options to the training command"

$(INSTALLED): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

setup: $(INSTALLED) data

# Real Fashion-MNIST offline: Debian's dataset-fashion-mnist installs the IDX files.
# Without apt (or root) the app falls back to TFDS, which needs internet.
data:
	@if [ -n "$$KAT_DATA_DIR" ] || [ -d $(FASHION_MNIST) ]; then \
		true; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	else \
		echo "note: $(FASHION_MNIST) is missing and apt is not usable; the app will try TFDS (needs internet)."; \
	fi

train-app: setup
	$(PY) -m training train --config $(APP_CONFIG) $(ARGS)

test: setup
	$(PY) -m pytest -q $(ARGS)

test-slow: setup
	$(PY) -m pytest -q -m slow $(ARGS)

bench: setup
	$(PY) benchmarks/pipeline_vs_plain_fit.py $(ARGS)

export: setup
	@test -n "$(RUN)" || { echo "usage: make export RUN=runs/<app>/<stamp> [NAME=model_name]"; exit 2; }
	$(PY) -m training export --run $(RUN) $(if $(NAME),--name $(NAME))

new-app: setup
	@test -n "$(NAME)" || { echo "usage: make new-app NAME=my_task"; exit 2; }
	$(PY) -m training new-app $(NAME)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
