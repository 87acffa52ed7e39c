"""The lomit-fast command line: lomit-fast <command> [options]; `lomit-fast <command> -h` for help."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from .data.images import image_grid, save_png
from .data.synthetic import BACKGROUNDS, HELD_OUT, TRAINING, synthetic_batch
from .models.checkpoint import CheckpointError, load_generator
from .config import ConfigError
from .io import atomic_path
from .ops import BackendError, use_backend
from .ops.reference import upsample_mask
from .version import __version__

DEMO_SEED = 90210  # a synthetic seed never used for training


def locality_report(generator, images: int, device: str = "cpu") -> dict:
    """The locality metrics on held-out images (a seed never trained on) of the training
    background families, and of the held-out families no model is trained on."""
    from .data.locality import evaluate_synthetic
    return {name: evaluate_synthetic(generator, images, device=device, backgrounds=families)
            for name, families in (("training_backgrounds", TRAINING),
                                   ("held_out_backgrounds", HELD_OUT))}


def demo(args: argparse.Namespace) -> int:
    """Translate freshly generated synthetic images with the shipped model: a PNG grid and the
    locality metrics on held-out images."""
    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size}: must be at least 1")
    if args.metrics_images < 0:
        raise ValueError(f"--metrics-images {args.metrics_images}: must be 0 (none) or more")
    torch.manual_seed(args.seed)
    generator = load_generator(args.checkpoint)
    size = generator.cfg.image_size
    inputs = synthetic_batch(args.batch_size, size, seed=DEMO_SEED, index=0,
                             backgrounds=BACKGROUNDS)  # trained-on and held-out families alike
    exemplars = synthetic_batch(args.batch_size, size, seed=DEMO_SEED, index=1,
                                backgrounds=BACKGROUNDS)
    start = time.perf_counter()
    with torch.inference_mode(), use_backend(args.backend):
        output, mask_in, mask_ex = generator.translate(inputs.images, exemplars.images)
    seconds = time.perf_counter() - start
    full = (size, size)
    grid = image_grid([inputs.images, exemplars.images, upsample_mask(mask_in, full) * 2 - 1,
                       upsample_mask(mask_ex, full) * 2 - 1, output],
                      scale=max(1, 192 // size))  # small tiles enlarged, pixel for pixel
    out = Path(args.out)
    save_png(grid, out / "demo_grid.png")
    print(f"translated {args.batch_size} images in {seconds:.2f} s "
          f"({args.batch_size / seconds:.1f} images/s)")
    print(f"wrote {out / 'demo_grid.png'} (rows: input, exemplar, input mask, exemplar mask, "
          "output)")
    if args.metrics_images:
        with use_backend(args.backend):
            metrics = locality_report(generator, args.metrics_images)
        with atomic_path(out / "metrics.json") as tmp:
            tmp.write_text(json.dumps(metrics, indent=2) + "\n")
        for name, values in metrics.items():
            print(f"{name.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
        print(f"wrote {out / 'metrics.json'}")
    return 0


def translate(args: argparse.Namespace) -> int:
    """Batch translation of image files; under torchrun the inputs are sharded over ranks."""
    import torch.distributed as dist

    from .engine.batch import Job, merge_reports, print_failures, run_job, summary
    from .engine.files import list_inputs
    from .engine.translator import GRAPH_BACKENDS, Translator
    positive("--batch-size", args.batch_size)
    if args.workers < 0:
        raise ValueError(f"--workers {args.workers}: must be 0 or more")
    if args.model_file and args.backend not in GRAPH_BACKENDS:
        raise ValueError(f"--model-file is run only by the backends {', '.join(GRAPH_BACKENDS)}; "
                         f"--backend {args.backend} would ignore it")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = args.device
    if world > 1:
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        if device == "cuda":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise ValueError(f"--output {output}: exists and is not a folder")
    inputs = list_inputs(args.input, output)
    if not inputs.files:
        problems = f" ({len(inputs.problems)} unreadable entries)" if inputs.problems else ""
        raise ValueError(f"--input {args.input}: no images to translate{problems}")
    exemplar = Path(args.exemplar)
    exemplars = list_inputs(args.exemplar, output).files if exemplar.is_dir() else [exemplar]
    for path in [*exemplars, *(p for p in (args.mask_in, args.mask_ex) if p)]:
        if not Path(path).exists():
            raise ValueError(f"{path}: no such file or folder")
    translator = Translator.from_checkpoint(args.checkpoint, args.backend, args.precision, device,
                                            model_file=args.model_file)
    if args.size is not None and args.size != translator.cfg.image_size:
        raise ValueError(f"--size {args.size}: this model translates at "
                         f"{translator.cfg.image_size}x{translator.cfg.image_size}")
    mask_in, mask_ex = (Path(p) if p else None for p in (args.mask_in, args.mask_ex))
    job = Job(inputs, exemplars, output, args.pair_mode, mask_in, mask_ex, args.save_masks,
              args.batch_size, args.fit, args.output_size, args.composite, args.workers,
              args.seed, job_settings(args, translator, exemplars), args.overwrite)
    report = run_job(job, translator, rank, world, progress=not args.quiet and rank == 0)
    if world > 1:
        dist.barrier()
        report = merge_reports(output, world) if rank == 0 else report
        dist.destroy_process_group()
    if rank == 0:
        print_failures(report)
        print(summary(report))
    return 1 if report["failed"] else 0


def job_settings(args: argparse.Namespace, translator, exemplars: list[Path]) -> dict:
    """What changes the pixels of a translate job's outputs: kept in its manifest."""
    from .engine.files import digest
    from .models.checkpoint import SHIPPED_MODEL
    files = lambda *paths: digest([Path(p) if p else None for p in paths])  # noqa: E731
    return {"model": files(args.checkpoint or SHIPPED_MODEL), "exemplars": digest(exemplars),
            "model_file": files(args.model_file), "mask_in": files(args.mask_in),
            "mask_ex": files(args.mask_ex), "backend": translator.backend,
            "precision": translator.precision, "pair_mode": args.pair_mode,
            "seed": args.seed if args.pair_mode == "random" else None, "fit": args.fit,
            "output_size": args.output_size, "composite": args.composite,
            "version": __version__}


