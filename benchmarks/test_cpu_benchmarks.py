"""CPU benchmarks with pytest-benchmark (ratios within one run; the machines are shared):

    .venv/bin/python -m pytest benchmarks/test_cpu_benchmarks.py --benchmark-enable \
        --benchmark-columns=median,iqr,rounds --benchmark-sort=name

- one training step (critic + generator, every LOMIT loss) at 64x64, batch 8;
- the fused ops on performance.md's shapes scaled down, per op backend that runs on the CPU;
- the synthetic_64 generator's translation of a batch of 8, per op backend.
"""
import pytest
import torch

from lomit_fast import Generator, ops
from lomit_fast.config import load_config
from lomit_fast.ops.reference import hain_ref, instance_norm_ref
from lomit_fast.train.trainer import Trainer

CPU_BACKENDS = [b for b in ("reference", "native") if b in ops.available_backends("cpu")]
SHAPES = [(8, 64, 32, 32), (8, 64, 16, 16), (2, 64, 64, 64), (1, 16, 128, 128)]


@pytest.fixture(autouse=True)
def no_grad_by_default():
    with torch.no_grad():
        yield


def test_train_step_64px_batch8(benchmark, tmp_path):
    cfg = load_config("configs/synthetic_64.yaml")
    cfg.train.batch_size = 8
    trainer = Trainer(cfg, tmp_path / "run")
    batches = list(trainer.source.batches(0, 3))
    with torch.enable_grad():
        benchmark.pedantic(trainer.train_step, args=batches[0], rounds=3, warmup_rounds=1)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("backend", CPU_BACKENDS + ["compile"])
def test_hain(benchmark, backend, shape):
    n, c, h, w = shape
    args = (torch.randn(shape), torch.rand(n, 1, h, w), torch.randn(n, c), torch.rand(n, c) + .1,
            torch.randn(n, c), torch.rand(n, c) + .1)
    fn = torch.compile(hain_ref) if backend == "compile" else \
        (lambda *a: ops.hain(*a, backend=backend))
    torch.testing.assert_close(fn(*args), hain_ref(*args), atol=1e-4, rtol=1e-4)
    benchmark(fn, *args)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("backend", CPU_BACKENDS + ["compile"])
def test_instance_norm(benchmark, backend, shape):
    x, w, b = torch.randn(shape), torch.randn(shape[1]), torch.randn(shape[1])
    fn = torch.compile(instance_norm_ref) if backend == "compile" else \
        (lambda *a: ops.instance_norm(*a, activation="relu", backend=backend))
    if backend == "compile":
        fn = (lambda f: lambda *a: f(*a, activation="relu"))(fn)
    torch.testing.assert_close(fn(x, w, b), instance_norm_ref(x, w, b, activation="relu"),
                               atol=1e-4, rtol=1e-4)
    benchmark(fn, x, w, b)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_generator_batch8(benchmark, backend):
    torch.manual_seed(0)
    generator = Generator(load_config("configs/synthetic_64.yaml").model).eval()
    x = torch.rand(8, 3, 64, 64) * 2 - 1
    with ops.use_backend(backend):
        benchmark(generator.translate, x, x.flip(0))
