"""Backend registry: which implementations of the fused ops exist here, and which one to use.

A backend is a name, the device types it runs on, a probe that says why it is unavailable (or
None when it is available) and a loader returning {stem: implementation}. Every implementation
has the signature of its reference in ops/reference.py.

Choosing a backend, strongest first: the `backend=` argument of an op; the `use_backend(name)`
context manager; the LOMIT_BACKEND environment variable; otherwise "auto", the first available
backend in AUTO_ORDER for the tensor's device type.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import torch

from . import reference
from .errors import BackendError

ENV_VAR = "LOMIT_BACKEND"
# Preference per device type; a backend appears only where it is expected to be the fastest.
AUTO_ORDER = {"cuda": ("triton", "cpp", "reference"), "cpu": ("cpp", "reference")}


@dataclass(frozen=True)
class Backend:
    name: str
    device_types: tuple[str, ...] | Callable[[], tuple[str, ...]]  # a callable is asked lazily
    probe: Callable[[], str | None]           # None when available, else the reason it is not
    load: Callable[[], Mapping[str, Callable]]  # {stem: implementation}


_BACKENDS: dict[str, Backend] = {}
_status_cache: dict[str, str | None] = {}
_impl_cache: dict[str, Mapping[str, Callable]] = {}
_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("lomit_backend", default=None)


def register_backend(backend: Backend) -> None:
    _BACKENDS[backend.name] = backend
    _status_cache.pop(backend.name, None)
    _impl_cache.pop(backend.name, None)


def known_backends() -> list[str]:
    return list(_BACKENDS)


def unavailable_reason(name: str) -> str | None:
    """None when backend `name` can run on this machine, else a sentence saying why not."""
    if name not in _BACKENDS:
        return f"unknown backend '{name}' (known: {', '.join(_BACKENDS)})"
    if name not in _status_cache:
        try:
            _status_cache[name] = _BACKENDS[name].probe()
        except Exception as e:  # a probe must never take the package down with it
            _status_cache[name] = f"probe failed: {type(e).__name__}: {e}"
    return _status_cache[name]


def device_types(name: str) -> tuple[str, ...]:
    """The device types backend `name` runs on (asked of the backend on first use)."""
    types = _BACKENDS[name].device_types
    return types() if callable(types) else types


def available_backends(device_type: str | None = None) -> list[str]:
    return [name for name in _BACKENDS
            if unavailable_reason(name) is None
            and (device_type is None or device_type in device_types(name))]


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the ops inside the block on backend `name` (or "auto") unless a call names one."""
    if name != "auto" and name not in _BACKENDS:
        raise BackendError(unavailable_reason(name))
    token = _override.set(name)
    try:
        yield
    finally:
        _override.reset(token)


def resolve(requested: str, device_type: str) -> str:
    """The backend that serves a call with backend=`requested` on a tensor of `device_type`."""
    name = requested
    if name == "auto":
        name = _override.get() or os.environ.get(ENV_VAR, "").strip() or "auto"
    if name == "auto":
        for candidate in AUTO_ORDER.get(device_type, ("reference",)):
            if candidate in _BACKENDS and unavailable_reason(candidate) is None:
                return candidate
        return "reference"
    reason = unavailable_reason(name)
    if reason is not None:
        source = "" if requested != "auto" else (
            " (chosen by use_backend)" if _override.get() else f" (chosen by ${ENV_VAR})")
        raise BackendError(f"backend '{name}'{source} is not available: {reason}")
    if device_type not in device_types(name):
        raise BackendError(f"backend '{name}' does not run on {device_type} tensors "
                           f"(it runs on: {', '.join(device_types(name))})")
    return name


def implementation(stem: str, requested: str, device_type: str) -> Callable:
    name = resolve(requested, device_type)
    if name not in _impl_cache:
        _impl_cache[name] = _BACKENDS[name].load()
    impls = _impl_cache[name]
    if stem in impls:
        return impls[stem]
    # A backend need not fuse every op; the spec serves the rest.
    return getattr(reference, f"{stem}_ref")


def _reference_ops() -> Mapping[str, Callable]:
    return {"instance_norm": reference.instance_norm_ref, "hain": reference.hain_ref,
            "layer_norm2d": reference.layer_norm2d_ref}


register_backend(Backend("reference", ("cpu", "cuda", "meta"), lambda: None, _reference_ops))


def _native_ops() -> Mapping[str, Callable]:
    from . import native
    return native.IMPLEMENTATIONS


# torch's own norm kernels: what exports to ONNX as InstanceNormalization. Never chosen by auto.
register_backend(Backend("native", ("cpu", "cuda", "meta"), lambda: None, _native_ops))


def _triton_probe() -> str | None:
    import importlib.util

    from torch.utils._triton import has_triton
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (pip install 'lomit_fast[triton]')"
    if os.environ.get("TRITON_INTERPRET") == "1":
        return None  # kernels run on CPU tensors through the interpreter
    if not torch.cuda.is_available():
        return "no CUDA device (set TRITON_INTERPRET=1 to run the kernels on the CPU, slowly)"
    if not has_triton():
        return "triton cannot drive this GPU (torch.utils._triton.has_triton() is False)"
    return None


def _triton_ops() -> Mapping[str, Callable]:
    from . import triton_ops
    return triton_ops.IMPLEMENTATIONS


def _triton_devices() -> tuple[str, ...]:
    return ("cuda", "cpu") if os.environ.get("TRITON_INTERPRET") == "1" else ("cuda",)


register_backend(Backend("triton", _triton_devices, _triton_probe, _triton_ops))


def _cpp_probe() -> str | None:
    from . import cpp_ops
    return cpp_ops.unavailable_reason()


def _cpp_ops() -> Mapping[str, Callable]:
    from . import cpp_ops
    return cpp_ops.IMPLEMENTATIONS


def _cpp_devices() -> tuple[str, ...]:
    """CPU always; CUDA where the extension was compiled with its CUDA kernels."""
    from . import cpp_ops
    return ("cpu", "cuda") if cpp_ops.built_with_cuda() else ("cpu",)


# The extension is loaded on the first question about this backend, not on import.
register_backend(Backend("cpp", _cpp_devices, _cpp_probe, _cpp_ops))