def positive(flag: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{flag} {value}: must be at least 1")


def export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    start = time.perf_counter()
    if args.format == "tensorrt":
        from .export.tensorrt import TensorRTUnavailable, build_engine, require_tensorrt
        try:
            require_tensorrt()
        except TensorRTUnavailable as e:
            raise ValueError(str(e)) from None
        if args.onnx is None:
            raise ValueError("--format tensorrt builds from an ONNX file: pass --onnx FILE")
        build_engine(args.onnx, out, args.min_batch, args.opt_batch, args.max_batch)
    elif args.format == "onnx":
        from .export.onnx import export_onnx
        export_onnx(load_generator(args.checkpoint), out, fp16=args.fp16)
    elif args.format == "torchscript":
        from .export.torchscript import export_torchscript
        export_torchscript(load_generator(args.checkpoint), out)
    else:
        from .export.aoti import export_aoti
        export_aoti(load_generator(args.checkpoint), out, device=args.device)
    print(f"exported in {time.perf_counter() - start:.1f} s")
    print(f"wrote {out}")
    return 0


def train(args: argparse.Namespace) -> int:
    from .train.trainer import TrainError, train_from_config
    try:
        record = train_from_config(args.config, args.run_dir, args.device, args.resume, args.steps)
    except TrainError as e:
        raise ValueError(str(e)) from e
    print(json.dumps(record))
    return 0


def evaluate(args: argparse.Namespace) -> int:
    if bool(args.config) != bool(args.inception):
        raise ValueError("--inception and --config go together (FID on the config's data); "
                         "without both, eval reports the synthetic locality metrics")
    least = 2 if args.inception else 1  # FID needs two images for a covariance
    if args.images < least:
        raise ValueError(f"--images {args.images}: must be at least {least}")
    generator = load_generator(args.checkpoint, args.device)
    with use_backend(args.backend):
        if args.inception:
            from .eval.fid import fid_of_translations
            report = fid_of_translations(generator, args.config, args.inception, args.images,
                                         args.device)
        else:
            report = locality_report(generator, args.images, args.device)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text(text + "\n")
    return 0


def serve(args: argparse.Namespace) -> int:
    """The HTTP service with dynamic batching, and the mask-painting page at / (engine/serve.py)."""
    try:
        from .engine import serve as service
    except ImportError as e:
        raise ValueError(f"{e.name} is not installed (pip install -e '.[serve]')") from None
    from .engine.translator import Translator
    for flag, value, low in (("--max-batch", args.max_batch, 1), ("--port", args.port, 0),
                             ("--max-wait-ms", args.max_wait_ms, 0),
                             ("--max-upload-mb", args.max_upload_mb, 0.001),
                             ("--max-pixels", args.max_pixels, 1)):
        if value < low:
            raise ValueError(f"{flag} must be at least {low}, got {value}")
    translator = Translator.from_checkpoint(args.checkpoint, args.backend, args.precision,
                                            args.device, model_file=args.model_file)
    limits = service.Limits(int(args.max_upload_mb * 2 ** 20), args.max_pixels)
    app = service.create_app(translator, args.max_batch, args.max_wait_ms, limits, args.checkpoint)
    sock = service.listen(args.host, args.port)
    if not service.is_loopback(args.host):
        print(f"lomit-fast serve: warning: {args.host} is reachable from other machines and the "
              "service has no authentication", file=sys.stderr)
    size = translator.cfg.image_size
    print(f"lomit-fast serve: {service.url(sock)} ({translator.backend}, {size}x{size}, "
          f"max batch {args.max_batch}, max wait {args.max_wait_ms:g} ms); Ctrl-C stops",
          flush=True)
    service.run(app, sock, args.log_level)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lomit-fast", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("demo", help="translate generated images with the shipped model")
    p.add_argument("--out", default="outputs/demo", help="output folder (default: outputs/demo)")
    p.add_argument("--checkpoint", default=None, help="weights file (default: the shipped model)")
    p.add_argument("--batch-size", type=int, default=8, help="images to translate (default: 8)")
    p.add_argument("--backend", default="auto", help="op backend: auto | reference | triton | cpp")
    p.add_argument("--seed", type=int, default=0, help="torch seed (default: 0)")
    p.add_argument("--metrics-images", type=int, default=128,
                   help="held-out images for the locality metrics (0: none; default 128)")
    p.set_defaults(run=demo)

    p = commands.add_parser("translate", help="translate image files with an exemplar")
    p.add_argument("--input", required=True, help="folder, glob pattern or .txt list of images")
    p.add_argument("--exemplar", required=True, help="exemplar image, or a folder of them")
    p.add_argument("--output", required=True, help="output folder (PNG, resumable)")
    p.add_argument("--pair-mode", choices=["one", "cycle", "random"], default="one",
                   help="with an exemplar folder: the first for all, in turn, or at random")
    p.add_argument("--mask-in", default=None, help="input mask PNG, or folder of PNGs named "
                   "like the inputs (replaces the predicted mask: where to translate)")
    p.add_argument("--mask-ex", default=None, help="exemplar mask PNG (what to take)")
    p.add_argument("--save-masks", action="store_true", help="also write both masks as PNG")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--backend", default="auto",
                   help="auto | reference | native | triton | cpp | compile | onnxruntime | "
                        "torchscript | aoti | tensorrt")
    p.add_argument("--model-file", default=None,
                   help="exported file: .onnx for --backend onnxruntime, .plan for tensorrt, "
                        ".pt for torchscript, .pt2 for aoti")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    p.add_argument("--checkpoint", default=None, help="weights file (default: the shipped model)")
    p.add_argument("--size", type=int, default=None, help="check the model's image size")
    p.add_argument("--fit", choices=["resize", "crop"], default="resize",
                   help="bring inputs to the model's size by resizing or centre-cropping")
    p.add_argument("--output-size", choices=["model", "original"], default="model")
    p.add_argument("--composite", action="store_true",
                   help="paste the input back outside its mask (bit-exact background)")
    p.add_argument("--workers", type=int, default=2, help="image-decoding processes")
    p.add_argument("--seed", type=int, default=0, help="seed of --pair-mode random")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true",
                   help="translate every input again, even where outputs of other settings are")
    p.set_defaults(run=translate)

    p = commands.add_parser("export", help="export the generator (ONNX, TensorRT engine, "
                                           "TorchScript, AOTInductor package)")
    p.add_argument("--format", required=True, choices=["onnx", "tensorrt", "torchscript", "aoti"])
    p.add_argument("--out", required=True,
                   help="file to write (atomically): .onnx, .plan (tensorrt), .pt (torchscript), "
                        ".pt2 (aoti)")
    p.add_argument("--checkpoint", default=None, help="weights file (default: the shipped model)")
    p.add_argument("--fp16", action="store_true", help="onnx: an fp16 graph (statistics in fp32)")
    p.add_argument("--onnx", default=None, help="tensorrt: the ONNX file to build from")
    p.add_argument("--min-batch", type=int, default=1)
    p.add_argument("--opt-batch", type=int, default=32)
    p.add_argument("--max-batch", type=int, default=256)
    p.add_argument("--device", default="cpu", help="aoti: compile for cpu or cuda (default: cpu)")
    p.set_defaults(run=export)

    p = commands.add_parser("train", help="train LOMIT from a config (resumable)")
    p.add_argument("--config", required=True, help="YAML config, e.g. configs/synthetic_64.yaml")
    p.add_argument("--run-dir", required=True, help="folder for checkpoints, metrics, samples")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--steps", type=int, default=None, help="stop at this step (default: config)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.set_defaults(run=train)

    p = commands.add_parser("eval", help="locality metrics on held-out synthetic data, or FID")
    p.add_argument("--checkpoint", default=None, help="weights file (default: the shipped model)")
    p.add_argument("--images", type=int, default=512, help="held-out images (default: 512)")
    p.add_argument("--inception", default=None,
                   help="TorchScript feature extractor (N,3,299,299 in [-1,1] -> N,D): FID on the "
                        "test split of --config instead of the synthetic metrics")
    p.add_argument("--config", default=None, help="data config for FID")
    p.add_argument("--out", default=None, help="also write the report here (JSON)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=evaluate)

    p = commands.add_parser("serve", help="HTTP service with dynamic batching, and the page at /")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free one; default 8000)")
    p.add_argument("--checkpoint", default=None, help="weights file (default: the shipped model)")
    p.add_argument("--backend", default="auto", help="as for translate (default: auto)")
    p.add_argument("--model-file", default=None, help="exported file, as for translate")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--max-batch", type=int, default=32, help="requests per batch (default: 32)")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="how long a request waits for batch-mates (default: 5)")
    p.add_argument("--max-upload-mb", type=float, default=20.0,
                   help="largest request body in MiB (default: 20)")
    p.add_argument("--max-pixels", type=int, default=4096 * 4096,
                   help="largest uploaded image in pixels (default: 4096x4096)")
    p.add_argument("--log-level", default="warning",
                   choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level; info also logs each request (default: warning)")
    p.set_defaults(run=serve)
    return parser


def check_device(name: str) -> None:
    """--device names a device this machine has (cpu, cuda, cuda:N)."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name}: not a device (cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name}: lomit-fast runs on cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} "
                         "CUDA device(s)")


def main(argv: list[str] | None = None) -> int:
    """A user's mistake exits 2 with one line naming the file or argument; Ctrl-C exits 130
    (everything written so far is complete: the same command resumes)."""
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "device", None) is not None:
            check_device(args.device)
        return args.run(args)
    except (CheckpointError, ConfigError, BackendError, ValueError, OSError) as e:
        print(f"lomit-fast {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lomit-fast {args.command}: interrupted; what was written is complete, and the "
              "same command resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
