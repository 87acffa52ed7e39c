"""Stage 2 of benchmarks/gpu_product.py: `lomit-fast translate` on a folder of synthetic images
with every backend that runs on the device, in fp32 and bf16 where the backend allows, and the C++
app on the exported files; each run's PNGs against the reference fp32 run's. One row per run in
translate_<device>.csv (benchmarks/rows.py schema), appended as the runs finish.
"""
from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from .rows import result_row, write_rows

PY = sys.executable


class TranslateStage:
    """Mixin of gpu_product.Product: uses its run(), log(), why_not(), device, quick, out, work."""

    def translate_runs(self) -> list[tuple[str, str, str]]:
        """(run name, backend, precision), the reference fp32 run first."""
        runs = [("reference", "reference", "fp32"), ("reference", "reference", "bf16")]
        for backend in ("native", "cpp", "triton", "compile"):
            runs += [(backend, backend, "fp32"), (backend, backend, "bf16")]
        runs += [("torchscript", "torchscript", "fp32"), ("aoti", "aoti", "fp32"),
                 ("app-torchscript", "app", "fp32"), ("app-aoti", "app", "fp32")]
        return runs

    def translate(self) -> str:
        from lomit_fast.data.images import save_png, to_uint8
        from lomit_fast.data.synthetic import synthetic_batch
        from lomit_fast.models.checkpoint import load_generator
        size = load_generator(None).cfg.image_size  # the shipped model
        n = 6 if self.quick else 256
        root = self.work / "translate"
        shutil.rmtree(root, ignore_errors=True)
        images = to_uint8(synthetic_batch(n + 1, size, seed=16, index=0).images)
        for i, image in enumerate(images[:n]):
            save_png(image, root / "inputs" / f"img_{i:04d}.png")
        exemplar = root / "exemplar.png"
        save_png(images[n], exemplar)
        models = self.export_models(root)  # the AOTI compile runs beside the first runs
        app = self.app_path()
        csv_path = self.out / f"translate_{self.tag}.csv"
        csv_path.unlink(missing_ok=True)
        outputs: dict[tuple[str, str], Path] = {}
        counts = {"ok": 0, "failed": 0, "skipped": 0}
        batch = 4 if self.quick else 64
        for name, backend, precision in self.translate_runs():
            folder = root / "out" / f"{name}_{precision}"
            fmt = "aoti" if name.endswith("aoti") else "torchscript"
            reason = self.why_not(name, backend, precision)
            if reason is None and isinstance(models.get(fmt), tuple):  # a background export
                models[fmt] = self.model_or_reason(models[fmt], root / "shipped.pt2")
            if reason is None and backend in ("torchscript", "aoti", "app") \
                    and not isinstance(models[fmt], Path):
                reason = models[fmt]
            if reason is None and backend == "app" and not isinstance(app, Path):
                reason = app
            if reason is not None:
                self.log(f"skip {name} {precision}: {reason}")
                counts["skipped"] += 1
                write_rows(csv_path, [self.translate_row(name, precision, n, size, "skipped",
                                                         note=reason)], append=True)
                continue
            if backend == "app":
                cmd = [app, "--model", models[fmt], "--input", root / "inputs", "--exemplar",
                       exemplar, "--output", folder, "--device", self.device, "--batch", batch]
                cmd += [] if self.cuda else ["--threads", "1"]
            else:
                cmd = [PY, "-m", "lomit_fast.cli", "translate", "--input", root / "inputs",
                       "--exemplar", exemplar, "--output", folder, "--backend", backend,
                       "--precision", precision, "--device", self.device, "--batch-size",
                       batch, "--workers", 0, "--quiet", "--overwrite"]  # tiny PNGs: no pool
                if backend in ("torchscript", "aoti"):
                    cmd += ["--model-file", models[fmt]]
            start = time.monotonic()
            rc, output = self.run(cmd, tail=6)
            seconds = time.monotonic() - start
            speed = re.findall(r"([\d.]+) images/s", output)
            if rc == 0:
                outputs[(name, precision)] = folder
            counts["ok" if rc == 0 else "failed"] += 1
            row = self.translate_row(name, precision, n, size, "ok" if rc == 0 else f"exit {rc}",
                                     wall_s=round(seconds, 2),
                                     images_per_s=speed[0] if speed else "",  # app: end to end
                                     note=output.strip()[-300:] if rc else
                                     "images/s include the compile" if backend == "compile"
                                     else "")
            self.compare(row, outputs)
            write_rows(csv_path, [row], append=True)
        for job in (m for m in models.values() if isinstance(m, tuple)):  # never waited for
            job[0].kill()
        return ", ".join(f"{v} {k}" for k, v in counts.items())

    def translate_row(self, name, precision, n, size, status, **extra) -> dict:
        columns = dict.fromkeys(("wall_s", "images_per_s", "compared", "max_abs_diff_lsb",
                                 "mean_abs_diff_lsb", "bound_lsb", "within_bound", "note"), "")
        return result_row("translate:shipped_model", name, self.device, pass_="cli",
                          shape=f"{n}x3x{size}x{size}", dtype=precision, status=status,
                          **(columns | extra))

    def compare(self, row: dict, outputs: dict) -> None:
        """Max / mean absolute difference, in 8-bit steps, of this run's PNGs and the reference
        fp32 run's; the bound is the parity rule's: twice what the reference itself moves at this
        precision (its bf16 run against its fp32 run), plus 2 steps of rounding."""
        from lomit_fast.data.images import read_rgb
        key, ref = (row["provider"], row["dtype"]), outputs.get(("reference", "fp32"))
        if key not in outputs or ref is None:
            return
        diffs = []
        for path in sorted(ref.rglob("*.png")):
            other = outputs[key] / path.relative_to(ref)
            if not other.is_file():
                row["note"] = f"missing output {other.name}"
                return
            a, b = read_rgb(path).astype(np.int16), read_rgb(other).astype(np.int16)
            diffs.append(np.abs(a - b))
        diffs = np.stack(diffs)
        row.update(compared=len(diffs), max_abs_diff_lsb=int(diffs.max()),
                   mean_abs_diff_lsb=round(float(diffs.mean()), 4))
        if row["provider"] == "reference":
            self.ref_diff[row["dtype"]] = int(diffs.max())
        own = self.ref_diff.get(row["dtype"])
        if own is not None:
            row["bound_lsb"] = 2 * own + 2
            row["within_bound"] = row["max_abs_diff_lsb"] <= row["bound_lsb"]

    def export_models(self, root: Path) -> dict:
        """{format: exported file, why there is none, or the background job writing it}."""
        models: dict = {}
        for fmt, suffix in (("torchscript", ".pt"), ("aoti", ".pt2")):
            if self.quick and fmt == "aoti":
                models[fmt] = self.why_not("aoti", "aoti", "fp32")
                continue
            path = root / f"shipped{suffix}"
            cmd = [PY, "-m", "lomit_fast.cli", "export", "--format", fmt, "--out", path]
            if fmt == "aoti":
                models[fmt] = self.spawn(cmd + ["--device", self.device])
            else:
                models[fmt] = self.model_or_reason(self.spawn(cmd), path)
        return models

    def model_or_reason(self, job, path: Path) -> Path | str:
        rc, output = self.wait(job, tail=10)
        return path if rc == 0 else f"export failed: {output.strip()[-200:]}"

    def app_path(self) -> Path | str:
        """The C++ app the build stage made (or an earlier build), or why there is none."""
        if isinstance(getattr(self, "app", None), str):
            return self.app
        app = Path("build/app/lomit-translate-cpp")
        return app if app.is_file() else "build/app/lomit-translate-cpp is not built (make app)"
