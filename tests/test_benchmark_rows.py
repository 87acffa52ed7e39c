"""Every benchmark writes rows of one schema through one writer (benchmarks/rows.py)."""
import csv

import pytest

from benchmarks.cpu_ops_report import markdown, result_rows, table
from benchmarks.rows import COLUMNS, result_row, write_rows


def test_rows_share_the_schema_and_append(tmp_path):
    row = result_row("hain", "cpp", "cpu", shape="1x2x3x4", dtype="torch.float32",
                     times_us=(1.0, 2.0, 3.0), pct_of_floor=50.0, gbps=1.5)
    assert tuple(row)[:len(COLUMNS)] == COLUMNS and row["dtype"] == "float32"
    path = tmp_path / "r.csv"
    write_rows(path, [row], append=True)
    write_rows(path, [row], append=True)
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 2 and rows[1]["p50_us"] == "2.0" and rows[1]["gbps"] == "1.5"
    with pytest.raises(ValueError, match="existing columns differ"):
        write_rows(path, [result_row("hain", "cpp", "cpu", images_per_s=3)], append=True)
    with pytest.raises(ValueError, match="not the schema"):
        write_rows(tmp_path / "bad.csv", [{"op": "hain"}])


def test_cpu_report_from_pytest_benchmark_json():
    def bench(name, backend, median, data=None):
        return {"name": f"{name}[x]", "params": {"backend": backend, "shape": [1, 2, 3, 4],
                                                   "layout": "nchw"},
                "stats": {"median": median, "q1": median * 0.9, "q3": median * 1.1,
                          **({"data": data} if data else {})}}
    report = {"benchmarks": [bench("test_hain", "reference", 4e-6),
                             bench("test_hain", "cpp", 1e-6, [1e-6] * 20),
                             bench("test_generator_batch8", "cpp", 1.0) | {"params": {}}]}
    rows = result_rows(report)
    assert [r["spread"] for r in rows] == ["q1/q3", "p20/p80"]  # the generator row has no shape
    assert "| hain | 1x2x3x4 | nchw | 4 | – | – | 1 | 4.0x |" in markdown(table(rows))
