"""A synthetic "what & where" data set with ground truth, generated in batches on any device.

Each image is a textured background in random muted colours with one foreground object (disc,
square, triangle or ring, random size, position and rotation) painted in one of COLOUR_CLASSES.
The colour class is the attribute (one-hot label); the exact object mask comes with every image.
Everything is a function of (seed, index), so batch i of a seed is the same on every machine and
device.

Background families (`backgrounds=`):
  CLASSIC    stripes, checker, gradient, blobs (the first models' data; the default)
  TRAINING   CLASSIC + band_noise (smooth random noise at a random scale) and fine_texture
             (sinusoids of 8-20 cycles per image plus pixel noise): real high-frequency content
  HELD_OUT   fractal (1/f noise over five octaves), photo (a horizon, shaded shapes and film
             grain) and cells (Voronoi cells with dark edges): never used for training, so a
             model's metrics on them measure how it generalises to backgrounds it never saw
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

COLOUR_CLASSES = {
    "red": (0.90, 0.12, 0.12), "green": (0.10, 0.80, 0.15), "blue": (0.12, 0.25, 0.95),
    "yellow": (0.95, 0.90, 0.10), "magenta": (0.90, 0.10, 0.85), "cyan": (0.10, 0.85, 0.90),
}
CLASSIC = ("stripes", "checker", "gradient", "blobs")
TRAINING = CLASSIC + ("band_noise", "fine_texture")
HELD_OUT = ("fractal", "photo", "cells")
BACKGROUNDS = TRAINING + HELD_OUT
SHAPES = ("disc", "square", "triangle", "ring")


@dataclass
class SyntheticBatch:
    images: Tensor   # (N, 3, S, S) in [-1, 1]
    masks: Tensor    # (N, 1, S, S) exactly 1 on the object, 0 elsewhere
    labels: Tensor   # (N, n_classes) one-hot colour class
    classes: Tensor  # (N,) colour class index


def _generator(seed: int, index: int) -> torch.Generator:
    # Seed and batch index mixed into one 63-bit seed; CPU generator so results match everywhere.
    return torch.Generator().manual_seed((seed * 1_000_003 + index) % (2 ** 63))


def _normalise(x: Tensor) -> Tensor:
    """Each sample's pattern stretched to [0, 1]."""
    low = x.flatten(1).min(1).values[:, None, None, None]
    high = x.flatten(1).max(1).values[:, None, None, None]
    return (x - low) / (high - low).clamp(min=1e-6)


def _noise(n: int, grid: int, size: int, g: torch.Generator) -> Tensor:
    """Smooth noise: a random grid x grid field, upsampled bicubically to size x size."""
    field = torch.rand(n, 1, grid, grid, generator=g)
    return F.interpolate(field, size=(size, size), mode="bicubic", align_corners=False)


def _new_families(names: tuple[str, ...], u: Tensor, v: Tensor, g: torch.Generator) -> Tensor:
    """(N, len(names), S, S) patterns in [0, 1] of the families added after CLASSIC."""
    n, size = u.shape[0], u.shape[-1]
    r = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    out = []
    for name in names:
        if name == "band_noise":
            grid = int(torch.randint(4, 17, (1,), generator=g))
            out.append(torch.sigmoid(6 * (_normalise(_noise(n, grid, size, g)) - 0.5)))
        elif name == "fine_texture":
            waves = torch.zeros(n, 1, size, size)
            for _ in range(3):
                angle, freq = r(n, 1, 1, 1) * math.pi, 8 + r(n, 1, 1, 1) * 12
                along = u * torch.cos(angle) + v * torch.sin(angle)
                waves = waves + torch.sin(2 * math.pi * freq * along + r(n, 1, 1, 1) * 6.3)
            out.append(_normalise(waves + 0.5 * r(n, 1, size, size)))
        elif name == "fractal":
            octaves = sum(0.5 ** k * _noise(n, 4 * 2 ** k, size, g) for k in range(5))
            out.append(_normalise(octaves))
        elif name == "photo":
            horizon = r(n, 1, 1, 1) * 1.2 - 0.6
            scene = torch.where(v < horizon, 0.8 - 0.3 * (v + 1) / 2, 0.35 + 0.2 * (v - horizon))
            for _ in range(3):  # shaded boxes and ellipses in front of it
                c, half = r(n, 2, 1, 1) * 2 - 1, 0.1 + r(n, 2, 1, 1) * 0.4
                du, dv = (u - c[:, :1]) / half[:, :1], (v - c[:, 1:]) / half[:, 1:]
                inside = torch.where(r(n, 1, 1, 1) < 0.5, du.abs().maximum(dv.abs()) < 1,
                                     du ** 2 + dv ** 2 < 1)
                tone = r(n, 1, 1, 1) * (1 - 0.3 * (du + 1) / 2)
                scene = torch.where(inside, tone, scene)
            out.append((scene + 0.06 * torch.randn(n, 1, size, size, generator=g)).clamp(0, 1))
        elif name == "cells":
            points = r(n, 12, 1, 1, 2) * 2 - 1
            dist = ((u - points[..., 0]) ** 2 + (v - points[..., 1]) ** 2).sqrt()  # (N, 12, S, S)
            near = dist.topk(2, dim=1, largest=False)
            tone = torch.gather(r(n, 12, 1, 1).expand(-1, -1, size, size), 1, near.indices[:, :1])
            edge = ((near.values[:, 1:] - near.values[:, :1]) / 0.04).clamp(max=1)
            out.append(0.15 + 0.85 * tone * edge)
        else:
            raise ValueError(f"unknown background family '{name}' (known: {BACKGROUNDS})")
    return torch.cat(out, dim=1) if out else torch.zeros(n, 0, size, size)


