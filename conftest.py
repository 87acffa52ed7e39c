"""Root pytest config. Without a GPU, Triton kernels run through the interpreter: the variable is
read when @triton.jit decorates a kernel, so it is set here, before any kernel module is imported."""
import os
import shutil
import tempfile

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# The compiled-model cache (lomit_fast/engine/compiled.py) of this run, in a folder of its own: the
# tests never touch the user's cache, and the CLI subprocesses share one compile per model.
CACHE = os.environ["LOMIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="lomit-test-cache-")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(CACHE, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
