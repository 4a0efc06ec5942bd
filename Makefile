# One entry point: `make test` and `make demo` create .venv when missing, install the pinned
# requirements (again only when a requirements file changed), then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQS := requirements.txt requirements-nodeps.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQS) | sha1sum | cut -c1-12)

.PHONY: test demo venv test-cuda-build

venv: $(STAMP)

$(STAMP): $(REQS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q --upgrade pip
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -r requirements-nodeps.txt
	rm -f $(VENV)/.installed-*
	touch $@

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The demo: Fashion-MNIST (Debian's package when apt works as root, else the dataset tool's
# verified download), the tiny preset on the CPU (or the GPU when present), then an FID of the
# last snapshot. On 2 CPU cores: about a minute of conversion, 4 kimg of training and fid200.
DEMO_DATA ?= datasets/fashion-mnist-32x32.zip
DEMO_KIMG ?= 4
DEMO_METRIC ?= fid200
DEMO_OUTDIR ?= runs

demo: $(STAMP)
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's dataset-fashion-mnist ..."; \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) \
			|| echo "apt-get failed; dataset_tool.py will download Fashion-MNIST instead"; \
	fi
	test -e $(DEMO_DATA) || $(PY) dataset_tool.py --source=fashion-mnist --dest=$(DEMO_DATA)
	$(PY) train.py --outdir=$(DEMO_OUTDIR) --data=$(DEMO_DATA) --cfg=tiny --kimg=$(DEMO_KIMG) --tick=1 --metrics=none
	$(PY) calc_metrics.py --metrics=$(DEMO_METRIC) --network=$$(ls -t $(DEMO_OUTDIR)/*/network-snapshot-*.pkl | head -n 1)

# Compile-only check of the CUDA plugins (no GPU needed): a separate venv with a CUDA build
# of torch, then build and link every plugin with nvcc. A missing toolkit fails, not skips.
CUDA_VENV := .venv-cuda
CUDA_PACKAGES := torch==2.14.1 numpy ninja pytest filelock requests
CUDA_STAMP := $(CUDA_VENV)/.installed-$(shell echo '$(CUDA_PACKAGES)' | sha1sum | cut -c1-12)
CUDA_HOME ?= /usr/local/cuda
TORCH_CUDA_ARCH_LIST ?= 9.0

$(CUDA_STAMP):
	test -x $(CUDA_VENV)/bin/python || $(PYTHON) -m venv $(CUDA_VENV)
	$(CUDA_VENV)/bin/python -m pip install --disable-pip-version-check -q $(CUDA_PACKAGES)
	rm -f $(CUDA_VENV)/.installed-*
	touch $@

test-cuda-build: $(CUDA_STAMP)
	CUDA_HOME=$(CUDA_HOME) TORCH_CUDA_ARCH_LIST="$(TORCH_CUDA_ARCH_LIST)" STYLEFORMER_REQUIRE_CUDA_BUILD=1 \
		$(CUDA_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_custom_ops_build.py
