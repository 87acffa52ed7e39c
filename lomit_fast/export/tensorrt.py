"""TensorRT: a serialized engine built from the exported ONNX graph (engine/runners.py runs it).

Written against TensorRT's documented Python API (10.x/11.x: explicit batch, named I/O tensors,
strongly typed networks where precision lives in the ONNX graph). Nothing here runs without
`import tensorrt`; the parts that need no TensorRT (profile shapes, I/O names read from the ONNX
file) are plain functions so that they are tested everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..io import atomic_path
from ..models.inference import INPUTS
from ..optional import TensorRTUnavailable, require_tensorrt  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class Profile:
    """min / opt / max shapes of every input for one optimisation profile over the batch."""
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]


def io_names(onnx_path: str | Path) -> tuple[list[str], list[str], dict[str, list]]:
    """Input names, output names and input shapes (symbolic dims as names) of an ONNX file."""
    import onnx

    path = Path(onnx_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    model = onnx.load(str(path), load_external_data=False)
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa
    inputs = {v.name: dims(v) for v in model.graph.input}
    return list(inputs), [v.name for v in model.graph.output], inputs


def graph_with_required_inputs(onnx_path: str | Path) -> bytes:
    """The ONNX file with its optional inputs (mask_in, mask_ex: initializers that are also
    inputs, default -1) made plain inputs: TensorRT would take them as fixed weights, and the
    runner feeds every input."""
    import onnx

    model = onnx.load(str(onnx_path))
    inputs = {v.name for v in model.graph.input}
    weights = [t for t in model.graph.initializer if t.name not in inputs]
    del model.graph.initializer[:]
    model.graph.initializer.extend(weights)
    return model.SerializeToString()


def batch_profile(onnx_path: str | Path, min_batch: int, opt_batch: int,
                  max_batch: int) -> Profile:
    """An optimisation profile that lets the symbolic batch axis range over [min, max]."""
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise ValueError(f"batch profile needs 1 <= min <= opt <= max, got "
                         f"{min_batch}, {opt_batch}, {max_batch}")
    names, _, shapes = io_names(onnx_path)
    if names != list(INPUTS):
        raise ValueError(f"{onnx_path}: inputs {names} are not lomit_fast's {list(INPUTS)}")
    profile = {}
    for name, dims in shapes.items():
        if isinstance(dims[0], int) and dims[0] > 0:
            raise ValueError(f"{onnx_path}: input {name} has a fixed batch of {dims[0]}; "
                             "export with a dynamic batch")
        rest = tuple(int(d) for d in dims[1:])
        profile[name] = ((min_batch, *rest), (opt_batch, *rest), (max_batch, *rest))
    return Profile(profile)


def build_engine(onnx_path: str | Path, engine_path: str | Path, min_batch: int = 1,
                 opt_batch: int = 32, max_batch: int = 256, workspace_gib: float = 4.0,
                 timing_cache: str | Path | None = None) -> Path:
    """Parse the ONNX file, build a serialized engine for the batch range, write it atomically."""
    trt = require_tensorrt()
    profile_shapes = batch_profile(onnx_path, min_batch, opt_batch, max_batch)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):  # precision from the graph
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(graph_with_required_inputs(onnx_path), str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT could not parse the graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile_shapes.shapes.items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    cache = None
    if timing_cache is not None:
        data = Path(timing_cache).read_bytes() if Path(timing_cache).is_file() else b""
        cache = config.create_timing_cache(data)
        config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"{onnx_path}: TensorRT failed to build an engine")
    with atomic_path(engine_path) as tmp:
        tmp.write_bytes(bytes(serialized))
    if cache is not None:
        with atomic_path(timing_cache) as tmp:
            tmp.write_bytes(bytes(cache.serialize()))
    return Path(engine_path)
