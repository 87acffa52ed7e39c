"""Table (Markdown) and chart (PNG) of the CPU op benchmarks from pytest-benchmark's JSON:

    pytest benchmarks/test_cpu_benchmarks.py --benchmark-enable -k "hain or instance_norm" \\
        --benchmark-json=ops.json
    python -m benchmarks.cpu_ops_report ops.json   # -> benchmarks/results/cpu_ops_<device>.md/.png
Medians in µs per backend, and the stock composite (the reference) over the C++ ops.
"""
import argparse
import json
from collections import defaultdict
from pathlib import Path

from .harness import device_name, slug

BACKENDS = ("reference", "native", "compile", "cpp")


def rows_of(report: dict) -> list[tuple[str, tuple, str, dict]]:
    rows = defaultdict(dict)
    for bench in report["benchmarks"]:
        p = bench["params"]
        op = bench["name"].split("[")[0].removeprefix("test_")
        op = op.replace("_forward_backward", " fwd+bwd")
        rows[(op, tuple(p["shape"]), p.get("layout", "nchw"))][p["backend"]] = \
            bench["stats"]["median"] * 1e6
    return [(*key, times) for key, times in sorted(rows.items(), key=lambda kv: str(kv[0]))]


def markdown(rows) -> str:
    lines = ["| op | shape | layout | reference (composite) µs | native µs | compile µs "
             "| cpp µs | composite / cpp |", "|---|---|---|---|---|---|---|---|"]
    for op, shape, layout, t in rows:
        cells = [f"{t[b]:.0f}" if b in t else "–" for b in BACKENDS]
        ratio = f"{t['reference'] / t['cpp']:.1f}x" if "cpp" in t else "–"
        lines.append(f"| {op} | {shape} | {layout} | {' | '.join(cells)} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", help="pytest-benchmark JSON")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    rows = rows_of(json.loads(Path(args.report).read_text()))
    stem = Path(args.out) / f"cpu_ops_{slug(device_name('cpu'))}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".md").write_text(markdown(rows))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [f"{op.replace('_', ' ')}\n{'x'.join(map(str, shape))}\n{layout}"
              for op, shape, layout, _ in rows]
    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.9), 4.5))
    width = 0.8 / len(BACKENDS)
    for i, backend in enumerate(BACKENDS):
        ax.bar([k + i * width for k in range(len(rows))], [t.get(backend, 0) for *_, t in rows],
               width, label=backend)
    ax.set_yscale("log")
    ax.set_ylabel("median µs (log)")
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(rows))], labels, fontsize=6)
    ax.set_title(f"{device_name('cpu')}: fused ops on the CPU")
    ax.legend()
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=120)
    print(f"wrote {stem.with_suffix('.md')} and {stem.with_suffix('.png')}")


if __name__ == "__main__":
    main()
