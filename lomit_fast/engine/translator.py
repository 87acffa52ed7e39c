"""The inference engine: a trained generator behind one call, on the fastest path this machine has.

    t = Translator.from_checkpoint(path=None, backend="auto", precision="fp32", device="cpu")
    images, mask_in, mask_ex = t.translate(x, exemplar)          # x in [-1, 1], (N, 3, S, S)
    cache = t.cache_exemplar(exemplar)                           # one exemplar for many inputs
    images, _, _ = t.translate(x, cache)

Backends, one vocabulary with lomit_fast.ops: the op backends reference (the spec), native
(torch's own norm kernels), triton (fused kernels, CUDA) and cpp (the C++ ops of lomit_fast._C)
run the PyTorch generator on those ops; compile (torch.compile), onnxruntime (an exported ONNX
graph), tensorrt (a serialized engine, where TensorRT is installed), torchscript and aoti (an
exported .pt / .pt2 file run by the C++ engine) run their own graph. auto on the CPU (fp32) is
aoti on a package compiled for this CPU once per model and cached (engine/compiled.py: ~25 s the
first time, printed); where that cannot be built, and elsewhere, it is the registry's rule
(lomit_fast.ops.resolve): triton on a GPU, cpp where the extension is built, else the reference. Whatever is chosen runs on every path: the exemplar cache is used only by the op
backends (where it is exact); the graph backends get the cached exemplar broadcast instead.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from ..models import Generator
from ..models.checkpoint import SHIPPED_MODEL, load_generator
from ..ops import BackendError, available_backends, known_backends, resolve, use_backend
from .runners import OnnxRunner, TensorRTRunner, cpp_engine

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
GRAPH_BACKENDS = ("compile", "onnxruntime", "torchscript", "aoti", "tensorrt")
ENGINE_FILES = {"torchscript": ".pt", "aoti": ".pt2"}  # run by the C++ engine


@dataclass
class ExemplarCache:
    """What an exemplar contributes that does not depend on the input: its content code, the
    channel attention it gives the input's mask, and (with a fixed exemplar mask) its
    foreground style. Exact: cached and uncached translations are the same numbers."""
    image: Tensor                  # (1, 3, S, S)
    content: Tensor                # (1, C, s, s)
    attention: Tensor              # (1, C) attention for the input's mask
    mask: Optional[Tensor] = None  # (1, 1, s, s) fixed exemplar mask, if given
    style: Optional[Tensor] = None  # (1, style_dim) foreground style under that mask


class Translator:
    def __init__(self, generator: Generator, backend: str = "auto", precision: str = "fp32",
                 device: str | torch.device = "cpu", model_file: str | None = None):
        self.device = torch.device(device)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got '{precision}'")
        if precision == "fp16" and self.device.type == "cpu":
            raise ValueError("precision fp16 needs a CUDA device (use bf16 on the CPU)")
        self.precision = precision
        self.generator = generator.to(self.device).eval()
        self.cfg = generator.cfg
        self.model_file = model_file
        if backend == "auto" and self.device.type == "cpu" and precision == "fp32":
            backend = self._compiled_default()
        self.backend = self._resolve(backend)
        # Channels-last convolutions are faster on GPUs and (mkldnn) on CPUs; the reference
        # stays the plain model that the others are measured against.
        self.channels_last = self.backend != "reference"
        if self.channels_last:
            self.generator = self.generator.to(memory_format=torch.channels_last)
        self._compiled = None
        self._runner = None  # an exported graph: onnxruntime session or TensorRT engine
        if self.backend == "compile":
            # One graph per batch bucket (and exemplar/mask shape): past dynamo's default limit
            # of 8 per function it would run eager silently, still reported as "compile".
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
            mode = "reduce-overhead" if self.device.type == "cuda" else None  # CUDA graphs
            self._compiled = torch.compile(self._forward, dynamic=False, mode=mode)
        elif self.backend == "onnxruntime":
            self._runner = OnnxRunner(model_file, self.device)
        elif self.backend == "tensorrt":
            self._runner = TensorRTRunner(model_file)
        elif self.backend in ENGINE_FILES:
            self._runner = self._cpp_engine(self.model_file)

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, backend: str = "auto",
                        precision: str = "fp32", device: str | torch.device = "cpu",
                        model_file: str | None = None) -> "Translator":
        """A translator for the weights at `path` (default: the shipped model); `model_file` is
        the exported graph the onnxruntime (.onnx) and tensorrt (engine) backends run."""
        return cls(load_generator(path or SHIPPED_MODEL), backend, precision, device, model_file)

    # --- backend choice -------------------------------------------------------------------
    def _resolve(self, backend: str) -> str:
        known = ["auto", *known_backends(), *GRAPH_BACKENDS]
        if backend not in known:
            raise BackendError(f"unknown backend '{backend}' (known: {', '.join(known)})")
        if backend in GRAPH_BACKENDS:
            return backend
        return resolve(backend, self.device.type)  # the registry's auto rule and checks

    def _compiled_default(self) -> str:
        """auto on the CPU: the model compiled for this CPU and cached (engine/compiled.py),
        run by the C++ engine as 'aoti'; where it cannot be built, the registry's rule."""
        from .compiled import compiled_package, unavailable_reason
        if unavailable_reason():
            return "auto"
        try:
            self.model_file = str(compiled_package(self.generator))
        except Exception as e:  # inductor and the compiler raise many types; auto goes on
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            print(f"lomit-fast: the compiled CPU path is unavailable ({reason}); running the "
                  "C++ ops instead", file=sys.stderr)
            return "auto"
        return "aoti"

    def _cpp_engine(self, model_file: str | None):
        """The C++ engine on an exported file, checked against this translator's model."""
        suffix = ENGINE_FILES[self.backend]
        if self.precision != "fp32":
            raise BackendError(f"backend '{self.backend}' runs the file as exported (fp32), "
                               f"not at precision {self.precision}")
        if model_file is None or Path(model_file).suffix != suffix:
            raise BackendError(f"backend '{self.backend}' needs an exported {suffix} file "
                               f"(lomit-fast export --format {self.backend}), got {model_file}")
        try:
            engine = cpp_engine(model_file, str(self.device))
        except (RuntimeError, ValueError) as e:
            raise BackendError(str(e)) from None
        if engine.image_size != self.cfg.image_size:
            size = self.cfg.image_size
            raise BackendError(f"{model_file} translates {engine.image_size}x{engine.image_size} "
                               f"images, the checkpoint {size}x{size}")
        return engine

    def _triton_on_gpu(self) -> bool:
        # Not on the CPU: there Triton runs only through its (slow) interpreter.
        return self.device.type == "cuda" and "triton" in available_backends("cuda")

    @property
    def op_backend(self) -> str:
        """The op backend the generator's layers run on; compile traces the Triton ops on a GPU
        (triton_op is visible to inductor) and the reference elsewhere."""
        if self.backend == "compile":
            return "triton" if self._triton_on_gpu() else "reference"
        return "reference" if self.backend in GRAPH_BACKENDS else self.backend

    @property
    def caches_exemplars(self) -> bool:
        """Whether translate() uses an ExemplarCache's precomputed pieces (exact, and faster);
        the graph backends run their whole graph with the cached exemplar instead."""
        return self.backend not in GRAPH_BACKENDS

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    # --- translation ----------------------------------------------------------------------
    def _forward(self, x: Tensor, exemplar: Tensor, mask_in: Optional[Tensor],
                 mask_ex: Optional[Tensor]):
        return self.generator.translate(x, exemplar, mask_in, mask_ex)

    def _prepare(self, t: Optional[Tensor]) -> Optional[Tensor]:
        """On this device, fp32 (any floating input: the precision is the translator's), in
        the layout the backend wants. Non-tensors and integer tensors pass on to the checks."""
        if not isinstance(t, Tensor):
            return t
        t = t.to(self.device, torch.float32 if t.is_floating_point() else t.dtype,
                 non_blocking=True)
        return t.contiguous(memory_format=torch.channels_last) if (
            self.channels_last and t.shape[1] == 3) else t

    @torch.no_grad()  # not inference_mode: torch.compile cannot trace inference tensors
    def cache_exemplar(self, exemplar: Tensor, mask_ex: Optional[Tensor] = None) -> ExemplarCache:
        """Precompute what one exemplar (1, 3, S, S) contributes to every translation."""
        gen = self.generator
        gen.check_images("exemplar", exemplar)
        if exemplar.shape[0] != 1:
            raise ValueError(f"cache_exemplar takes one exemplar, got a batch of {exemplar.shape[0]}")
        exemplar = self._prepare(exemplar)
        with use_backend(self.op_backend), self._autocast():
            content = gen.content(exemplar)
            attention = gen.mask_net.attention(content)
            mask = style = None
            if mask_ex is not None:
                mask = gen.prepare_mask("mask_ex", self._prepare(mask_ex), exemplar, content)
                style = gen.style_foreground(exemplar, mask)
        return ExemplarCache(exemplar, content, attention, mask, style)

    @torch.no_grad()  # not inference_mode: torch.compile cannot trace inference tensors
    def translate(self, x: Tensor, exemplar: Tensor | ExemplarCache,
                  mask_in: Optional[Tensor] = None, mask_ex: Optional[Tensor] = None):
        """(images, input masks, exemplar masks) for inputs x (N, 3, S, S) in [-1, 1]. The
        exemplar is a batch (N or 1), or an ExemplarCache; given masks replace predicted ones."""
        x, exemplar = self._prepare(x), self._prepare(exemplar)  # a cache passes through
        mask_in, mask_ex = self._prepare(mask_in), self._prepare(mask_ex)
        if not self.caches_exemplars:  # a graph runs unchecked: check here what it gets
            self.check_inputs(x, exemplar, mask_in, mask_ex)
        if isinstance(exemplar, ExemplarCache) and not self.caches_exemplars:
            # The graph runs whole: the exemplar (and its fixed mask) broadcast over the batch.
            exemplar, mask_ex = exemplar.image, exemplar.mask if mask_ex is None else mask_ex
        if isinstance(exemplar, ExemplarCache):
            out = self._translate_cached(x, exemplar, mask_in)
        elif self._runner is not None:
            out = self._runner.run(x, exemplar, mask_in, mask_ex)
        elif self._compiled is not None:
            out = self._run_bucketed(x, exemplar, mask_in, mask_ex)
        else:
            with use_backend(self.op_backend), self._autocast():
                out = self._forward(x, exemplar, mask_in, mask_ex)
        return tuple(t.float() for t in out)

    def check_inputs(self, x: Tensor, exemplar, mask_in: Optional[Tensor],
                     mask_ex: Optional[Tensor]) -> None:
        """What the PyTorch generator checks (shapes, dtypes, values in range, no NaN), for the
        backends that hand the tensors to a graph instead."""
        gen = self.generator
        gen.check_images("x", x)
        if not isinstance(exemplar, ExemplarCache):
            gen.check_images("exemplar", exemplar)
            gen.broadcast_batch("exemplar", exemplar, x.shape[0])
        for name, mask in (("mask_in", mask_in), ("mask_ex", mask_ex)):
            if mask is not None:
                gen.check_mask(name, mask, x.shape[0])

    def _run_bucketed(self, x: Tensor, exemplar: Tensor, mask_in: Optional[Tensor],
                      mask_ex: Optional[Tensor]):
        """Compiled graphs (CUDA graphs on GPU) for fixed batch buckets, powers of two: a batch
        is padded up to its bucket by repeating its last row, and the padding cut off after."""
        n = x.shape[0]
        bucket = 1 << (n - 1).bit_length()

        def pad(t: Optional[Tensor]) -> Optional[Tensor]:
            if t is None or t.shape[0] != n or bucket == n:
                return t
            return torch.cat([t, t[-1:].expand(bucket - n, *t.shape[1:])])

        with use_backend(self.op_backend), self._autocast():
            out = self._compiled(pad(x), pad(exemplar), pad(mask_in), pad(mask_ex))
        return tuple(t[:n] for t in out)

    def _translate_cached(self, x: Tensor, cache: ExemplarCache, mask_in: Optional[Tensor]):
        gen = self.generator
        gen.check_images("x", x)
        n = x.shape[0]
        with use_backend(self.op_backend), self._autocast():
            c_in = gen.content(x)
            if mask_in is not None:
                m_in = gen.prepare_mask("mask_in", mask_in, x, c_in)
            else:
                m_in = gen.mask_from_attention(c_in, cache.attention.expand(n, -1))
            c_ex = cache.content.expand(n, *cache.content.shape[1:])
            if cache.mask is not None:
                m_ex = cache.mask.expand(n, -1, -1, -1)
                styles = cache.style.expand(n, -1), gen.style_background(x, m_in)
            else:  # the exemplar's mask depends on the input: per input, as uncached
                m_ex = gen.mask(c_ex, c_in)
                styles = gen.translation_styles(cache.image.expand(n, -1, -1, -1), m_ex, x, m_in)
            image = gen.decode(c_in, m_in, *styles)
        return image, m_in, m_ex
