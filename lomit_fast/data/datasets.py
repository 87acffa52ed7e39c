"""Training data: CelebA layout, folders of domains, a CSV attribute table, and the synthetic set.

Every source yields, for training step s, a pair of batches (A = inputs, B = exemplars) that is a
function of (seed, s) alone, so a resumed run sees exactly the batches an uninterrupted run would.
Bad data is a clear error naming the file and line; an unreadable image met during training is
reported (once, with its name) and replaced by the next image, never silently.
Test split: the first data.test_size images of the list (as the authors' CelebA loader); training
uses the rest.
"""
from __future__ import annotations

import csv
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..config import DataConfig
from .images import IMAGE_SUFFIXES, read_rgb
from .synthetic import COLOUR_CLASSES, synthetic_batch


class DataError(ValueError):
    """A data set that cannot be used as configured."""


def read_text(path: Path, what: str) -> str:
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: {what} is not UTF-8 text (byte {e.start})") from None


def read_celeba_attributes(path: Path, attributes: list[str]) -> list[tuple[str, list[float]]]:
    """Parse list_attr_celeba.txt (count, names, then `file +-1 ...`) for the chosen attributes."""
    lines = read_text(path, "attribute file").splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise DataError(f"{path}:1: expected the image count on the first line")
    names = lines[1].split()
    missing = [a for a in attributes if a not in names]
    if missing:
        raise DataError(f"{path}:2: unknown attribute(s) {missing} (file has: {' '.join(names)})")
    columns = [names.index(a) for a in attributes]
    rows = []
    for number, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != len(names) + 1 or any(v not in ("1", "-1") for v in fields[1:]):
            raise DataError(f"{path}:{number}: malformed line (expected a file name and "
                            f"{len(names)} values of 1 or -1): {line[:80]!r}")
        rows.append((fields[0], [1.0 if fields[1 + c] == "1" else 0.0 for c in columns]))
    if int(lines[0]) != len(rows):
        raise DataError(f"{path}:1: says {lines[0].strip()} images but lists {len(rows)}")
    return rows


def read_attribute_table(path: Path, attributes: list[str]) -> list[tuple[str, list[float]]]:
    """Parse a CSV table: header `file,<attr>,...`, then one row of 0/1 values per image."""
    lines = read_text(path, "attribute table").splitlines()
    try:
        table = list(csv.reader(lines))
    except csv.Error as e:
        raise DataError(f"{path}: not a CSV table ({e})") from None
    header = table[0] if table else None
    if not header or len(header) < 2:
        raise DataError(f"{path}:1: expected a header 'file,<attribute>,...'")
    missing = [a for a in attributes if a not in header[1:]]
    if missing:
        raise DataError(f"{path}:1: unknown attribute(s) {missing}")
    columns = [header.index(a) for a in attributes]
    rows = []
    for number, fields in enumerate(table[1:], start=2):
        if not fields:
            continue
        if len(fields) != len(header) or any(fields[c] not in ("0", "1") for c in columns):
            raise DataError(f"{path}:{number}: malformed row {fields[:6]}")
        rows.append((fields[0], [float(fields[c]) for c in columns]))
    return rows


def folder_domains(root: Path, domains: list[str]) -> list[tuple[str, list[float]]]:
    """root/<domain>/*.jpg|png, one one-hot label per domain (in the configured order). The rows
    take the domains in turn, so that the first rows (the test split) hold every domain."""
    per_domain = []
    for i, domain in enumerate(domains):
        folder = root / domain
        if not folder.is_dir():
            raise DataError(f"{folder}: domain folder not found")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{folder}: domain folder holds no images")
        per_domain.append([(f"{domain}/{p.name}", [float(j == i) for j in range(len(domains))])
                           for p in files])
    return [row for group in itertools.zip_longest(*per_domain) for row in group if row]


class ImageTable(Dataset):
    """(image, label) from a list of (relative file, labels); centre crop, resize, [-1, 1]."""

    def __init__(self, root: Path, rows: list[tuple[str, list[float]]], size: int, crop: int):
        self.root, self.rows, self.size, self.crop = root, rows, size, crop
        self.reported: set[str] = set()

    def __len__(self) -> int:
        return len(self.rows)

    def load(self, index: int) -> Tensor:
        array = read_rgb(self.root / self.rows[index][0])
        h, w, _ = array.shape
        crop = min(self.crop, h, w)
        top, left = (h - crop) // 2, (w - crop) // 2
        image = Image.fromarray(array[top:top + crop, left:left + crop])
        image = image.resize((self.size, self.size), Image.BICUBIC)
        return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 127.5 - 1

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        for offset in range(len(self.rows)):
            i = (index + offset) % len(self.rows)
            try:
                return self.load(i), torch.tensor(self.rows[i][1])
            except ValueError as e:
                if self.rows[i][0] not in self.reported:
                    self.reported.add(self.rows[i][0])
                    print(f"skipping unreadable training image: {e}", file=sys.stderr)
        raise DataError(f"{self.root}: no readable image")


