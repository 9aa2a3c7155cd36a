# Two commands on a fresh machine: `make train-app` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SERVING_INSTALLED := $(VENV)/.serving-installed
BENCH_INSTALLED := $(VENV)/.bench-installed
TORCH_INSTALLED := $(VENV)/.torch-installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist
PRESET ?= fashion_mnist_default
ARGS ?=

.PHONY: help setup data browser train-app train-multiworker test test-slow test-jax test-torch test-installed lint bench results export serve new-app clean

help:
	@echo "make train-app   set up, then train, evaluate and export the default app (--preset $(PRESET))"
	@echo "make train-multiworker   the default app on 2 localhost workers (1 epoch)"
	@echo "make test        set up, then run the fast test suite"
	@echo "make test-slow   the long runs (full trainings)"
	@echo "make browser     Debian's chromium, for the report page's browser test (CI runs it)"
	@echo "make test-jax    the layers' and models' Keras contract tests under the JAX backend"
	@echo "make test-torch  the apps that train under PyTorch: train, export, serve (installs torch)"
	@echo "make test-installed   build the wheel, install it in a fresh venv, follow the README's library steps"
	@echo "make lint        ruff over the whole tree (pyproject.toml has its rules)"
	@echo "make results     re-run every config of the README's results table (about 70 min) -> README"
	@echo "make bench       every benchmark in benchmarks/ (hours) -> benchmarks/RESULTS.md"
	@echo "make export RUN=runs/<app>/<stamp> [FORMAT=litert QUANTIZE=int8]   export a finished run"
	@echo "make serve       serve export/ with TF Serving (or the local stand-in) on :8501"
	@echo "make new-app NAME=my_task            scaffold a new task (app, config, test)"
	@echo "ARGS='--set epochs=2' passes extra options to the training command"

$(INSTALLED): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

setup: $(INSTALLED) data

# The TF Serving stand-in and its client (serving/): `make serve` and the tests need them.
$(SERVING_INSTALLED): $(INSTALLED)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,serving]'
	touch $@

# PyTorch for `make test-torch` only: the CPU build of the torch extra is about 190 MB.
$(TORCH_INSTALLED): $(SERVING_INSTALLED)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,serving,torch]'
	touch $@

# The benchmarks compare with scikit-learn and read statsmodels' data sets; the library needs neither.
$(BENCH_INSTALLED): $(INSTALLED)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $@

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

# A headless browser for the report page's test (tests/test_report_page.py, skipped without
# one): Debian's chromium. CI installs it; `make test` does not need it.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		true; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "note: no chromium and apt is not usable: the report page's browser test will be skipped"; \
	fi

train-app: setup
	$(PY) -m training train --preset $(PRESET) $(ARGS)

# Two workers on this machine (MultiWorkerMirroredStrategy over localhost): the same
# command on each, with its --task-index; worker 0 is the chief and writes the run.
MW_PORTS = $(shell $(PYTHON) -c "import socket as s;a=[s.socket() for _ in '12'];[x.bind(('localhost',0)) for x in a];print(','.join('localhost:%d' % x.getsockname()[1] for x in a))")
train-multiworker: setup
	@workers="$(MW_PORTS)"; echo "workers: $$workers"; \
	$(PY) -m training train --preset $(PRESET) --set epochs=1 $(ARGS) --workers $$workers --task-index 1 > multiworker-1.log 2>&1 & \
	$(PY) -m training train --preset $(PRESET) --set epochs=1 $(ARGS) --workers $$workers --task-index 0; \
	status=$$?; wait $$! || status=1; echo "worker 1's output: multiworker-1.log"; exit $$status

# Worker processes for the fast suite (pytest-xdist); 1 runs it in this process.
TEST_WORKERS ?= 2
test: setup $(SERVING_INSTALLED)
	$(PY) -m pytest -q -n $(TEST_WORKERS) $(ARGS)

test-slow: setup $(SERVING_INSTALLED)
	$(PY) -m pytest -q -m slow $(ARGS)

