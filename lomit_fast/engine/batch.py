"""Batch translation of image files: the `lomit-fast translate` job.

Never loses or corrupts an output: each PNG is written to a temporary name and renamed, so a
killed run leaves only complete files (and its temporaries are removed by the next run), and a
rerun skips the inputs whose outputs (and masks, with --save-masks) are all there. Inputs are
never written to; an output folder inside the input folder is not read as input. Bad images are
converted where that is meaningful (grayscale, palette, RGBA, 16-bit) and otherwise reported by
name and skipped, as is an output that cannot be written; a JSON report lists every failure.
What the outputs were made with is kept in manifest.json (files.py). Under torchrun each rank
takes every world_size-th input and writes its own report part; rank 0 merges them.
"""
from __future__ import annotations

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

from ..data.images import from_uint8, read_mask, read_rgb, save_png, to_uint8
from ..io import atomic_path
from ..ops.reference import upsample_mask
from .files import (Inputs, check_manifest, mask_names, output_names, remove_stale_temporaries,
                    write_manifest)
from .translator import Translator


@dataclass
class Job:
    inputs: Inputs                 # files, the folder each was listed from, unreadable entries
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
    settings: dict = field(default_factory=dict)  # what changes pixels (the manifest)
    overwrite: bool = False        # translate everything again, whatever is there


def is_done(name: Path, with_masks: bool) -> bool:
    """An input is done when its output (and, with masks asked for, both masks) is complete."""
    return all(p.is_file() and is_complete_png(p)
               for p in [name, *(mask_names(name) if with_masks else [])])


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
        path = self.job.inputs.files[i]
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
    if not job.exemplars:
        raise ValueError("--exemplar: no exemplar images found")
    images = torch.cat([from_uint8(fit_image(read_rgb(p), size, job.fit)) for p in job.exemplars])
    mask = mask_tensor(read_mask(job.mask_ex), size, job.fit) if job.mask_ex else None
    return images, mask


def exemplar_index(job: Job, i: int, rng: random.Random) -> int:
    if job.pair_mode == "one":
        return 0
    if job.pair_mode == "cycle":
        return i % len(job.exemplars)
    return rng.randrange(len(job.exemplars))


def write_outputs(job: Job, names, indices, images, originals, out, m_in, m_ex) -> list[dict]:
    """Write each output (and masks); a file that cannot be written is a failure of its input
    (named, with why: a full disk, a folder in the way), never the end of the job."""
    size, failures = images.shape[-1], []
    for j, i in enumerate(indices):
        try:
            write_one(job, names[i], images[j:j + 1], originals[j], out[j:j + 1],
                      m_in[j:j + 1], m_ex[j:j + 1], size)
        except OSError as e:
            failures.append({"file": str(job.inputs.files[i]),
                             "error": f"{names[i]}: cannot write output ({e.strerror or e})"})
    return failures


def write_one(job: Job, name: Path, image, original, result, m_in, m_ex, size: int) -> None:
    mask_full = upsample_mask(m_in, (size, size))
    if job.composite:  # the input's own pixels outside its mask, bit-exact at model size
        result = mask_full * result + (1 - mask_full) * image
    array = to_uint8(result)[0]
    if job.output_size == "original":
        h, w = original.tolist()
        array = np.asarray(Image.fromarray(array).resize((w, h), Image.BICUBIC))
    if job.save_masks:  # masks first: the image's presence says the input is done
        mask_in_name, mask_ex_name = mask_names(name)
        save_png(to_uint8(mask_full * 2 - 1)[0], mask_in_name)
        save_png(to_uint8(upsample_mask(m_ex, (size, size)) * 2 - 1)[0], mask_ex_name)
    save_png(array, name)


def run_job(job: Job, translator: Translator, rank: int = 0, world: int = 1,
            progress: bool = True) -> dict:
    """Translate every input of `job` not yet done; returns (and writes) the report."""
    size = translator.cfg.image_size
    files = job.inputs.files
    if not files:
        raise ValueError("--input: no images to translate")
    names = output_names(job.inputs, job.output, job.save_masks)
    check_manifest(job.output, job.settings, job.overwrite)
    exemplars, mask_ex = load_exemplars(job, size)  # a bad exemplar fails before any output
    mine = list(range(rank, len(files), world))
    remove_stale_temporaries([p for i in mine for p in [names[i], *mask_names(names[i])]])
    todo = {i for i in mine if job.overwrite or not is_done(names[i], job.save_masks)}
    skipped = len(mine) - len(todo)
    # Batches are fixed runs of this rank's inputs and one with anything left to do is
    # translated whole: float rounding depends on the batch, so an input always meets the same
    # neighbours and a resumed run writes the bytes an uninterrupted one would have.
    batches = [list(range(k, min(k + job.batch_size, len(mine))))
               for k in range(0, len(mine), job.batch_size)]
    batches = [b for b in batches if any(mine[k] in todo for k in b)]
    if rank == 0:
        write_manifest(job.output, job.settings)
    rng = random.Random(job.seed)
    pairing = {i: exemplar_index(job, i, rng) for i in range(len(files))}
    cache = (translator.cache_exemplar(exemplars[:1], mask_ex)
             if len(job.exemplars) == 1 else None)
    loader = DataLoader(InputImages(job, mine, size), batch_sampler=batches,
                        num_workers=job.workers, pin_memory=translator.device.type == "cuda")
    failures = [{"file": str(path), "error": f"{path}: {why}"}
                for path, why in job.inputs.problems[rank::world]]
    done, start = 0, time.perf_counter()
    bar = tqdm(total=len(todo), disable=not progress, desc="translate", unit="img")
    for indices, images, originals, masks, errors in loader:
        new = [int(i) in todo for i in indices]
        ok = [j for j, e in enumerate(errors) if not e]
        failures += [{"file": str(files[int(indices[j])]), "error": errors[j]}
                     for j in range(len(errors)) if errors[j] and new[j]]
        if any(new[j] for j in ok):
            idx = [int(indices[j]) for j in ok]
            x = images[ok]
            mask_in = masks[ok] if job.mask_in is not None else None
            if cache is not None:
                out, m_in, m_ex = translator.translate(x, cache, mask_in)
            else:
                ex = exemplars[[pairing[i] for i in idx]]
                out, m_in, m_ex = translator.translate(x, ex, mask_in, mask_ex)
            fresh = [k for k, j in enumerate(ok) if new[j]]  # done ones are not written again
            unwritten = write_outputs(job, names, [idx[k] for k in fresh], x[fresh],
                                      originals[ok][fresh], out[fresh].cpu(), m_in[fresh].cpu(),
                                      m_ex[fresh].cpu())
            failures += unwritten
            done += len(fresh) - len(unwritten)
        bar.update(sum(new))
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

