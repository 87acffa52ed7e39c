# The two README commands. Each sets itself up: a virtual environment with the pinned packages
# (requirements.txt) and the package installed in editable mode with its C++ extension built.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lomit-installed
SOURCES := requirements.txt pyproject.toml setup.py $(wildcard csrc/*.cpp csrc/*/*.cpp csrc/*/*/*.cpp \
	csrc/*/*/*.cu csrc/*/*.h csrc/*/*/*.h csrc/*/*/*.cuh)

APP := build/app/lomit-translate-cpp
APP_SOURCES := $(wildcard csrc/app/* csrc/engine/* csrc/ops/*.cpp csrc/ops/*.h csrc/ops/cpu/*)
DEBIAN_PACKAGES := cmake g++ libpng-dev libjpeg-dev

.PHONY: demo test setup app debian-packages clean

demo: $(STAMP)  ## the main job: translate a batch of generated images with the shipped model
	$(PY) -m lomit_fast.cli demo --out outputs/demo

test: $(STAMP) $(APP)  ## the test suite (CPU; Triton kernels through the interpreter)
	$(PY) -m pytest

setup: $(STAMP)

$(STAMP): $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $(STAMP)

app: $(APP)  ## the stand-alone C++ translator (csrc/app), against the venv's libtorch

$(APP): $(STAMP) $(APP_SOURCES)
	@$(MAKE) --no-print-directory debian-packages
	cmake -S csrc/app -B build/app -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch; print(torch.utils.cmake_prefix_path)')"
	cmake --build build/app -j $$(nproc)
	touch $(APP)

debian-packages:  ## CMake, a C++ compiler, libpng and libjpeg (apt-get, only when missing)
	@dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES); }

clean:
	rm -rf $(VENV) build *.egg-info lomit_fast/*.so outputs