def _background(kind: Tensor, u: Tensor, v: Tensor, g: torch.Generator,
                families: tuple[str, ...], g_new: torch.Generator) -> Tensor:
    """(N, 1, S, S) pattern in [0, 1] for each sample's background family (an index into
    `families`). The CLASSIC patterns draw from g as they always did, so a CLASSIC batch of a
    seed is the same as before the other families existed; the others draw from g_new."""
    n = kind.shape[0]
    r = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    angle = r(n, 1, 1, 1) * math.pi
    freq = 2 + r(n, 1, 1, 1) * 6
    along = u * torch.cos(angle) + v * torch.sin(angle)
    stripes = torch.sigmoid(8 * torch.sin(2 * math.pi * freq * along))
    checker = torch.sigmoid(8 * torch.sin(math.pi * freq * u) * torch.sin(math.pi * freq * v))
    gradient = (along + 1) / 2
    centres = r(n, 4, 1, 1, 2) * 2 - 1
    widths = 0.2 + r(n, 4, 1, 1) * 0.4
    dist2 = (u - centres[..., 0]) ** 2 + (v - centres[..., 1]) ** 2
    blobs = torch.exp(-dist2 / (2 * widths ** 2)).sum(1, keepdim=True).clamp(max=1)
    classic = dict(zip(CLASSIC, (stripes, checker, gradient, blobs)))
    added = _new_families(tuple(f for f in families if f not in classic), u, v, g_new)
    added = dict(zip((f for f in families if f not in classic), added.split(1, dim=1)))
    patterns = torch.stack([classic.get(f, added.get(f)) for f in families], dim=1)
    return patterns[torch.arange(n), kind]


def _shape_mask(kind: Tensor, u: Tensor, v: Tensor, g: torch.Generator) -> Tensor:
    """(N, 1, S, S) exact {0, 1} mask of each sample's object."""
    n = kind.shape[0]
    radius = 0.3 + torch.rand(n, 1, 1, 1, generator=g) * 0.3           # in units of half-size
    centre = (torch.rand(n, 2, 1, 1, generator=g) * 2 - 1) * (0.95 - radius)
    angle = torch.rand(n, 1, 1, 1, generator=g) * 2 * math.pi
    du, dv = u - centre[:, :1], v - centre[:, 1:]
    cu = du * torch.cos(angle) + dv * torch.sin(angle)
    cv = -du * torch.sin(angle) + dv * torch.cos(angle)
    dist = torch.sqrt(du ** 2 + dv ** 2)
    disc = dist < radius
    square = torch.maximum(cu.abs(), cv.abs()) < radius * 0.8
    triangle = torch.ones_like(disc)
    for k in range(3):  # inside three half-planes of an equilateral triangle
        a = angle + 2 * math.pi * k / 3
        triangle &= du * torch.cos(a) + dv * torch.sin(a) < radius * 0.5
    ring = disc & (dist > radius * 0.55)
    masks = torch.stack([disc, square, triangle, ring], dim=1)  # (N, 4, 1, S, S)
    return masks[torch.arange(n), kind].float()


def synthetic_batch(batch_size: int, size: int, seed: int = 0, index: int = 0,
                    device: str | torch.device = "cpu", classes: Tensor | None = None,
                    backgrounds: Sequence[str] = CLASSIC) -> SyntheticBatch:
    """Batch number `index` of the synthetic set with this `seed`, at `size` x `size`, its
    backgrounds drawn from the families `backgrounds` (see the module docstring).

    `classes` (N,) forces the colour classes (everything else still drawn), e.g. to build a
    second exemplar of the same class on another background."""
    families = tuple(backgrounds)
    unknown = [f for f in families if f not in BACKGROUNDS]
    if not families or unknown:
        raise ValueError(f"backgrounds must name families of {BACKGROUNDS}, got {families}")
    g = _generator(seed, index)
    g_new = _generator(seed + 7_777_777, index)
    n = batch_size
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    v, u = torch.meshgrid(axis, axis, indexing="ij")
    u, v = u.expand(n, 1, size, size), v.expand(n, 1, size, size)

    palette = torch.tensor(list(COLOUR_CLASSES.values()))
    drawn = torch.randint(len(COLOUR_CLASSES), (n,), generator=g)
    classes = drawn if classes is None else classes.to("cpu", torch.int64)
    background_kind = torch.randint(len(families), (n,), generator=g)
    shape_kind = torch.randint(len(SHAPES), (n,), generator=g)

    # Muted background colours (mixed with grey) keep the object's colour class unambiguous.
    colours = 0.5 * torch.rand(n, 2, 3, 1, 1, generator=g) + 0.25
    pattern = _background(background_kind, u, v, g, families, g_new)
    background = colours[:, 0] * pattern + colours[:, 1] * (1 - pattern)
    mask = _shape_mask(shape_kind, u, v, g)
    jitter = (torch.rand(n, 3, 1, 1, generator=g) - 0.5) * 0.1
    shading = 1 - 0.15 * (u + v + 2) / 4  # a soft light from the top left
    foreground = ((palette[classes][:, :, None, None] + jitter) * shading).clamp(0, 1)
    image = foreground * mask + background * (1 - mask)
    labels = torch.nn.functional.one_hot(classes, len(COLOUR_CLASSES)).float()
    return SyntheticBatch(images=(image * 2 - 1).to(device), masks=mask.to(device),
                          labels=labels.to(device), classes=classes.to(device))
