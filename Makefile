# The two README commands. Each sets itself up: a virtual environment with the pinned packages
# (requirements.txt) and the package installed in editable mode with its C++ extension built.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lomit-installed
SOURCES := requirements.txt pyproject.toml setup.py $(wildcard csrc/*.cpp csrc/*/*.cpp csrc/*/*/*.cpp \
	csrc/*/*/*.cu csrc/*/*.h csrc/*/*/*.h csrc/*/*/*.cuh csrc/cmake/*)

APP := build/app/lomit-translate-cpp
APP_SOURCES := $(wildcard csrc/CMakeLists.txt csrc/cmake/* csrc/app/* csrc/engine/* csrc/ops/*.cpp \
	csrc/ops/*.h csrc/ops/cpu/*)
# LOMIT_PORTABLE=1: the C++ libraries and the app for any x86-64 instead of this CPU (-march=native)
PORTABLE := $(if $(filter 1 ON on yes,$(LOMIT_PORTABLE)),ON,OFF)
PORTABLE_STAMP := build/app/.portable-$(PORTABLE)
# chromium + chromium-driver: the serve page's browser test (headless, driven by selenium)
DEBIAN_PACKAGES := cmake g++ libpng-dev libjpeg-dev chromium chromium-driver

.PHONY: demo test setup app sdk debian-packages clean

demo: $(STAMP)  ## the main job: translate a batch of generated images with the shipped model
	$(PY) -m lomit_fast.cli demo --out outputs/demo

test: $(STAMP) $(APP) debian-packages  ## the test suite (CPU; Triton kernels through the interpreter)
	$(PY) -m pytest

setup: $(STAMP)

$(STAMP): $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $(STAMP)

app: $(APP)  ## the stand-alone C++ translator (csrc/app), against the venv's libtorch

$(APP): $(STAMP) $(APP_SOURCES) $(PORTABLE_STAMP)
	@$(MAKE) --no-print-directory debian-packages
	@# a build folder configured from csrc/app (before the SDK) is configured afresh
	@grep -qsx 'CMAKE_HOME_DIRECTORY:INTERNAL=$(CURDIR)/csrc' build/app/CMakeCache.txt || \
		rm -rf build/app/CMakeCache.txt build/app/CMakeFiles
	cmake -S csrc -B build/app -DCMAKE_BUILD_TYPE=Release -DLOMIT_PORTABLE=$(PORTABLE) \
		-DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch; print(torch.utils.cmake_prefix_path)')"
	cmake --build build/app -j $$(nproc)
	touch $(APP)

$(PORTABLE_STAMP):  # a change of LOMIT_PORTABLE rebuilds
	mkdir -p build/app && rm -f build/app/.portable-* && touch $@

sdk: $(APP)  ## the C++ SDK into PREFIX: headers, liblomit_ops.so, liblomit_engine.so, CMake package
	@test -n "$(PREFIX)" || { echo "make sdk: error: set PREFIX=<folder to install into>" >&2; exit 2; }
	cmake --install build/app --prefix "$(PREFIX)"

debian-packages:  ## CMake, a C++ compiler, libpng, libjpeg, chromium (apt-get, only when missing)
	@dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES); }

clean:
	rm -rf $(VENV) build *.egg-info lomit_fast/*.so lomit_fast/lib lomit_fast/include outputs
