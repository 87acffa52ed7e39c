# The two README commands. Each sets itself up: a virtual environment with the pinned packages
# (requirements.txt) and the package installed in editable mode with its C++ extension built.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lomit-installed
SOURCES := requirements.txt pyproject.toml setup.py $(wildcard csrc/*.cpp csrc/*/*.cpp csrc/*/*/*.cpp csrc/*/*/*.cu csrc/*/*.h)

.PHONY: demo test setup clean

demo: $(STAMP)  ## the main job: translate a batch of generated images with the shipped model
	$(PY) -m lomit_fast.cli demo --out outputs/demo

test: $(STAMP)  ## the test suite (CPU; Triton kernels through the interpreter)
	$(PY) -m pytest

setup: $(STAMP)

$(STAMP): $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info lomit_fast/*.so outputs
