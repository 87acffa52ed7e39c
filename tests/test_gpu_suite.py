"""The prepared GPU run (benchmarks/gpu_product.py, issue 16) rehearsed on the CPU: its --quick
mode end to end, and the plumbing that only the card would otherwise exercise (a failed build,
a command cut at its stage's time limit)."""
import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time

import pytest

from benchmarks.gpu_product import Product
from benchmarks.rows import COLUMNS

# What the device tool brings back from $OUT: at most 8 files, plain names.
EXPECTED = {"product_{}.log", "stages_{}.json", "gpu_tests_{}.log", "translate_{}.csv",
            "matmul_{}.csv", "generator_product_{}.csv", "generator_product_{}.png",
            "train_step_{}.csv"}


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_quick_run_writes_every_result(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_product", "--device", "cpu",
                           "--quick", "--out", out, "--work", tmp_path / "work"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tag = next(p.name for p in out.iterdir() if p.name.startswith("matmul_"))[7:-4]
    stages = json.loads((out / f"stages_{tag}.json").read_text())["stages"]
    assert {k: v["state"] for k, v in stages.items()} == {
        "build": "skipped", "tests": "ok", "translate": "ok", "bench": "ok", "train": "ok"}
    assert "quick" in stages["build"]["note"]
    assert {p.name for p in out.iterdir()} == {name.format(tag) for name in EXPECTED}
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in out.iterdir())
    assert "skipped" in (out / f"gpu_tests_{tag}.log").read_text()  # gpu tests, no GPU here

    translate = {(r["provider"], r["dtype"]): r for r in rows(out / f"translate_{tag}.csv")}
    assert list(next(iter(translate.values())))[:len(COLUMNS)] == list(COLUMNS)
    reference = translate[("reference", "fp32")]
    assert reference["status"] == "ok" and reference["max_abs_diff_lsb"] == "0"
    for key in [("reference", "bf16"), ("torchscript", "fp32")]:  # compared, within bounds
        assert translate[key]["status"] == "ok" and translate[key]["compared"] == "6", key
        assert translate[key]["within_bound"] == "True", translate[key]
    assert translate[("app-torchscript", "fp32")]["status"] in ("ok", "skipped")
    skipped = [r for r in translate.values() if r["status"] == "skipped"]
    assert translate[("triton", "bf16")] in skipped and all(r["note"] for r in skipped)

    generator = rows(out / f"generator_product_{tag}.csv")
    assert {(r["provider"], r["dtype"]) for r in generator} >= {("reference", "bf16"),
                                                                 ("reference", "fp32")}
    assert all(float(r["images_per_s"]) > 0 and float(r["pct_of_bf16_matmul"]) > 0
               for r in generator)
    assert (out / f"generator_product_{tag}.png").stat().st_size > 1000
    assert float(rows(out / f"matmul_{tag}.csv")[0]["tflops"]) > 0
    assert float(rows(out / f"train_step_{tag}.csv")[0]["it_per_s"]) > 0


def product(tmp_path, stages):
    return Product(argparse.Namespace(device="cpu", quick=False, out=tmp_path / "out",
                                      work=tmp_path / "work", budget=120, stages=stages,
                                      bench_from=0))


def test_build_stage_names_what_failed(tmp_path, monkeypatch):
    """The card's build stage, its commands replaced: pip succeeds, the app's cmake fails."""
    p = product(tmp_path, ["build"])
    spawn = p.spawn
    monkeypatch.setattr(p, "spawn", lambda cmd, env=None: spawn(
        ["false"] if cmd[0] == "bash" else ["true"], env))
    p.stage("build", p.build)
    assert p.status["build"]["state"] == "failed"
    assert p.status["build"]["note"].endswith("extension built; app build FAILED")
    assert p.app_path().startswith("app build failed (exit 1)")
    assert json.loads((tmp_path / "out" / f"stages_{p.tag}.json").read_text())["stages"]["build"]


def test_a_command_past_its_stage_time_is_ended(tmp_path):
    p = product(tmp_path, [])
    p.stage_end = time.monotonic() + 1
    job = p.spawn(["bash", "-c", "sleep 30 & wait"])  # a child in its process group too
    start = time.monotonic()
    rc, output = p.wait(job)
    assert rc == 124 and "cut" in output and time.monotonic() - start < 10
    assert p.run(["true"]) == (124, "not started: the stage's time is spent")


def test_exports_for_the_card_run_beside_the_translations(tmp_path, monkeypatch):
    """The .pt is waited for; the .pt2 (a minute of compiling on the card) stays a background
    job until an aoti run needs it, and a failed export becomes the reason its runs skip."""
    p = product(tmp_path, [])
    spawn = p.spawn

    def export(cmd, env=None):  # writes the file, as the CLI would; the AOTI compile fails
        (tmp_path / "translate").mkdir(exist_ok=True)
        open(cmd[cmd.index("--out") + 1], "w").close()
        return spawn(["bash", "-c", "exit 3" if "aoti" in cmd else "true"], env)

    monkeypatch.setattr(p, "spawn", export)
    models = p.export_models(tmp_path / "translate")
    assert models["torchscript"] == tmp_path / "translate" / "shipped.pt"
    assert isinstance(models["aoti"], tuple)
    assert p.model_or_reason(models["aoti"], tmp_path / "x.pt2").startswith("export failed")
