"""A real `lomit-fast serve` process on loopback for the service and page tests, and a small
multipart client. Everything here is bounded in time: no call waits more than `timeout`."""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def running_server(*args: str, timeout: float = 60.0):
    """Start the CLI's server on a free loopback port (--port 0); yields (url, process).
    Stopped with SIGTERM on exit (killed if it does not stop in time)."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    process = subprocess.Popen([sys.executable, "-m", "lomit_fast.cli", "serve", "--port", "0",
                                *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:  # the banner carries the port the OS picked
        for line in process.stdout:
            lines.append(line)
            if re.search(r"http://\S+", line):
                found.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not found.wait(timeout):
            process.kill()
            raise RuntimeError(f"server did not start: {''.join(lines)}{process.stderr.read()}")
        url = re.search(r"http://\S+", "".join(lines)).group(0).rstrip("/")
        deadline = time.monotonic() + timeout
        while True:  # the socket listens before uvicorn's loop answers
            with contextlib.suppress(OSError):
                if get_json(url, "/v1/health", timeout=2)[0] == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("server did not answer /v1/health")
            time.sleep(0.1)
        yield url, process
    finally:
        stop(process)


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


def _connection(url: str, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def get_json(url: str, path: str, timeout: float = 30.0) -> tuple[int, dict]:
    conn = _connection(url, timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def multipart(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body with one file per field."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{name}.png"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post_files(url: str, files: dict[str, bytes], timeout: float = 60.0) -> tuple[int, dict]:
    body, content_type = multipart(files)
    conn = _connection(url, timeout)
    try:
        conn.request("POST", "/v1/translate", body, {"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()
