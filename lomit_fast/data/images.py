"""Images in and out: decoding any file to RGB (or a mask), tensor <-> uint8, PNG grids.

Used by the translate job, the data sets and the service alike, so all of them accept the same
files. Odd images are converted where that is meaningful (grayscale, palette, RGBA over white,
16-bit) and refused otherwise with a ValueError naming the file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..io import atomic_path

MAX_PIXELS = 64 * 1024 * 1024  # larger images are refused rather than exhausting memory
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def to_uint8(images: Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) uint8, rounding to nearest."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def from_uint8(array: np.ndarray) -> Tensor:
    """(H, W, C) or (N, H, W, C) uint8 -> float (N, C, H, W) in [-1, 1]."""
    t = torch.from_numpy(np.array(array))  # a writable copy (decoded arrays may be read-only)
    if t.dim() == 3:
        t = t[None]
    return t.permute(0, 3, 1, 2).float() / 127.5 - 1


def save_png(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write an (H, W, C) or (H, W) uint8 array as PNG, atomically."""
    image = Image.fromarray(array.squeeze(-1) if array.ndim == 3 and array.shape[-1] == 1 else array)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read any image file as (H, W, 3) uint8 RGB, converting what is meaningful to convert
    (grayscale, palette, RGBA over white, 16-bit) and raising ValueError naming the file otherwise."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ValueError(f"{path}: image is {image.width}x{image.height}, larger than "
                                 f"the {MAX_PIXELS} pixel limit")
            image.load()
            return _as_rgb(image, path)
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: cannot read image ({e})") from e


def _as_rgb(image: Image.Image, path: Path) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grayscale: scale to 8 bits
        a = np.asarray(image, dtype=np.float64)
        top = 65535.0 if a.max() > 255 else 255.0
        gray = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if image.mode in ("RGB", "L", "P", "CMYK", "YCbCr", "1", "LAB", "HSV"):
        return np.asarray(image.convert("RGB"))
    raise ValueError(f"{path}: unsupported image mode '{image.mode}'")


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a mask image as (H, W) float32 in [0, 1] (any mode; colour masks use luminance)."""
    rgb = read_rgb(path).astype(np.float32) / 255.0
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def image_grid(rows: Sequence[Tensor], pad: int = 2) -> np.ndarray:
    """Stack equally long rows of images (each (N, C, H, W) in [-1, 1], C = 1 or 3, masks in
    [0, 1] are passed as 2 m - 1) into one (H', W', 3) uint8 grid with white padding."""
    tiles = [to_uint8(row if row.shape[1] == 3 else row.expand(-1, 3, -1, -1)) for row in rows]
    n, h, w, _ = tiles[0].shape
    grid = np.full((len(tiles) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(tiles):
        for i in range(n):
            y, x = pad + r * (h + pad), pad + i * (w + pad)
            grid[y:y + h, x:x + w] = row[i]
    return grid
