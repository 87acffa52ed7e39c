"""Result rows (CSV, the schema of rows.py), a table (Markdown) and a chart (PNG) of the CPU op
benchmarks from pytest-benchmark's JSON:

    pytest benchmarks/test_cpu_benchmarks.py --benchmark-enable --benchmark-save-data \\
        -k "hain or instance_norm or layer_norm2d" --benchmark-json=ops.json
    python -m benchmarks.cpu_ops_report ops.json   # -> benchmarks/results/cpu_ops_<device>.*
Medians in µs per backend, and the stock composite (the reference) over the C++ ops.
"""
import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from .rows import device_name, result_row, slug, write_rows

BACKENDS = ("reference", "native", "compile", "cpp")


def times_us(stats: dict) -> tuple[tuple[float, float, float], str]:
    """(p20, p50, p80) in µs from the raw samples (--benchmark-save-data), else the quartiles."""
    if stats.get("data"):
        q = statistics.quantiles(stats["data"], n=10)
        return (q[1] * 1e6, stats["median"] * 1e6, q[7] * 1e6), "p20/p80"
    return (stats["q1"] * 1e6, stats["median"] * 1e6, stats["q3"] * 1e6), "q1/q3"


def result_rows(report: dict) -> list[dict]:
    rows = []
    for bench in report["benchmarks"]:
        p = bench["params"]
        name = bench["name"].split("[")[0].removeprefix("test_")
        if "shape" not in p:
            continue  # the generator and training-step benchmarks have no op shape
        times, spread = times_us(bench["stats"])
        rows.append(result_row(name.removesuffix("_forward_backward"), p["backend"], "cpu",
                               pass_="forward+backward" if name.endswith("_forward_backward")
                               else "forward", shape="x".join(map(str, p["shape"])),
                               dtype="float32", layout=p.get("layout", "nchw"), times_us=times,
                               spread=spread))
    return rows


def table(rows: list[dict]) -> list[tuple[str, str, str, dict]]:
    """(op, shape, layout, {backend: median µs}) per case."""
    cases = defaultdict(dict)
    for r in rows:
        op = r["subject"] + (" fwd+bwd" if r["pass"] == "forward+backward" else "")
        cases[(op, r["shape"], r["layout"])][r["provider"]] = r["p50_us"]
    return [(*key, t) for key, t in sorted(cases.items(), key=lambda kv: str(kv[0]))]


def markdown(cases) -> str:
    lines = ["| op | shape | layout | reference (composite) µs | native µs | compile µs "
             "| cpp µs | composite / cpp |", "|---|---|---|---|---|---|---|---|"]
    for op, shape, layout, t in cases:
        cells = [f"{t[b]:.0f}" if b in t else "–" for b in BACKENDS]
        ratio = f"{t['reference'] / t['cpp']:.1f}x" if "cpp" in t and "reference" in t else "–"
        lines.append(f"| {op} | {shape} | {layout} | {' | '.join(cells)} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", help="pytest-benchmark JSON")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    rows = result_rows(json.loads(Path(args.report).read_text()))
    stem = Path(args.out) / f"cpu_ops_{slug(device_name('cpu'))}"
    write_rows(stem.with_suffix(".csv"), rows)
    cases = table(rows)
    stem.with_suffix(".md").write_text(markdown(cases))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [f"{op.replace('_', ' ')}\n{shape}\n{layout}" for op, shape, layout, _ in cases]
    fig, ax = plt.subplots(figsize=(max(8, len(cases) * 0.9), 4.5))
    width = 0.8 / len(BACKENDS)
    for i, backend in enumerate(BACKENDS):
        ax.bar([k + i * width for k in range(len(cases))], [t.get(backend, 0) for *_, t in cases],
               width, label=backend)
    ax.set_yscale("log")
    ax.set_ylabel("median µs (log)")
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(cases))], labels, fontsize=6)
    ax.set_title(f"{device_name('cpu')}: fused ops on the CPU")
    ax.legend()
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=120)
    print(f"wrote {stem.with_suffix('.csv')}, {stem.with_suffix('.md')} and "
          f"{stem.with_suffix('.png')}")


if __name__ == "__main__":
    main()
