"""The whole product on one device, once (issue 16), as one prepared run:

  build      the extension with its CUDA kernels (pip install -e .)
  tests      every `gpu`-marked test (the C++ ops' CUDA parity and opcheck among them)
  translate  `lomit-fast translate` on a folder of synthetic images with every backend that runs
             on the device, in fp32 and bf16 where the backend allows, and the C++ app on
             exported files; each run's PNGs against the reference fp32 run's
  bench      the bf16/fp32 matmul rate, then bench_generator on celeba_128 and synthetic_64
  train      Trainer.train_step iterations/s (bench_train_step), fp32 and bf16 autocast

    python -m benchmarks.gpu_product --device cuda --out DIR     (benchmarks/gpu_product.sh)
    python -m benchmarks.gpu_product --device cpu --quick --out DIR

Stages run in that order, each as subprocesses under its own cap and all under --budget, and
write results as they go: a run cut short keeps what finished. --quick is the rehearsal: tiny
images and counts, the same code, cases that need CUDA (or minutes of CPU) skipped with the
reason printed. DIR receives 8 files (what the device tool brings back), the device's name in
each: product_<dev>.log (every command and its output's end), stages_<dev>.json,
gpu_tests_<dev>.log, translate_<dev>.csv, matmul_<dev>.csv, generator_product_<dev>.csv/.png
and train_step_<dev>.csv. Exported files and images stay in --work.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

from .bench_generator import plot
from .product_translate import TranslateStage
from .rows import device_name, result_row, slug, triton_version, write_rows

STAGES = ("build", "tests", "translate", "bench", "train")
# Seconds on a GPU: at most CAPS per stage, and RESERVE kept back for each later stage, so an
# overrunning stage cannot starve the rest of the run.
CAPS = {"build": 240, "tests": 180, "translate": 240, "bench": 420, "train": 90}
RESERVE = {"build": 60, "tests": 45, "translate": 90, "bench": 120, "train": 45}
PY = sys.executable


class Skip(Exception):
    """A stage or case that does not run here; the message says why."""


class Product(TranslateStage):
    def __init__(self, args):
        self.args, self.device, self.quick = args, args.device, args.quick
        self.cuda = self.device.startswith("cuda")
        self.out, self.work = Path(args.out), Path(args.work)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)
        self.tag = slug(device_name(self.device))
        self.deadline = time.monotonic() + args.budget
        self.stage_end = self.deadline
        self.status: dict[str, dict] = {}
        self.ref_diff: dict[str, int] = {}  # precision -> reference run's max diff from fp32

    # --- plumbing -------------------------------------------------------------------------
    def log(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {text}"
        print(line, flush=True)
        with open(self.out / f"product_{self.tag}.log", "a") as f:
            f.write(line + "\n")

    def spawn(self, cmd: list, env: dict | None = None) -> tuple:
        """cmd started in the background, in its own process group (a timeout ends its children
        too: pytest workers, compilers), its output to a file in --work."""
        self.jobs = getattr(self, "jobs", 0) + 1
        log = self.work / "logs" / f"{self.jobs:03d}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log("$ " + " ".join(map(str, cmd)))
        with open(log, "w") as f:
            proc = subprocess.Popen(list(map(str, cmd)), stdout=f, stderr=subprocess.STDOUT,
                                    process_group=0, env={**os.environ, **(env or {})})
        return proc, log

    def wait(self, job: tuple, keep: Path | None = None, tail: int = 40) -> tuple[int, str]:
        """(exit status, output) of a spawned job, ended at the stage's time limit (124)."""
        proc, log = job
        try:
            rc = proc.wait(timeout=max(1.0, self.stage_end - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            rc = 124
        output = log.read_text(errors="replace") + ("\n(cut: the stage's time is spent)"
                                                    if rc == 124 else "")
        if keep is not None:
            keep.write_text(output)
        lines = output.rstrip().splitlines()
        with open(self.out / f"product_{self.tag}.log", "a") as f:
            f.write("".join(f"    {s}\n" for s in lines[-tail:]) + f"    (exit {rc})\n")
        return rc, output

    def run(self, cmd: list, keep: Path | None = None, env: dict | None = None,
            tail: int = 40) -> tuple[int, str]:
        if self.stage_end - time.monotonic() < 5:
            return 124, "not started: the stage's time is spent"
        return self.wait(self.spawn(cmd, env), keep, tail)

    def stage(self, name: str, fn) -> None:
        if name not in self.args.stages:
            return
        cap = 120 if self.quick else CAPS[name]
        later = STAGES[STAGES.index(name) + 1:]
        keep_back = sum(RESERVE[s] for s in later if s in self.args.stages)
        self.stage_end = min(self.deadline - keep_back, time.monotonic() + cap)
        start = time.monotonic()
        if self.stage_end - start < 20:
            state, note = "skipped", "the run's --budget is spent"
        else:
            self.log(f"=== stage {name} (at most {self.stage_end - start:.0f} s)")
            try:
                state, note = "ok", fn() or ""
            except Skip as e:
                state, note = "skipped", str(e)
            except Exception as e:  # noqa: BLE001  (recorded; the next stage still runs)
                state, note = "failed", f"{type(e).__name__}: {e}"
                self.log(traceback.format_exc())
        self.status[name] = {"state": state, "note": note,
                             "seconds": round(time.monotonic() - start, 1)}
        self.log(f"stage {name}: {state} {note}")
        (self.out / f"stages_{self.tag}.json").write_text(json.dumps(
            {"device": device_name(self.device), "torch": torch.__version__,
             "quick": self.quick, "stages": self.status}, indent=2) + "\n")

    def extension_has_cuda(self) -> bool:
        rc, _ = self.run([PY, "-c", "import sys; from lomit_fast.ops import cpp_ops; "
                          "sys.exit(0 if cpp_ops.built_with_cuda() else 1)"])
        return rc == 0

    # --- 1. build and tests ---------------------------------------------------------------
    def build(self) -> str:
        """The extension (pip) and the C++ app (cmake, as `make app` does; make's venv and
        apt-get steps need a network the GPU machine lacks), compiled side by side."""
        if self.quick:
            raise Skip("quick: the installed extension and build/app are used (the CUDA build "
                       "needs a CUDA torch, and a rebuild takes minutes on 2 cores)")
        configure = ["-DCMAKE_BUILD_TYPE=Release",
                     f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"]
        env = {}
        if self.cuda:  # this card's architecture only: the fastest compile, no PTX JIT
            from torch.utils.cpp_extension import CUDA_HOME
            major, minor = torch.cuda.get_device_capability()
            env["TORCH_CUDA_ARCH_LIST"] = f"{major}.{minor}"
            configure.append(f"-DCMAKE_CUDA_ARCHITECTURES={major}{minor}")
            if CUDA_HOME:  # the toolkit the extension build uses, for both builds
                configure.append(f"-DCMAKE_CUDA_COMPILER={CUDA_HOME}/bin/nvcc")
        app_job = self.spawn(["bash", "-c", f"cmake -S csrc -B build/app {' '.join(configure)}"
                              f" && cmake --build build/app -j {os.cpu_count()}"], env)
        if self.cuda and self.extension_has_cuda():
            note = "extension already built with CUDA kernels (a warm machine)"
        else:
            pip = [PY, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "-e",
                   "."]
            rc, _ = self.run(pip, env={**env, "MAX_JOBS": str(os.cpu_count())}, tail=80)
            if rc != 0:  # the Triton and reference paths still run without it
                self.run(pip, env={"LOMIT_BUILD_EXT": "0"})
                note = f"the extension build FAILED (exit {rc}): installed without it"
            elif self.cuda and not self.extension_has_cuda():
                note = "the extension built, but WITHOUT CUDA kernels (no CUDA_HOME?)"
            else:
                note = "extension built" + (" with CUDA kernels" if self.cuda else "")
        rc, output = self.wait(app_job, tail=30)
        self.app = Path("build/app/lomit-translate-cpp") if rc == 0 else \
            f"app build failed (exit {rc}): {output.strip()[-200:]}"
        note += "; app built" if rc == 0 else "; app build FAILED"
        if "FAILED" in note or "WITHOUT" in note:
            raise RuntimeError(note)
        return note

    def tests(self) -> str:
        paths = ["tests/ops/test_registration.py"] if self.quick else ["tests"]
        workers = []
        if not self.quick and self.run([PY, "-c", "import xdist"])[0] == 0:
            workers = ["-n", "8"]  # Triton compiles dominate: spread them over processes
        log = self.out / f"gpu_tests_{self.tag}.log"
        rc, output = self.run([PY, "-m", "pytest", "-m", "gpu", "-q", "-rfEs",
                               "-p", "no:cacheprovider", *workers, *paths], keep=log, tail=5)
        summary = output.strip().splitlines()[-1] if output.strip() else "(no output)"
        if rc not in (0, 5):  # 5: nothing collected
            raise RuntimeError(f"exit {rc}: {summary}")
        return summary

    def why_not(self, name: str, backend: str, precision: str) -> str | None:
        if backend == "triton" and not self.cuda:
            return "Triton runs on CUDA only (the CPU has its interpreter alone)"
        if self.quick and backend == "compile":
            return "quick: torch.compile takes minutes on 2 CPU cores"
        if self.quick and name.endswith("aoti"):
            return "quick: the AOTInductor compile takes a minute on 2 cores"
        if self.quick and backend in ("native", "cpp"):
            return "quick: left out for time (the op backends share the reference's code path)"
        return None

    # --- 3. generator benchmark -------------------------------------------------------------
    def matmul(self) -> float:
        """The measured bf16 matmul rate in FLOP/s (and fp32's: torch's default, no TF32)."""
        from .harness import time_us
        n = 512 if self.quick else 8192
        rates, rows = {}, []
        for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
            a, b = (torch.randn(n, n, device=self.device, dtype=dtype) for _ in range(2))
            times = time_us(lambda: torch.matmul(a, b), "cuda" if self.cuda else "cpu")
            rates[dtype] = 2 * n ** 3 / (times[1] * 1e-6)
            rows.append(result_row("matmul", "torch.matmul", self.device, shape=f"{n}x{n}x{n}",
                                   dtype=name, times_us=times,
                                   tflops=round(rates[dtype] / 1e12, 3)))
            del a, b
        write_rows(self.out / f"matmul_{self.tag}.csv", rows)
        self.log(f"matmul {n}^3: bf16 {rates[torch.bfloat16] / 1e12:.2f} TFLOP/s, fp32 "
                 f"{rates[torch.float32] / 1e12:.2f} TFLOP/s")
        return rates[torch.bfloat16]

    def bench_plan(self) -> list[tuple[str, str, str, str]]:
        """(config, precision, backends, batches), what the targets need first: celeba_128's
        bf16 and fp32 grids, torch.compile of the stock model (the baseline) and of ours, then
        the shipped synthetic_64 model, then the AOTI exports (a long compile each)."""
        celeba, synthetic = "configs/celeba_128.yaml", "configs/synthetic_64.yaml"
        every, pair = "1,8,32,64,128,256", "1,128"
        if self.quick:  # one model at 16x16, the same code path
            from lomit_fast.config import load_config, save_config
            from .bench_train_step import shrink
            cfg = load_config(celeba)
            shrink(cfg.model, 16)
            celeba, every, pair = str(self.work / "celeba_128.yaml"), "1,2", "1"
            save_config(cfg, celeba)
            self.log(f"skip {synthetic}: quick: one model (the same code path)")
        fast = "triton,cpp" if self.cuda else "cpp"
        # compile: a graph per (batch, exemplar batch), so two batches: the target's and 1
        plan = [(celeba, "bf16", f"reference,{fast}", every),
                (celeba, "fp32", f"reference,{fast}", every),
                (celeba, "bf16", "compile-stock", pair), (celeba, "bf16", "compile", pair)]
        if not self.quick:
            plan += [(synthetic, "bf16", f"reference,{fast}", every),
                     (synthetic, "fp32", f"reference,{fast}", every),
                     (synthetic, "bf16", "compile", pair), (celeba, "fp32", "aoti", every),
                     (synthetic, "fp32", "aoti", every)]
        return plan

    def bench(self) -> str:
        matmul = self.matmul()
        merged = self.out / f"generator_product_{self.tag}.csv"
        merged.unlink(missing_ok=True)
        rows, failed = [], []
        plan = self.bench_plan()
        for i, (config, precision, backends, batches) in enumerate(plan):
            case = f"bench {i}/{len(plan)}: {Path(config).stem} {precision} {backends}"
            reason = self.why_not(backends, backends.removesuffix("-stock"), precision)
            if i < self.args.bench_from:  # a rerun: measured by the run before
                reason = f"--bench-from {self.args.bench_from}"
            if reason:
                self.log(f"skip {case}: {reason}")
                continue
            self.log(case)
            folder = self.work / "generator" / f"{i:02d}"
            shutil.rmtree(folder, ignore_errors=True)
            rc, _ = self.run([PY, "-m", "benchmarks.bench_generator", "--config", config,
                              "--device", self.device, "--precision", precision, "--backends",
                              backends, "--batches", batches, "--seconds",
                              0.05 if self.quick else 0.2, "--out", folder], tail=60)
            if rc != 0:
                failed.append(f"{Path(config).stem} {precision} {backends} (exit {rc})")
            for path in folder.glob("generator_*.csv"):  # what it measured, cut or not
                with open(path, newline="") as f:
                    new = [r | {"bf16_matmul_tflops": round(matmul / 1e12, 3),
                                "pct_of_bf16_matmul": round(float(r["achieved_tflops"]) * 1e14
                                                            / matmul, 2)}
                           for r in csv.DictReader(f)]
                if new:
                    write_rows(merged, new, append=True)
                    rows += new
        if rows:
            plot(rows, merged.with_suffix(".png"))
        if failed:
            raise RuntimeError(f"{len(rows)} rows; failed: {'; '.join(failed)}")
        return f"{len(rows)} rows"

    # --- 4. training speed ------------------------------------------------------------------
    def train(self) -> str:
        tiny = ["--image-size", "32", "--batch-size", "2", "--steps", "1",
                "--configs", "configs/synthetic_64.yaml"] if self.quick else []
        rc, output = self.run([PY, "-m", "benchmarks.bench_train_step", "--device", self.device,
                               "--out", self.out, *tiny], tail=12)
        if rc != 0:
            raise RuntimeError(f"exit {rc}: {output.strip()[-300:]}")
        return "; ".join(s for s in output.splitlines() if "it/s" in s or s.startswith("skip"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes and counts (the CPU rehearsal)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"of {','.join(STAGES)}")
    parser.add_argument("--budget", type=float, default=480, help="seconds for the whole run")
    parser.add_argument("--bench-from", type=int, default=0,
                        help="start the bench plan at this case (a rerun after a cut)")
    parser.add_argument("--out", default="benchmarks/results/product")
    parser.add_argument("--work", default="build/gpu_product", help="exports, images, raw CSVs")
    args = parser.parse_args(argv)
    args.stages = args.stages.split(",")
    unknown = set(args.stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}; known: {', '.join(STAGES)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available here")
    product = Product(args)
    product.log(f"{device_name(args.device)}, torch {torch.__version__} (CUDA "
                f"{torch.version.cuda}), triton {triton_version()}, stages {','.join(args.stages)}"
                f", budget {args.budget:.0f} s{', quick' if args.quick else ''}")
    if product.cuda and shutil.which("nvidia-smi"):
        product.run(["nvidia-smi", "--format=csv,noheader",
                     "--query-gpu=name,memory.total,driver_version,clocks.max.sm"])
    for name in STAGES:
        product.stage(name, getattr(product, name))
    return 0 if all(s["state"] != "failed" for s in product.status.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
