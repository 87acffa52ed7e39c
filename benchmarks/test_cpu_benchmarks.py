"""CPU benchmarks with pytest-benchmark (ratios within one run; the machines are shared):

    .venv/bin/python -m pytest benchmarks/test_cpu_benchmarks.py --benchmark-enable \
        --benchmark-columns=median,iqr,rounds --benchmark-sort=name

- one training step (critic + generator, every LOMIT loss) at 64x64, batch 8;
- the fused ops (hain, instance_norm, layer_norm2d) on performance.md's shapes scaled down, per op backend that runs on the CPU and
  torch.compile of the reference, in NCHW and channels-last; hain forward+backward;
- the synthetic_64 generator's translation of a batch of 8, per op backend.
"""
import pytest
import torch

from lomit_fast import Generator, ops
from lomit_fast.config import load_config
from lomit_fast.ops.reference import hain_ref, instance_norm_ref, layer_norm2d_ref
from lomit_fast.train.trainer import Trainer

CPU_BACKENDS = [b for b in ("reference", "native", "cpp") if b in ops.available_backends("cpu")]
SHAPES = [(8, 64, 32, 32), (8, 64, 16, 16), (2, 64, 64, 64), (1, 16, 128, 128)]
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


@pytest.fixture(autouse=True)
def no_grad_by_default():
    with torch.no_grad():
        yield


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_train_step_64px_batch8(benchmark, tmp_path, backend):
    cfg = load_config("configs/synthetic_64.yaml")
    cfg.train.batch_size = 8
    trainer = Trainer(cfg, tmp_path / "run")
    batches = list(trainer.source.batches(0, 3))
    with torch.enable_grad(), ops.use_backend(backend):
        benchmark.pedantic(trainer.train_step, args=batches[0], rounds=3, warmup_rounds=1)


def hain_inputs(shape, layout):
    n, c, h, w = shape
    content = torch.randn(shape).contiguous(memory_format=LAYOUTS[layout])
    return (content, torch.rand(n, 1, h, w), torch.randn(n, c), torch.rand(n, c) + .1,
            torch.randn(n, c), torch.rand(n, c) + .1)


def op_function(op, reference, backend, **kwargs):
    """The op on `backend`, or torch.compile of the reference for "compile"."""
    if backend == "compile":
        compiled = torch.compile(reference)
        return lambda *a: compiled(*a, **kwargs)
    return lambda *a: op(*a, **kwargs, backend=backend)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("backend", CPU_BACKENDS + ["compile"])
def test_hain(benchmark, backend, shape, layout):
    args = hain_inputs(shape, layout)
    fn = op_function(ops.hain, hain_ref, backend)
    torch.testing.assert_close(fn(*args), hain_ref(*args), atol=1e-4, rtol=1e-4)
    benchmark(fn, *args)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("backend", CPU_BACKENDS + ["compile"])
def test_instance_norm(benchmark, backend, shape, layout):
    x = torch.randn(shape).contiguous(memory_format=LAYOUTS[layout])
    w, b = torch.randn(shape[1]), torch.randn(shape[1])
    fn = op_function(ops.instance_norm, instance_norm_ref, backend, activation="relu")
    torch.testing.assert_close(fn(x, w, b), instance_norm_ref(x, w, b, activation="relu"),
                               atol=1e-4, rtol=1e-4)
    benchmark(fn, x, w, b)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("backend", CPU_BACKENDS + ["compile"])
def test_layer_norm2d(benchmark, backend, shape, layout):
    """The decoder's norm (reference, native = torch's group_norm; cpp serves it with the
    reference, so its row shows the fallback's cost)."""
    x = torch.randn(shape).contiguous(memory_format=LAYOUTS[layout])
    w, b = torch.randn(shape[1]), torch.randn(shape[1])
    fn = op_function(ops.layer_norm2d, layer_norm2d_ref, backend, activation="relu")
    torch.testing.assert_close(fn(x, w, b), layer_norm2d_ref(x, w, b, activation="relu"),
                               atol=1e-4, rtol=1e-4)
    benchmark(fn, x, w, b)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_hain_forward_backward(benchmark, backend, shape):
    """Training's view: forward and every gradient (the C++ backward against autograd's)."""
    leaves = [t.requires_grad_() for t in hain_inputs(shape, "nchw")]
    grad = torch.randn(shape)

    def step():
        with torch.enable_grad():
            torch.autograd.grad(ops.hain(*leaves, backend=backend), leaves, grad)
    benchmark(step)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_generator_batch8(benchmark, backend):
    torch.manual_seed(0)
    generator = Generator(load_config("configs/synthetic_64.yaml").model).eval()
    x = torch.rand(8, 3, 64, 64) * 2 - 1
    with ops.use_backend(backend):
        benchmark(generator.translate, x, x.flip(0))
