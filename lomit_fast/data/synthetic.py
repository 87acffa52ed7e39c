"""A synthetic "what & where" data set with ground truth, generated in batches on any device.

Each image is a textured background (stripes, checkerboard, gradient or blobs, in random muted
colours) with one foreground object (disc, square, triangle or ring, random size, position and
rotation) painted in one of COLOUR_CLASSES. The colour class is the attribute (one-hot label); the
exact object mask comes with every image. Everything is a function of (seed, index), so batch i
of a seed is the same on every machine and device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

COLOUR_CLASSES = {
    "red": (0.90, 0.12, 0.12), "green": (0.10, 0.80, 0.15), "blue": (0.12, 0.25, 0.95),
    "yellow": (0.95, 0.90, 0.10), "magenta": (0.90, 0.10, 0.85), "cyan": (0.10, 0.85, 0.90),
}
BACKGROUNDS = ("stripes", "checker", "gradient", "blobs")
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


def _background(kind: Tensor, u: Tensor, v: Tensor, g: torch.Generator) -> Tensor:
    """(N, 1, S, S) pattern in [0, 1] for each sample's background family."""
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
    patterns = torch.stack([stripes, checker, gradient, blobs], dim=1)  # (N, 4, 1, S, S)
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
                    device: str | torch.device = "cpu",
                    classes: Tensor | None = None) -> SyntheticBatch:
    """Batch number `index` of the synthetic set with this `seed`, at `size` x `size`.

    `classes` (N,) forces the colour classes (everything else still drawn), e.g. to build a
    second exemplar of the same class on another background."""
    g = _generator(seed, index)
    n = batch_size
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    v, u = torch.meshgrid(axis, axis, indexing="ij")
    u, v = u.expand(n, 1, size, size), v.expand(n, 1, size, size)

    palette = torch.tensor(list(COLOUR_CLASSES.values()))
    drawn = torch.randint(len(COLOUR_CLASSES), (n,), generator=g)
    classes = drawn if classes is None else classes.to("cpu", torch.int64)
    background_kind = torch.randint(len(BACKGROUNDS), (n,), generator=g)
    shape_kind = torch.randint(len(SHAPES), (n,), generator=g)

    # Muted background colours (mixed with grey) keep the object's colour class unambiguous.
    colours = 0.5 * torch.rand(n, 2, 3, 1, 1, generator=g) + 0.25
    pattern = _background(background_kind, u, v, g)
    background = colours[:, 0] * pattern + colours[:, 1] * (1 - pattern)
    mask = _shape_mask(shape_kind, u, v, g)
    jitter = (torch.rand(n, 3, 1, 1, generator=g) - 0.5) * 0.1
    shading = 1 - 0.15 * (u + v + 2) / 4  # a soft light from the top left
    foreground = ((palette[classes][:, :, None, None] + jitter) * shading).clamp(0, 1)
    image = foreground * mask + background * (1 - mask)
    labels = torch.nn.functional.one_hot(classes, len(COLOUR_CLASSES)).float()
    return SyntheticBatch(images=(image * 2 - 1).to(device), masks=mask.to(device),
                          labels=labels.to(device), classes=classes.to(device))
