# One entry point: `make test` and `make demo` create .venv when missing, install the pinned
# requirements (again only when a requirements file changed), then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQS := requirements.txt requirements-nodeps.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQS) | sha1sum | cut -c1-12)

.PHONY: test test-all demo venv test-cuda-build

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