class StepBatches(torch.utils.data.Sampler):
    """Index lists of 2 x batch_size per step (A then B) from a per-epoch permutation of
    (seed, epoch), starting at `start_step`."""

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int, steps: int):
        self.n, self.batch, self.seed, self.start, self.steps = n, batch_size, seed, start_step, steps

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def __iter__(self):
        per_epoch = max(1, self.n // (2 * self.batch))
        for step in range(self.start, self.steps):
            epoch, k = divmod(step, per_epoch)
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(
                self.seed * 100_003 + epoch))
            take = order[(k * 2 * self.batch) % self.n:][: 2 * self.batch]
            if len(take) < 2 * self.batch:  # data sets smaller than two batches repeat
                take = order.repeat(2 * self.batch // self.n + 1)[: 2 * self.batch]
            yield take.tolist()


@dataclass
class PairSource:
    """What the trainer needs: pairs of batches for step s, and the attribute names."""
    cfg: DataConfig
    size: int
    batch_size: int
    device: torch.device
    dataset: ImageTable | None = None

    @property
    def attributes(self) -> list[str]:
        return self.cfg.attributes

    def batches(self, start_step: int, steps: int):
        """Yield (x_a, labels_a, x_b, labels_b) for steps start_step .. steps - 1."""
        if self.dataset is None:
            for step in range(start_step, steps):
                a, b = (synthetic_batch(self.batch_size, self.size, self.cfg.seed, 2 * step + k,
                                        self.device, backgrounds=self.cfg.backgrounds)
                        for k in (0, 1))
                yield a.images, a.labels, b.images, b.labels
            return
        sampler = StepBatches(len(self.dataset), self.batch_size, self.cfg.seed, start_step, steps)
        loader = DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.cfg.workers,
                            persistent_workers=False)
        for step, (images, labels) in zip(range(start_step, steps), loader):
            if self.cfg.flip:  # deterministic in (seed, step)
                g = torch.Generator().manual_seed(self.cfg.seed * 7919 + step)
                flip = torch.rand(len(images), generator=g) < 0.5
                images[flip] = images[flip].flip(-1)
            images, labels = images.to(self.device), labels.to(self.device)
            b = self.batch_size
            yield images[:b], labels[:b], images[b:], labels[b:]


def read_table(cfg: DataConfig, size: int) -> ImageTable:
    """Every image of a real data set (celeba, table, folders) with its labels, in list order."""
    root = Path(cfg.root)
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found (data.root)")
    if cfg.kind == "celeba":
        rows, crop = read_celeba_attributes(Path(cfg.attr_file), cfg.attributes), cfg.crop_size
    elif cfg.kind == "table":
        rows, crop = read_attribute_table(Path(cfg.attr_file), cfg.attributes), 1 << 30
    elif cfg.kind == "folders":
        rows, crop = folder_domains(root, cfg.attributes), 1 << 30
    else:
        raise DataError(f"data.kind must be celeba, folders, table or synthetic, not '{cfg.kind}'")
    where = cfg.attr_file if cfg.kind != "folders" else cfg.root
    if not rows:
        raise DataError(f"{where}: lists no images")
    if cfg.test_size >= len(rows):
        raise DataError(f"{where}: lists {len(rows)} images, none left for training after the "
                        f"data.test_size = {cfg.test_size} held out")
    return ImageTable(root, rows, size, crop)


def split(table: ImageTable, test_size: int) -> tuple[ImageTable, ImageTable]:
    """(train, test): the test split is the first test_size images, as the authors' loader."""
    return (ImageTable(table.root, table.rows[test_size:], table.size, table.crop),
            ImageTable(table.root, table.rows[:test_size], table.size, table.crop))


def build_source(cfg: DataConfig, size: int, batch_size: int, device: torch.device) -> PairSource:
    if cfg.kind == "synthetic":
        if cfg.attributes != list(COLOUR_CLASSES):
            raise DataError(f"data.attributes must be {list(COLOUR_CLASSES)} for synthetic data")
        return PairSource(cfg, size, batch_size, device)
    train, _ = split(read_table(cfg, size), cfg.test_size)
    return PairSource(cfg, size, batch_size, device, train)
