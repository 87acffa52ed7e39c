"""Load benchmark of `lomit-fast serve` against the batch CLI, on the same images, in one run.

    python -m benchmarks.bench_serve [--images 512] [--seconds 3] [--rounds 3] [--clients 1,2,...,64]

1. The batch CLI (`lomit-fast translate --batch-size 32`, one exemplar) translates the images
   right before each row: its report's images/s (model load excluded) is that row's reference,
   measured under the same load from other processes. Its CPU ms per image (start-up excluded:
   the difference of a full and a small run) against the server's CPU ms per request.
2. `lomit-fast serve --max-batch 32` on 127.0.0.1 (a free port, loopback only). For each N,
   N client threads, each on its own keep-alive connection, post (input, exemplar) pairs in
   turn for --seconds after a short warm-up (at most --max-requests): requests/s, p50/p99
   latency, the mean batch the server ran (from /v1/health). Each N is --rounds rounds of
   (CLI, service); the row keeps the best round of each.
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
SMALL = 16  # images of the CLI's second run


def make_images(folder: Path, count: int) -> tuple[list[Path], Path]:
    """`count` synthetic inputs (a held-out seed) and one exemplar, as PNG files; the first
    SMALL inputs also in inputs_small/ (the CLI's start-up cost)."""
    (folder / "inputs").mkdir(parents=True)
    (folder / "inputs_small").mkdir()
    arrays = to_uint8(synthetic_batch(count + 1, 64, seed=77001).images)
    paths = []
    for i, array in enumerate(arrays[:count]):
        paths.append(folder / "inputs" / f"{i:04d}.png")
        Image.fromarray(array).save(paths[-1])
        if i < SMALL:
            Image.fromarray(array).save(folder / "inputs_small" / f"{i:04d}.png")
    exemplar = folder / "exemplar.png"
    Image.fromarray(arrays[count]).save(exemplar)
    return paths, exemplar


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cli_run(inputs: Path, exemplar: Path, env: dict) -> tuple[float, float, int]:
    """The batch CLI on `inputs` into a fresh folder: its report's images/s, the CPU seconds
    of its processes (decoding workers included) and the images done."""
    out = Path(tempfile.mkdtemp(dir=inputs.parent)) / "out"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "lomit_fast.cli", "translate", "--input", str(inputs),
                    "--exemplar", str(exemplar), "--output", str(out), "--batch-size", "32",
                    "--quiet"], cwd=ROOT, env=env, check=True, timeout=600,
                   stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads((out / "report.json").read_text())
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return report["images_per_s"], cpu, report["done"]


def load(url: str, bodies: list[tuple[bytes, str]], clients: int, seconds: float,
         max_requests: int) -> dict:
    """N threads post in turn until the deadline (or max_requests in all): latencies, and the
    rate of answers within the window (the answers still in flight at its end come later and
    only count for latency: a closed loop drains at its end)."""
    parts = urlsplit(url)
    latencies: list[float] = []
    finished: list[float] = []
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
                    finished.append(time.perf_counter())
                    latencies.append(finished[-1] - t0)
                else:
                    errors[0] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    end = deadline if len(latencies) + errors[0] < max_requests else max(finished)
    within = sum(t <= end for t in finished)
    ms = sorted(x * 1000 for x in latencies)
    return {"requests": len(ms), "errors": errors[0], "seconds": round(end - start, 2),
            "requests_per_s": round(within / (end - start), 1),
            "p50_ms": round(statistics.median(ms), 1) if ms else None,
            "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 1) if ms else None}


def best_of(args, clients: int, url: str, pid: int, bodies, cli) -> dict:
    """--rounds rounds of (the CLI, then the service under `clients` clients): the best of each,
    so that load from other processes on a shared machine hurts both alike and least."""
    best, best_cli, cpu_ms, batch = None, 0.0, [], []
    for _ in range(args.rounds):
        best_cli = max(best_cli, cli())
        before, cpu = get_json(url, "/v1/health")[1], cpu_seconds(pid)
        row = load(url, bodies, clients, args.seconds, args.max_requests)
        cpu = cpu_seconds(pid) - cpu
        after = get_json(url, "/v1/health")[1]
        cpu_ms.append(1000 * cpu / max(1, row["requests"]))
        batch.append((after["served"] - before["served"]) / max(1, after["batches"] -
                                                                before["batches"]))
        if best is None or row["requests_per_s"] > best["requests_per_s"]:
            best = row
    return {**best, "mean_batch": round(statistics.mean(batch), 1),
            "server_cpu_ms_per_request": round(statistics.median(cpu_ms), 1),
            "load_avg_1min": round(os.getloadavg()[0], 2), "cli_images_per_s": best_cli,
            "pct_of_cli": round(100 * best["requests_per_s"] / best_cli, 1)}


def plot(rows: list[dict], png: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = [r["clients"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    cli = [r["cli_images_per_s"] for r in rows]
    a.plot(n, [r["requests_per_s"] for r in rows], "o-", label="serve: requests/s")
    a.plot(n, cli, "k-", label="batch CLI: images/s (run before each point)")
    a.plot(n, [0.8 * c for c in cli], "k--", linewidth=0.8, label="80 % of the CLI")
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
    parser.add_argument("--images", type=int, default=512,
                        help="inputs (the CLI amortises its worker start-up over them)")
    parser.add_argument("--seconds", type=float, default=3.0, help="per round")
    parser.add_argument("--rounds", type=int, default=3, help="per client count: best of")
    parser.add_argument("--max-requests", type=int, default=5000, help="per round")
    parser.add_argument("--clients", default="1,2,4,8,16,32,64")
    parser.add_argument("--threads", default="1", help="OMP_NUM_THREADS of the CLI and server")
    parser.add_argument("--out", default=None, help="CSV path (default: results/serve_<dev>.csv)")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": args.threads}
    os.environ["OMP_NUM_THREADS"] = args.threads  # running_server passes it on
    device = f"cpu-{platform.machine()}-{os.cpu_count()}cores"
    with tempfile.TemporaryDirectory() as tmp:
        paths, exemplar = make_images(Path(tmp), args.images)
        # CPU per image of the CLI without its start-up: the difference of two runs.
        _, cpu_all, done = cli_run(Path(tmp) / "inputs", exemplar, env)
        _, cpu_small, done_small = cli_run(Path(tmp) / "inputs_small", exemplar, env)
        cli_cpu = 1000 * (cpu_all - cpu_small) / (done - done_small)
        print(f"batch CLI: {cli_cpu:.1f} CPU ms per image", flush=True)
        ex = exemplar.read_bytes()
        bodies = [multipart({"image": p.read_bytes(), "exemplar": ex}) for p in paths]
        rows = []
        with running_server("--max-batch", "32", "--max-wait-ms", "5") as (url, server):
            for clients in [int(c) for c in args.clients.split(",")]:
                load(url, bodies, clients, min(1.0, args.seconds), args.max_requests)  # warm-up
                rows.append(best_of(args, clients, url, server.pid, bodies,
                                    lambda: cli_run(Path(tmp) / "inputs", exemplar, env)[0]))
                rows[-1] = {"date": datetime.date.today().isoformat(), "device": device,
                            "threads": args.threads, "clients": clients, **rows[-1],
                            "cli_cpu_ms_per_image": round(cli_cpu, 1)}
                print(", ".join(f"{k} {v}" for k, v in rows[-1].items()
                                if k not in ("date", "device")), flush=True)
    out = Path(args.out) if args.out else RESULTS / f"serve_{device}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
