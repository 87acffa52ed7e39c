"""The CPU peers benchmark (benchmarks/bench_cpu_peers.py) end to end on a tiny model: every
provider's row with its parity error and share of the arithmetic limit, the chart, and a peer
that is not installed skipped with a message, not an error."""
import csv
import subprocess
import sys

import pytest
import yaml

from benchmarks.rows import COLUMNS


@pytest.mark.slow
def test_one_run_measures_the_backends_and_the_peers(tmp_path):
    cfg = yaml.safe_load(open("configs/synthetic_64.yaml"))
    cfg["model"]["image_size"], cfg["model"]["critic_layers"] = 32, 4
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_cpu_peers", "--models",
                           str(tmp_path / "tiny.yaml"), "--batches", "1,2", "--backends",
                           "cpp,reference", "--seconds", "0.05", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [table] = tmp_path.glob("cpu_peers_*.csv")
    assert table.with_suffix(".png").stat().st_size > 10_000
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:len(COLUMNS)] == list(COLUMNS)
    providers = {r["provider"].split()[0] for r in rows}
    assert {"cpp", "reference", "onnxruntime"} <= providers
    try:
        import openvino  # noqa: F401
        assert "openvino" in providers
    except ImportError:
        assert "skip openvino: not installed (pip install -r benchmarks/requirements.txt)" \
            in done.stdout
    for row in rows:
        assert row["subject"] == "generator:tiny" and row["batch"] in ("1", "2")
        assert float(row["max_err_vs_fp64"]) <= 1e-3  # every provider computes the same model
        limit = float(row["limit_images_per_s"])
        assert abs(float(row["pct_of_limit"]) - 100 * float(row["images_per_s"]) / limit) < 0.2
        assert float(row["latency_p99_ms"]) >= float(row["latency_p50_ms"]) > 0
