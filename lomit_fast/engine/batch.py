"""Batch translation of image files: the `lomit-fast translate` job.

Never loses or corrupts an output: each PNG is written to a temporary name and renamed, so a
killed run leaves only complete files, and a rerun skips the outputs that are already there.
Inputs are never written to; an output folder inside the input folder is not read as input. Bad
images are converted where that is meaningful (grayscale, palette, RGBA, 16-bit) and otherwise
reported by name and skipped; a JSON report lists every failure. Under torchrun each rank takes
every world_size-th input and writes its own report part; rank 0 merges them.
"""
from __future__ import annotations

import glob
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..data.images import IMAGE_SUFFIXES, from_uint8, read_mask, read_rgb, save_png, to_uint8
from ..io import atomic_path
from ..ops.reference import upsample_mask
from .translator import Translator


@dataclass
class Job:
    inputs: list[Path]
    roots: list[Path | None]       # the folder each input was listed from (keeps sub-paths)
    exemplars: list[Path]
    output: Path
    pair_mode: str = "one"         # one | cycle | random
    mask_in: Path | None = None    # a PNG for every input, or a folder of PNGs named like them
    mask_ex: Path | None = None
    save_masks: bool = False
    batch_size: int = 16
    fit: str = "resize"            # resize | crop (centre) to the model's size
    output_size: str = "model"     # model | original
    composite: bool = False        # paste the input back outside the input mask
    workers: int = 2
    seed: int = 0
    report: dict = field(default_factory=dict)


def list_inputs(spec: str, output: Path) -> tuple[list[Path], list[Path | None]]:
    """Images named by a folder, a glob pattern or a text file with one path per line."""
    path = Path(spec)
    out = output.resolve()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                       and out not in p.resolve().parents)
        return files, [path] * len(files)
    if path.is_file() and path.suffix.lower() in (".txt", ".lst"):
        lines = [s.strip() for s in path.read_text().splitlines() if s.strip()]
        return [Path(s) for s in lines], [None] * len(lines)
    if path.is_file():
        return [path], [None]
    files = sorted(Path(p) for p in glob.glob(spec, recursive=True)
                   if Path(p).suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"--input {spec}: no such folder, list file or matching images")
    return files, [None] * len(files)


def output_names(job: Job) -> list[Path]:
    """<output>/<path below the input folder>.png, or <stem>.png (numbered if names repeat)."""
    names, seen = [], set()
    for path, root in zip(job.inputs, job.roots):
        rel = path.relative_to(root).with_suffix(".png") if root else Path(path.stem + ".png")
        stem, k = rel.with_suffix(""), 1
        while rel in seen:
            rel, k = Path(f"{stem}_{k}.png"), k + 1
        seen.add(rel)
        names.append(job.output / rel)
    return names


def is_complete_png(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
        return True
    except (OSError, SyntaxError):
        return False


def fit_image(array: np.ndarray, size: int, mode: str) -> np.ndarray:
    image = Image.fromarray(array)
    if mode == "crop":
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    return np.asarray(image.resize((size, size), Image.BICUBIC))


class InputImages(Dataset):
    """Decodes (in worker processes) the inputs: (index, image at model size, original size,
    input mask or empty, error message or '')."""

    def __init__(self, job: Job, indices: list[int], size: int):
        self.job, self.indices, self.size = job, indices, size

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int):
        i = self.indices[k]
        path = self.job.inputs[i]
        try:
            array = read_rgb(path)
            mask = torch.empty(0)
            if self.job.mask_in is not None:
                mask_path = (self.job.mask_in if self.job.mask_in.is_file()
                             else self.job.mask_in / (path.stem + ".png"))
                mask = mask_tensor(read_mask(mask_path), self.size, self.job.fit)[0]
            return (i, from_uint8(fit_image(array, self.size, self.job.fit))[0],
                    torch.tensor(array.shape[:2]), mask, "")
        except (ValueError, OSError) as e:  # reported by the main process, never raised here
            mask = torch.zeros(1, self.size, self.size) if self.job.mask_in else torch.empty(0)
            return i, torch.zeros(3, self.size, self.size), torch.tensor([0, 0]), mask, str(e)


def mask_tensor(mask: np.ndarray, size: int, fit: str) -> torch.Tensor:
    """(H, W) float mask in [0, 1] -> (1, 1, size, size), fitted like the images."""
    fitted = fit_image((mask * 255 + 0.5).astype(np.uint8), size, fit)
    return torch.from_numpy(np.array(fitted, np.float32) / 255)[None, None]


