"""Load benchmark of `lomit-fast serve` against the batch CLI, on the same images, in one run.

    python -m benchmarks.bench_serve [--images 256] [--seconds 5] [--clients 1,2,4,8,16,32,64]

1. The batch CLI (`lomit-fast translate --batch-size 32`, one exemplar) translates the images;
   its report's images/s (model load excluded) is the reference.
2. `lomit-fast serve --max-batch 32` on 127.0.0.1 (a free port, loopback only). For each N,
   N client threads, each on its own keep-alive connection, post (input, exemplar) pairs in
   turn for --seconds after a short warm-up (at most --max-requests per N): requests/s,
   p50/p99 latency, the mean batch the server ran (from /v1/health).
Both run with the same OMP_NUM_THREADS (--threads). Writes benchmarks/results/serve_<device>.csv
and .png. The issue's target: at 32 clients, >= 80 % of the CLI's images/s.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import http.client
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

from lomit_fast.data.images import to_uint8
from lomit_fast.data.synthetic import synthetic_batch
from tests.engine.server import get_json, multipart, running_server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def make_images(folder: Path, count: int) -> tuple[list[Path], Path]:
    """`count` synthetic inputs (a held-out seed) and one exemplar, as PNG files."""
    (folder / "inputs").mkdir(parents=True)
    arrays = to_uint8(synthetic_batch(count + 1, 64, seed=77001).images)
    paths = []
    for i, array in enumerate(arrays[:count]):
        paths.append(folder / "inputs" / f"{i:04d}.png")
        Image.fromarray(array).save(paths[-1])
    exemplar = folder / "exemplar.png"
    Image.fromarray(arrays[count]).save(exemplar)
    return paths, exemplar


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cli_run(folder: Path, exemplar: Path, env: dict) -> tuple[float, float]:
    """The batch CLI's images/s (its report) and CPU ms per image (its processes, all in)."""
    out = folder / "cli_out"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "lomit_fast.cli", "translate", "--input",
                    str(folder / "inputs"), "--exemplar", str(exemplar), "--output", str(out),
                    "--batch-size", "32", "--quiet"], cwd=ROOT, env=env, check=True, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads((out / "report.json").read_text())
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return report["images_per_s"], 1000 * cpu / report["done"]


def load(url: str, bodies: list[tuple[bytes, str]], clients: int, seconds: float,
         max_requests: int) -> dict:
    """N threads post in turn until the deadline (or max_requests in all): latencies, rate."""
    parts = urlsplit(url)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + seconds

    def client(k: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        i = k
        while time.perf_counter() < deadline:
            with lock:
                if len(latencies) + errors[0] >= max_requests:
                    break
            body, content_type = bodies[i % len(bodies)]
            i += clients
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/translate", body, {"Content-Type": content_type})
                response = conn.getresponse()
                ok = response.status == 200 and b'"image"' in response.read()
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            with lock:
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors[0] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    elapsed = time.perf_counter() - start
    ms = sorted(x * 1000 for x in latencies)
    return {"requests": len(ms), "errors": errors[0], "seconds": round(elapsed, 2),
            "requests_per_s": round(len(ms) / elapsed, 1),
            "p50_ms": round(statistics.median(ms), 1) if ms else None,
            "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 1) if ms else None}


def plot(rows: list[dict], cli: float, png: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = [r["clients"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(n, [r["requests_per_s"] for r in rows], "o-", label="serve: requests/s")
    a.axhline(cli, color="k", label=f"batch CLI: {cli:.0f} images/s")
    a.axhline(0.8 * cli, color="k", linestyle="--", linewidth=0.8, label="80 % of the CLI")
    b.plot(n, [r["p50_ms"] for r in rows], "o-", label="p50")
    b.plot(n, [r["p99_ms"] for r in rows], "s-", label="p99")
    for ax, label in ((a, "requests/s"), (b, "latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(n, [str(x) for x in n])
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    a.set_ylim(bottom=0)
    b.set_yscale("log")
    fig.suptitle(f"lomit-fast serve on {rows[0]['device']} (synthetic_64, loopback)", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=5.0, help="per client count")
    parser.add_argument("--max-requests", type=int, default=5000, help="per client count")
    parser.add_argument("--clients", default="1,2,4,8,16,32,64")
    parser.add_argument("--threads", default="1", help="OMP_NUM_THREADS of the CLI and server")
    parser.add_argument("--out", default=None, help="CSV path (default: results/serve_<dev>.csv)")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": args.threads}
    os.environ["OMP_NUM_THREADS"] = args.threads  # running_server passes it on
    device = f"cpu-{platform.machine()}-{os.cpu_count()}cores"
    with tempfile.TemporaryDirectory() as tmp:
        paths, exemplar = make_images(Path(tmp), args.images)
        cli, cli_cpu = cli_run(Path(tmp), exemplar, env)
        print(f"batch CLI: {cli:.1f} images/s, {cli_cpu:.1f} CPU ms per image (with model load)",
              flush=True)
        ex = exemplar.read_bytes()
        bodies = [multipart({"image": p.read_bytes(), "exemplar": ex}) for p in paths]
        rows = []
        with running_server("--max-batch", "32", "--max-wait-ms", "5") as (url, server):
            for clients in [int(c) for c in args.clients.split(",")]:
                load(url, bodies, clients, min(1.0, args.seconds), args.max_requests)  # warm-up
                before, cpu = get_json(url, "/v1/health")[1], cpu_seconds(server.pid)
                row = load(url, bodies, clients, args.seconds, args.max_requests)
                cpu = cpu_seconds(server.pid) - cpu
                after = get_json(url, "/v1/health")[1]
                batches = max(1, after["batches"] - before["batches"])
                row = {"date": datetime.date.today().isoformat(), "device": device,
                       "threads": args.threads, "clients": clients, **row,
                       "mean_batch": round((after["served"] - before["served"]) / batches, 1),
                       "server_cpu_ms_per_request": round(1000 * cpu / max(1, row["requests"]), 1),
                       "load_avg_1min": round(os.getloadavg()[0], 2),
                       "cli_images_per_s": cli, "cli_cpu_ms_per_image": round(cli_cpu, 1),
                       "pct_of_cli": round(100 * row["requests_per_s"] / cli, 1)}
                rows.append(row)
                print(", ".join(f"{k} {v}" for k, v in row.items() if k not in ("date", "device")),
                      flush=True)
    out = Path(args.out) if args.out else RESULTS / f"serve_{device}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, cli, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
