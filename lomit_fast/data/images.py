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
from PIL import Image, ImageOps
from torch import Tensor

from ..io import atomic_path

MAX_PIXELS = 64 * 1024 * 1024  # larger images are refused rather than exhausting memory
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")


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


def _open(path: Path) -> Image.Image:
    """The decoded image at `path`, size-checked before decoding and turned upright as its EXIF
    orientation says (phone photos store pixels sideways); ValueError naming the file otherwise."""
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ValueError(f"{path}: image is {image.width}x{image.height}, larger than "
                                 f"the {MAX_PIXELS} pixel limit")
            image.load()
            return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: cannot read image ({e})") from e


def _sixteen_bit(image: Image.Image) -> np.ndarray:
    """16-bit (and 32-bit integer) grayscale as floats in [0, 1]: the value over 65535, always
    (a dark 16-bit image is dark, whatever its largest value)."""
    return np.clip(np.asarray(image, dtype=np.float64) / 65535.0, 0.0, 1.0)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read any image file as (H, W, 3) uint8 RGB, converting what is meaningful to convert
    (grayscale, palette, RGBA over white, 16-bit) and raising ValueError naming the file otherwise."""
    path = Path(path)
    image = _open(path)
    if image.mode in SIXTEEN_BIT:
        gray = (_sixteen_bit(image) * 255.0 + 0.5).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if image.mode in ("RGB", "L", "P", "CMYK", "YCbCr", "1", "LAB", "HSV"):
        return np.asarray(image.convert("RGB"))
    raise ValueError(f"{path}: unsupported image mode '{image.mode}'")


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a mask image as (H, W) float32 in [0, 1]. How each mode maps:

      8-bit (L, P, RGB, ...)   luminance (0.299 R + 0.587 G + 0.114 B) / 255
      1-bit                    0 or 1
      16-bit / 32-bit integer  value / 65535 (clipped)
      32-bit float (F)         the value itself; it must lie in [0, 1]
      with alpha (RGBA, LA, transparent palette)   the above times alpha / 255: a transparent
                               pixel is 0, "not painted", whatever its colour
    """
    path = Path(path)
    image = _open(path)
    if image.mode in SIXTEEN_BIT:
        return _sixteen_bit(image).astype(np.float32)
    if image.mode == "F":
        mask = np.asarray(image, dtype=np.float32)
        if not np.isfinite(mask).all() or mask.min() < 0 or mask.max() > 1:
            raise ValueError(f"{path}: a float mask must hold values in [0, 1]")
        return mask
    alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and
                                                   "transparency" in image.info)
    if image.mode not in ("RGB", "L", "P", "CMYK", "YCbCr", "1", "LAB", "HSV", "RGBA", "LA", "PA"):
        raise ValueError(f"{path}: unsupported mask mode '{image.mode}'")
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
    mask = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(mask * rgba[..., 3] if alpha else mask, 0.0, 1.0)


def image_grid(rows: Sequence[Tensor], pad: int = 2, scale: int = 1) -> np.ndarray:
    """Stack equally long rows of images (each (N, C, H, W) in [-1, 1], C = 1 or 3, masks in
    [0, 1] are passed as 2 m - 1) into one (H', W', 3) uint8 grid with white padding; `scale`
    enlarges each tile by repeating its pixels (nearest neighbour: nothing is smoothed)."""
    tiles = [to_uint8(row if row.shape[1] == 3 else row.expand(-1, 3, -1, -1)) for row in rows]
    tiles = [t.repeat(scale, axis=1).repeat(scale, axis=2) for t in tiles]
    n, h, w, _ = tiles[0].shape
    grid = np.full((len(tiles) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(tiles):
        for i in range(n):
            y, x = pad + r * (h + pad), pad + i * (w + pad)
            grid[y:y + h, x:x + w] = row[i]
    return grid
