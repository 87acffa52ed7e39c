"""One schema and one writer for every benchmark result row (ops, generator, C++ app, peers,
service), CPU or GPU:

  date, device, torch, triton       when and where it was measured
  subject, provider                 what was timed (an op stem or a model) and by what
                                    (backend, engine, peer runtime)
  pass, shape, dtype, layout        the case: forward | forward+backward, NxCxHxW, dtype, layout
  p20_us, p50_us, p80_us            time per call (empty where only a best-of time exists)
  pct_of_floor                      the byte floor's time over p50 (empty where none is defined)
  ...                               columns of that benchmark after these (GB/s, images/s, ...)
"""
from __future__ import annotations

import csv
import datetime
import os
import platform
from pathlib import Path

import torch

COLUMNS = ("date", "device", "torch", "triton", "subject", "provider", "pass", "shape", "dtype",
           "layout", "p20_us", "p50_us", "p80_us", "pct_of_floor")


def device_name(device: str) -> str:
    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name()
    return f"cpu-{platform.processor() or platform.machine()}-{os.cpu_count()}cores"


def slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name).strip("-").lower()


def triton_version() -> str:
    try:
        import triton
        return triton.__version__
    except ImportError:
        return "none"


def result_row(subject: str, provider: str, device: str, *, pass_: str = "forward",
               shape: str = "", dtype: str = "", layout: str = "",
               times_us: tuple[float, float, float] | None = None,
               pct_of_floor: float | None = None, **extra) -> dict:
    """A row of the schema above; `extra` columns follow the common ones."""
    p20, p50, p80 = (round(t, 2) for t in times_us) if times_us else ("", "", "")
    return {"date": datetime.date.today().isoformat(), "device": device_name(device),
            "torch": torch.__version__, "triton": triton_version(), "subject": subject,
            "provider": provider, "pass": pass_, "shape": shape,
            "dtype": str(dtype).replace("torch.", ""), "layout": layout, "p20_us": p20,
            "p50_us": p50, "p80_us": p80,
            "pct_of_floor": "" if pct_of_floor is None else round(pct_of_floor, 1), **extra}


def write_rows(path: str | Path, rows: list[dict], append: bool = False) -> None:
    """Write rows (a new file, or appended to one of the same columns: rows land as they are
    measured, so a run that dies keeps what it finished)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = list(rows[0])
    if list(header[:len(COLUMNS)]) != list(COLUMNS):
        raise ValueError(f"row columns {header[:len(COLUMNS)]} are not the schema's {COLUMNS}")
    exists = append and path.exists()
    if exists:
        with open(path, newline="") as f:
            if next(csv.reader(f), None) != header:
                raise ValueError(f"{path}: existing columns differ from these rows'")
    with open(path, "a" if append else "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        if not exists:
            writer.writeheader()
        writer.writerows(rows)
