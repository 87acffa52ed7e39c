"""Training curves as a PNG: the locality metrics (PSNR, mask IoU, leakage, transfer) and the
style-collapse watch over iterations, from a run's metrics.jsonl. The trainer redraws them at
every sample step; by hand:

    python -m lomit_fast.train.curves runs/synthetic_64/metrics.jsonl curves.png
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..io import atomic_path

PANELS = (
    ("PSNR over the background (dB)", ("self_psnr", "background_psnr", "leakage_psnr")),
    ("input mask IoU", ("mask_iou",)),
    ("foreground transfer accuracy", ("transfer_accuracy",)),
    ("style spread / exemplar effect", ("style_spread", "exemplar_effect")),
)


def read_records(path: str | Path) -> list[dict]:
    """The metric lines of a run (a line cut off by a kill is skipped)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_curves(metrics: str | Path, png: str | Path, title: str = "") -> bool:
    """Draw the curves of `metrics` into `png` (atomically); False where matplotlib is missing
    or nothing has been evaluated yet."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    records = [r for r in read_records(metrics) if "mask_iou" in r]
    if not records:
        return False
    steps = [r["step"] for r in records]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4))
    for ax, (name, keys) in zip(axes, PANELS):
        for key in keys:
            for prefix, style in (("", "-"), ("held_out_", "--")):
                values = [r.get(prefix + key) for r in records]
                if any(v is not None for v in values):
                    label = key.replace("_", " ") + (" (held-out backgrounds)" if prefix else "")
                    ax.plot(steps, values, style, marker=".", label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("iteration")
        ax.legend(fontsize=6)
    fig.suptitle(title or Path(metrics).parent.name, fontsize=10)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("metrics", help="a run's metrics.jsonl")
    parser.add_argument("png", help="the PNG to write")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    if not plot_curves(args.metrics, args.png, args.title):
        raise SystemExit(f"{args.metrics}: no evaluated steps to draw (or matplotlib missing)")
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
