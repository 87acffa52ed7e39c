"""Optional dependencies: import them, or explain how to get them.

TensorRT and onnxruntime are needed only by the paths that build or run their files; the rest of
lomit_fast works without them. Both the exporters and the engine's runners ask here, so a
missing package is reported the same way everywhere.
"""
from __future__ import annotations


class TensorRTUnavailable(RuntimeError):
    pass


def require_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise TensorRTUnavailable(
            "TensorRT is not installed here (import tensorrt fails; its wheels come from NVIDIA's "
            "index). Export ONNX instead (--format onnx) and build the engine where TensorRT "
            "is installed, e.g. trtexec --onnx=model.onnx --saveEngine=model.plan") from None
    return tensorrt


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("onnxruntime is not installed (pip install 'lomit_fast[onnx]')") from None
    return onnxruntime