def load_exemplars(job: Job, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    images = torch.cat([from_uint8(fit_image(read_rgb(p), size, job.fit)) for p in job.exemplars])
    mask = mask_tensor(read_mask(job.mask_ex), size, job.fit) if job.mask_ex else None
    return images, mask


def exemplar_index(job: Job, i: int, rng: random.Random) -> int:
    if job.pair_mode == "one":
        return 0
    if job.pair_mode == "cycle":
        return i % len(job.exemplars)
    return rng.randrange(len(job.exemplars))


def write_outputs(job: Job, names, indices, images, originals, out, m_in, m_ex) -> None:
    size = images.shape[-1]
    for j, i in enumerate(indices):
        result = out[j:j + 1]
        mask_full = upsample_mask(m_in[j:j + 1], (size, size))
        if job.composite:  # the input's own pixels outside its mask, bit-exact at model size
            result = mask_full * result + (1 - mask_full) * images[j:j + 1]
        array = to_uint8(result)[0]
        if job.output_size == "original":
            h, w = originals[j].tolist()
            array = np.asarray(Image.fromarray(array).resize((w, h), Image.BICUBIC))
        save_png(array, names[i])
        if job.save_masks:
            stem = names[i].with_suffix("")
            save_png(to_uint8(mask_full * 2 - 1)[0], Path(f"{stem}_mask_in.png"))
            save_png(to_uint8(upsample_mask(m_ex[j:j + 1], (size, size)) * 2 - 1)[0],
                     Path(f"{stem}_mask_ex.png"))


def run_job(job: Job, translator: Translator, rank: int = 0, world: int = 1,
            progress: bool = True) -> dict:
    """Translate every input of `job` not yet done; returns (and writes) the report."""
    size = translator.cfg.image_size
    names = output_names(job)
    mine = list(range(rank, len(job.inputs), world))
    todo = [i for i in mine if not (names[i].is_file() and is_complete_png(names[i]))]
    skipped = len(mine) - len(todo)
    exemplars, mask_ex = load_exemplars(job, size)
    rng = random.Random(job.seed)
    pairing = {i: exemplar_index(job, i, rng) for i in range(len(job.inputs))}
    cache = (translator.cache_exemplar(exemplars[:1], mask_ex)
             if len(job.exemplars) == 1 else None)
    loader = DataLoader(InputImages(job, todo, size), batch_size=job.batch_size,
                        num_workers=job.workers, pin_memory=translator.device.type == "cuda")
    failures, done, start = [], 0, time.perf_counter()
    bar = tqdm(total=len(todo), disable=not progress, desc="translate", unit="img")
    for indices, images, originals, masks, errors in loader:
        ok = [j for j, e in enumerate(errors) if not e]
        failures += [{"file": str(job.inputs[int(indices[j])]), "error": errors[j]}
                     for j in range(len(errors)) if errors[j]]
        if ok:
            idx = [int(indices[j]) for j in ok]
            x = images[ok]
            mask_in = masks[ok] if job.mask_in is not None else None
            if cache is not None:
                out, m_in, m_ex = translator.translate(x, cache, mask_in)
            else:
                ex = exemplars[[pairing[i] for i in idx]]
                out, m_in, m_ex = translator.translate(x, ex, mask_in, mask_ex)
            write_outputs(job, names, idx, x, originals[ok], out.cpu(), m_in.cpu(), m_ex.cpu())
            done += len(idx)
        bar.update(len(errors))
        bar.set_postfix(img_s=round(done / (time.perf_counter() - start), 1))
    bar.close()
    seconds = time.perf_counter() - start
    report = {"done": done, "skipped": skipped, "failed": len(failures),
              "seconds": round(seconds, 3), "images_per_s": round(done / max(seconds, 1e-9), 2),
              "backend": translator.backend, "precision": translator.precision,
              "failures": failures}
    part = job.output / (f"report.rank{rank}.json" if world > 1 else "report.json")
    with atomic_path(part) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report


def merge_reports(output: Path, world: int) -> dict:
    """Rank 0, after all ranks finished: one report.json from the rank parts."""
    parts = [json.loads((output / f"report.rank{r}.json").read_text()) for r in range(world)]
    merged = {key: sum(p[key] for p in parts) for key in ("done", "skipped", "failed")}
    merged["seconds"] = max(p["seconds"] for p in parts)
    merged["images_per_s"] = round(merged["done"] / max(merged["seconds"], 1e-9), 2)
    merged |= {"backend": parts[0]["backend"], "precision": parts[0]["precision"],
               "ranks": world, "failures": [f for p in parts for f in p["failures"]]}
    with atomic_path(output / "report.json") as tmp:
        tmp.write_text(json.dumps(merged, indent=2) + "\n")
    return merged


def summary(report: dict) -> str:
    return (f"done {report['done']}, skipped {report['skipped']} (already there), "
            f"failed {report['failed']}, {report['seconds']:.1f} s, "
            f"{report['images_per_s']:.1f} images/s ({report['backend']}, {report['precision']})")


def print_failures(report: dict) -> None:
    for failure in report["failures"]:
        print(f"failed: {failure['error']}", file=sys.stderr)

