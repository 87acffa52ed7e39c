"""The fused ops of lomit_fast, each dispatched to a backend (reference | triton | cpp)."""
from .backends import (BackendError, available_backends, known_backends, resolve,
                       unavailable_reason, use_backend)
from .hain import hain
from .instance_norm import instance_norm
from .layer_norm2d import layer_norm2d
from .reference import hain_ref, instance_norm_ref, layer_norm2d_ref

__all__ = ["BackendError", "available_backends", "known_backends", "resolve", "unavailable_reason",
           "use_backend", "hain", "instance_norm", "layer_norm2d", "hain_ref", "instance_norm_ref",
           "layer_norm2d_ref"]
