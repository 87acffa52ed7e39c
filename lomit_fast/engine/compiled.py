"""The CPU's default path: the model compiled by AOTInductor once per model and machine, cached.

On a 2-core x86 CPU this runs the shipped model at 1.5-1.9x the images/s of the C++ ops in eager
PyTorch and ahead of OpenVINO (benchmarks/bench_cpu_peers.py runs them side by side). It is
compiled from the reference ops, so inductor fuses the norms, activations and padding into the
code around the convolutions, with freezing (weights folded in) and channels-last weights (every
convolution then runs in oneDNN's channels-last layout). A package holds two models: one for any
batch, and one for a single image with its weights pre-packed, which the C++ engine runs for
batches of one (and image by image for large images, see IMAGE_BY_IMAGE_BYTES). The first use of
a model costs one compile (~30 s on 2 cores, printed); later uses load the package in well under
a second.

The cache holds code that is run: its folder is created for this user alone, and a package is
loaded only from a folder and file that this user owns and nobody else may write. The key is a
hash of the weights, the model config, the torch and lomit_fast versions and the CPU's vector
instruction set, so a changed model or a copied cache on another CPU compiles afresh.
LOMIT_CACHE_DIR moves the cache (default: $XDG_CACHE_HOME/lomit_fast, else ~/.cache/lomit_fast);
it keeps the KEEP most recently used packages.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import stat
import sys
import time
from pathlib import Path

import torch
from torch._inductor.package import package_aoti

from ..io import atomic_named_path
from ..models import Generator
from ..models.inference import export_program, metadata
from ..ops import BackendError
from ..version import __version__

CACHE_ENV = "LOMIT_CACHE_DIR"
KEEP = 8  # packages the cache keeps, the most recently used (any used within the hour too)
# How a package is made (part of its key: a changed recipe compiles afresh). Channels-last weights
# make inductor keep every convolution channels-last (oneDNN's faster layout on the CPU). Freezing
# (it acts only under no_grad) folds the weights in; only a static batch lets it also store them
# pre-packed in oneDNN's blocked layout, which the single-image model is for (batch 1 is
# latency, and there the per-call weight reorders of the dynamic model cost about a quarter).
RECIPE = ("reference ops, freezing under no_grad, channels-last weights, a batch-1 model, "
          "image by image")
SINGLE_IMAGE_MODEL = "batch1"  # its name in the package; the engine runs it for batches of 1
# Where one input and exemplar's largest activation outgrows a core's L2 cache, a batch gains
# nothing from larger convolutions and loses the pre-packed weights: the engine then runs every
# batch image by image (celeba_128, 8 MiB: 6.6 against 5.8 images/s at batch 8; the shipped
# model, 0.5 MiB, runs batches whole: 400 against 300).
IMAGE_BY_IMAGE_BYTES = 2 << 20


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lomit_fast"


def unavailable_reason() -> str | None:
    """None where a package can be compiled and run here, else why not."""
    from ..ops import cpp_ops  # the C++ engine runs the package
    reason = cpp_ops.unavailable_reason()
    if reason:
        return reason
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        return f"no C++ compiler ({compiler}) to compile the model with"
    return None


def model_key(generator: Generator) -> str:
    """What the compiled code depends on, hashed."""
    from torch._inductor.cpu_vec_isa import pick_vec_isa
    digest = hashlib.sha256()
    about = {"recipe": RECIPE, "config": generator.cfg.__dict__, "torch": torch.__version__,
             "lomit_fast": __version__, "machine": platform.machine(), "isa": str(pick_vec_isa())}
    digest.update(json.dumps(about, sort_keys=True, default=str).encode())
    for name, tensor in generator.state_dict().items():
        tensor = tensor.detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:32]


def _private_folder(folder: Path) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(folder)
    return folder


def _check_private(path: Path) -> None:
    """Refuse a cache entry someone else could have written (it holds code that is run)."""
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise BackendError(f"{path}: not owned by this user or writable by others; the compiled "
                           f"model cache must be private (set {CACHE_ENV} to a folder of yours)")


@contextlib.contextmanager
def _locked(path: Path):
    """One compile per model at a time, across processes (torchrun ranks share the cache)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def compiled_package(generator: Generator) -> Path:
    """The cached .pt2 of `generator` for this CPU, compiled first if it is not there."""
    reason = unavailable_reason()
    if reason:
        raise BackendError(reason)
    folder = _private_folder(cache_dir() / "aoti")
    key = model_key(generator)
    path = folder / f"{key}.pt2"
    with _locked(folder / f"{key}.lock"):
        if not path.is_file():
            _compile(generator, path)
            _prune(folder)
        os.utime(path)  # its use, for _prune
    _check_private(path)
    return path


def _prune(folder: Path) -> None:
    """Bound the cache (each retrained checkpoint is a package of its own)."""
    def used(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except FileNotFoundError:  # pruned by another process meanwhile
            return 0.0
    packages = sorted(folder.glob("*.pt2"), key=used, reverse=True)
    for old in packages[KEEP:]:
        if time.time() - used(old) > 3600:
            old.unlink(missing_ok=True)
            old.with_suffix(".lock").unlink(missing_ok=True)


def _compile(generator: Generator, path: Path) -> None:
    print(f"lomit-fast: compiling the model for this CPU (once; cached in {path.parent})...",
          file=sys.stderr, flush=True)
    start = time.perf_counter()
    plain = Generator(generator.cfg)  # a copy on the CPU; the caller's model is untouched
    plain.load_state_dict({k: v.to("cpu") for k, v in generator.state_dict().items()})
    plain = plain.to(memory_format=torch.channels_last).eval()
    about = metadata(plain, "fp32")
    routing = {"single_image_model": SINGLE_IMAGE_MODEL,  # read by the engine (csrc/engine)
               "image_by_image": str(image_by_image(plain.cfg)).lower()}
    with torch.no_grad():
        files = {"model": _aoti_files(export_program(plain, "reference"), about | routing),
                 SINGLE_IMAGE_MODEL: _aoti_files(export_program(plain, "reference", batch=1),
                                                 about)}
    with atomic_named_path(path) as tmp:
        package_aoti(str(tmp), files)
    os.chmod(path, 0o600)
    print(f"lomit-fast: compiled in {time.perf_counter() - start:.0f} s", file=sys.stderr,
          flush=True)


def image_by_image(cfg) -> bool:
    """Whether the engine should run this model's batches one image at a time (see above)."""
    widest = max(cfg.content_width, cfg.style_width)  # both start at full resolution
    return 2 * widest * cfg.image_size ** 2 * 4 > IMAGE_BY_IMAGE_BYTES


def _aoti_files(program: torch.export.ExportedProgram, about: dict[str, str]) -> list:
    """The files AOTInductor compiles `program` to, for package_aoti."""
    args, kwargs = program.example_inputs
    configs = {"freezing": True, "aot_inductor.package": True, "aot_inductor.metadata": about}
    return torch._inductor.aot_compile(program.module(check_guards=False), args, kwargs,
                                       options=configs)