# The backend job: the layers and model builders under KERAS_BACKEND=jax (the apps' JAX runs,
# train + export + serving contract, are in tests/test_backends.py of `make test`). The RBM's
# and the fused BatchNorm's other tests check TF kernels and tf.GradientTape, TF's alone.
JAX_TESTS := tests/test_layers.py tests/test_models.py tests/test_rbm.py::RBMLayerContractTest \
	tests/test_batch_normalization.py::ContractTest \
	tests/test_batch_norm_statistics.py::test_recomputed_statistics_are_the_population_moments_and_frozen_layers_keep_theirs
test-jax: setup
	KERAS_BACKEND=jax $(PY) -m pytest -q -n $(TEST_WORKERS) $(JAX_TESTS) $(ARGS)

# The PyTorch job: the tests marked `torch` (each trains and exports in a KERAS_BACKEND=torch process).
test-torch: setup $(TORCH_INSTALLED)
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m torch $(ARGS)

# The package as users install it: sdist and wheel (twine check), then the README's "Use it as a
# library" commands in a fresh virtual environment outside the checkout, timed.
test-installed: $(INSTALLED)
	.ci/installed_path

lint: $(INSTALLED)
	$(PY) -m ruff check .

# Every benchmark (or BENCHMARKS="a b"), then benchmarks/RESULTS.md, its charts and the
# README table (benchmarks/report.py). A failed one fails the target; its row says nan or not run.
BENCHMARKS ?= input_pipeline hardware_efficiency fused_batch_norm mixed_precision rbm_vs_sklearn \
	serving_latency serving_load serving_warmup_batching accuracy_vs_time forecast_vs_naive \
	dbn_semi_supervised folder_vs_idx transfer small_data imbalance multi_label litert_int8 backends
results: setup
	$(PY) benchmarks/results_table.py $(ARGS)

bench: setup $(SERVING_INSTALLED) $(BENCH_INSTALLED)
	@failed=""; \
	for b in $(BENCHMARKS); do \
		echo "== benchmarks/$$b.py"; rm -f benchmarks/results/$$b.json; \
		$(PY) benchmarks/$$b.py || failed="$$failed $$b"; \
	done; \
	$(PY) benchmarks/report.py; \
	if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

export: setup
	@test -n "$(RUN)" || { echo "usage: make export RUN=runs/<app>/<stamp> [NAME=model_name] [FORMAT=saved_model|litert] [QUANTIZE=none|dynamic|float16|int8]"; exit 2; }
	$(PY) -m training export --run $(RUN) $(if $(NAME),--name $(NAME)) $(if $(FORMAT),--format $(FORMAT)) $(if $(QUANTIZE),--quantize $(QUANTIZE))

# TF Serving if installed, else its Docker image, else our REST stand-in (same flags).
EXPORT_DIR ?= export
# Batching as in serving/batching_parameters.txt (its comments say why each value).
SERVE_FLAGS = --rest_api_port=8501 --port=8500 --model_config_file=$(abspath $(EXPORT_DIR))/models.config \
	--enable_batching=true --batching_parameters_file=$(abspath serving/batching_parameters.txt)
serve: setup $(SERVING_INSTALLED)
	@test -f $(EXPORT_DIR)/models.config || { echo "No $(EXPORT_DIR)/models.config: run make train-app (or make export) first"; exit 2; }
	@if command -v tensorflow_model_server >/dev/null 2>&1; then \
		tensorflow_model_server $(SERVE_FLAGS); \
	elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
		docker run --rm -p 8500:8500 -p 8501:8501 -v $(abspath $(EXPORT_DIR)):$(abspath $(EXPORT_DIR)) \
			-v $(abspath serving/batching_parameters.txt):$(abspath serving/batching_parameters.txt):ro \
			tensorflow/serving $(SERVE_FLAGS); \
	else \
		echo "tensorflow_model_server and docker are not available: serving with the local REST stand-in"; \
		$(PY) -m training serve $(SERVE_FLAGS); \
	fi

new-app: $(INSTALLED)
	@test -n "$(NAME)" || { echo "usage: make new-app NAME=my_task"; exit 2; }
	$(PY) -m training new-app $(NAME)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
