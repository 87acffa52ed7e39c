"""AOTInductor export: a .pt2 package of compiled C++ (or CUDA) code that C++ loads with
torch::inductor::AOTIModelPackageLoader (csrc/engine/) and Python with aoti_load_package.

The graph is InferenceModule (models/inference.py): four tensor inputs, masks < 0 meaning
"predicted", and a dynamic batch; the norms stay calls of the C++ ops lomit::instance_norm /
lomit::hain, so whoever runs the package must have the ops library loaded (Python: import
lomit_fast.ops.cpp_ops; C++: link liblomit_ops with --no-as-needed). The package's metadata holds
image_size, content_size, value_range, precision, model_config and the version.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..io import atomic_named_path
from ..models import Generator
from ..models.inference import export_program, metadata
from ..ops import BackendError


def export_aoti(generator: Generator, path: str | Path, device: str = "cpu") -> Path:
    """Compile `generator` for `device` into the package `path` (atomically); return the path."""
    from ..ops import cpp_ops
    cpp_ops.require("AOTInductor export")
    if device.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda[:index], got '{device}'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"cannot compile for {device}: no CUDA device here (AOTInductor "
                           f"compiles and checks on the device it targets)")
    path = Path(path)
    if path.suffix != ".pt2":
        raise ValueError(f"an AOTInductor package must end in .pt2, got {path}")
    program = export_program(generator.to(device).eval(), "cpp")
    configs = {"aot_inductor.metadata": metadata(generator, "fp32")}
    with atomic_named_path(path) as tmp:  # the archive's root folder is named after the file
        torch._inductor.aoti_compile_and_package(program, package_path=str(tmp),
                                                 inductor_configs=configs)
    return path
