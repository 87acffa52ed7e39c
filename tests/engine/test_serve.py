"""`lomit-fast serve` through a real server on loopback: answers, batching, limits, errors that
name the field, clients that stall or hang up, graceful shutdown, the CLI's one-line errors."""
import base64
import csv
import io
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lomit_fast
from lomit_fast.cli import main
from lomit_fast.data.images import from_uint8, read_rgb, to_uint8
from lomit_fast.data.synthetic import synthetic_batch
from lomit_fast.engine.batch import fit_image
from lomit_fast.engine.translator import Translator
from lomit_fast.ops.reference import upsample_mask

from .server import get_json, multipart, post_files, running_server, stop

MAX_BATCH = 4
MAX_PIXELS = 128 * 128
SERVER_ARGS = ("--max-batch", str(MAX_BATCH), "--max-wait-ms", "150", "--max-upload-mb", "0.25",
               "--max-pixels", str(MAX_PIXELS))


@pytest.fixture(scope="module")
def server():
    with running_server(*SERVER_ARGS) as (url, _):
        yield url


@pytest.fixture(scope="module")
def pngs():
    """Eight synthetic images (held-out seed) as PNG bytes."""
    out = []
    for array in to_uint8(synthetic_batch(8, 64, seed=4242).images):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def decode(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64)))).astype(int)


def expected(tmp_path, image: bytes, exemplar: bytes):
    """The translator itself on the same files, decoded as the CLI decodes them."""
    tensors = []
    for name, data in (("image", image), ("exemplar", exemplar)):
        (tmp_path / name).write_bytes(data)
        tensors.append(from_uint8(fit_image(read_rgb(tmp_path / name), 64, "resize")))
    out, m_in, m_ex = translator().translate(*tensors)
    masks = [(upsample_mask(m, (64, 64))[0, 0] * 255).round().numpy() for m in (m_in, m_ex)]
    return to_uint8(out)[0].astype(int), *masks


_translator = []


def translator() -> Translator:
    if not _translator:
        _translator.append(Translator.from_checkpoint())
    return _translator[0]


def test_health_model_and_docs(server):
    status, health = get_json(server, "/v1/health")
    assert status == 200 and health["status"] == "ok" and health["pending"] == 0
    status, model = get_json(server, "/v1/model")
    assert status == 200
    assert model["image_size"] == 64 and model["content_size"] == 16
    assert model["version"] == lomit_fast.__version__ and model["backend"] == translator().backend
    assert model["max_batch"] == MAX_BATCH and model["max_pixels"] == MAX_PIXELS
    assert model["config"]["image_size"] == 64
    status, schema = get_json(server, "/openapi.json")
    assert status == 200 and "/v1/translate" in schema["paths"]


@pytest.mark.parametrize("exemplars", ["different", "shared"])  # shared: the exemplar cache
def test_concurrent_requests_are_batched_and_answered_to_their_caller(server, pngs, tmp_path,
                                                                       exemplars):
    pairs = [(pngs[i], pngs[(i + 3) % 8] if exemplars == "different" else pngs[5])
             for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda p: post_files(server, {"image": p[0], "exemplar": p[1]}),
                                pairs))
    assert all(status == 200 for status, _ in answers), answers
    sizes = [a["batch_size"] for _, a in answers]
    assert max(sizes) > 1 and max(sizes) <= MAX_BATCH  # ran together, never past --max-batch
    outputs = []
    for (image, exemplar), (_, answer) in zip(pairs, answers):
        out, m_in, m_ex = expected(tmp_path, image, exemplar)
        got = decode(answer["image"])
        assert got.shape == (64, 64, 3) and answer["size"] == 64
        assert np.abs(got - out).max() <= 1  # batched vs alone: float rounding only
        assert np.abs(decode(answer["mask_in"]) - m_in).max() <= 1
        assert np.abs(decode(answer["mask_ex"]) - m_ex).max() <= 1
        assert answer["backend"] == translator().backend
        outputs.append(got)
    # Different requests give clearly different outputs, so a mix-up could not pass above.
    assert min(np.abs(outputs[i] - outputs[j]).mean() for i in range(8) for j in range(i)
               if pairs[i] != pairs[j]) > 2


def test_given_masks_replace_the_predicted_ones(server, pngs):
    left = np.zeros((64, 64), np.uint8)
    left[:, :32] = 255
    buffer = io.BytesIO()
    Image.fromarray(left).save(buffer, format="PNG")
    status, predicted = post_files(server, {"image": pngs[0], "exemplar": pngs[1]})
    assert status == 200
    status, given = post_files(server, {"image": pngs[0], "exemplar": pngs[1],
                                        "mask_in": buffer.getvalue()})
    assert status == 200
    mask = decode(given["mask_in"])
    assert mask[:, :28].min() >= 250 and mask[:, 36:].max() <= 5  # the painted half, used as is
    assert np.array_equal(decode(given["mask_ex"]), decode(predicted["mask_ex"]))
    assert np.abs(decode(given["image"]) - decode(predicted["image"])).mean() > 1


def test_accepts_what_the_cli_accepts_and_names_bad_fields(server, image_folder, pngs):
    for name in ("wide.jpg", "gray.png", "rgba.png", "palette.png", "deep16.png"):
        data = (image_folder / name).read_bytes()
        status, answer = post_files(server, {"image": data, "exemplar": pngs[1], "mask_ex": data})
        assert status == 200, (name, answer)
    cases = [({"image": (image_folder / "corrupt.png").read_bytes()}, 400, "image"),
             ({"exemplar": (image_folder / "truncated.png").read_bytes()}, 400, "exemplar"),
             ({"mask_in": b""}, 400, "mask_in"),
             ({"mask_ex": b"not an image"}, 400, "mask_ex")]
    for change, code, field in cases:
        status, answer = post_files(server, {"image": pngs[0], "exemplar": pngs[1], **change})
        assert status == code and answer["detail"].startswith(f"{field}:"), (field, answer)
    status, answer = post_files(server, {"image": pngs[0]})
    assert status == 422 and answer["detail"][0]["loc"] == ["body", "exemplar"]


def test_limits_on_pixels_and_body_size(server, pngs):
    big = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(big, format="PNG")  # 20000 > MAX_PIXELS pixels
    status, answer = post_files(server, {"image": pngs[0], "exemplar": big.getvalue()})
    assert status == 413 and answer["detail"].startswith("exemplar:") and "200x100" in \
        answer["detail"]
    noise = np.random.default_rng(0).integers(0, 256, (120, 120, 3), np.uint8)
    raw = io.BytesIO()
    Image.fromarray(noise).save(raw, format="BMP")  # ~43 KB; six of them pass 0.25 MiB
    status, answer = post_files(server, {"image": raw.getvalue() * 6, "exemplar": pngs[1]})
    assert status == 413 and "upload too large" in answer["detail"]
    assert post_files(server, {"image": pngs[0], "exemplar": pngs[1]})[0] == 200


def test_bad_requests_do_not_fail_their_batch_mates(server, pngs):
    files = [{"image": pngs[i], "exemplar": pngs[7]} if i % 2 else
             {"image": pngs[i], "exemplar": b"\x89PNG broken"} for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda f: post_files(server, f), files))
    assert [status for status, _ in answers] == [400, 200] * 3


def raw_request(url: str, pngs) -> tuple[tuple[str, int], bytes, bytes]:
    body, content_type = multipart({"image": pngs[0], "exemplar": pngs[1]})
    host, port = url.removeprefix("http://").split(":")
    head = (f"POST /v1/translate HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return (host, int(port)), head, body


def wait_for(url: str, condition, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while not condition(health := get_json(url, "/v1/health")[1]):
        assert time.monotonic() < deadline, health
        time.sleep(0.02)
    return health


def test_a_stalled_upload_does_not_stall_the_queue(server, pngs):
    address, head, body = raw_request(server, pngs)
    with socket.create_connection(address, timeout=10) as stalled:
        stalled.sendall(head + body[:100])  # and never the rest
        status, answer = post_files(server, {"image": pngs[2], "exemplar": pngs[3]}, timeout=30)
        assert status == 200 and answer["image"]


def test_a_vanished_client_is_dropped_from_the_queue(pngs):
    with running_server("--max-wait-ms", "1500") as (url, _):
        address, head, body = raw_request(url, pngs)
        with socket.create_connection(address, timeout=10) as gone:
            gone.sendall(head + body)
            wait_for(url, lambda h: h["pending"] == 1)  # queued, waiting for company
        health = wait_for(url, lambda h: h["pending"] == 0)  # hung up: dropped, never run
        assert health["cancelled"] == 1 and health["served"] == 0
        assert post_files(url, {"image": pngs[2], "exemplar": pngs[3]})[0] == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_finishes_queued_requests(pngs, sig):
    with running_server("--max-batch", "8", "--max-wait-ms", "1500") as (url, process):
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(post_files, url, {"image": pngs[i], "exemplar": pngs[4]})
                       for i in range(3)]
            wait_for(url, lambda h: h["pending"] == 3)  # all three wait for company
            assert stop(process, sig) == 0  # while they wait
            answers = [f.result(timeout=30) for f in futures]
    assert [status for status, _ in answers] == [200] * 3
    assert all(answer["batch_size"] == 3 for _, answer in answers)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_example(server, pngs, tmp_path):
    """The README's curl command and its decoding line, as written there."""
    (tmp_path / "input.png").write_bytes(pngs[0])
    (tmp_path / "exemplar.png").write_bytes(pngs[1])
    curl = (f"curl -s -F image=@input.png -F exemplar=@exemplar.png {server}/v1/translate "
            "> answer.json")
    decode_line = ("import base64, json; a = json.load(open('answer.json')); "
                   "[open(f'{k}.png', 'wb').write(base64.b64decode(a[k])) "
                   "for k in ('image', 'mask_in', 'mask_ex')]")
    subprocess.run(curl, shell=True, cwd=tmp_path, check=True, timeout=60)
    subprocess.run([sys.executable, "-c", decode_line], cwd=tmp_path, check=True, timeout=60)
    assert np.asarray(Image.open(tmp_path / "image.png")).shape == (64, 64, 3)
    assert np.asarray(Image.open(tmp_path / "mask_in.png")).shape == (64, 64)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert curl.replace(server, "http://127.0.0.1:8000") in readme and decode_line in readme


def test_serve_without_fastapi_says_what_to_install():
    script = ("import sys\n"
              "class Block:\n"
              "    def find_spec(self, name, path=None, target=None):\n"
              "        if name.split('.')[0] in ('fastapi', 'starlette', 'uvicorn'):\n"
              "            raise ImportError(f'{name} blocked', name=name)\n"
              "sys.meta_path.insert(0, Block())\n"
              "from lomit_fast.cli import main\n"
              "sys.exit(main(['serve']))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "fastapi is not installed" in result.stderr and "[serve]" in result.stderr


def test_load_benchmark_runs_end_to_end(tmp_path):
    """benchmarks/bench_serve.py on a few images for a moment: rows, no errors (no timing)."""
    out = tmp_path / "serve.csv"
    subprocess.run([sys.executable, "-m", "benchmarks.bench_serve", "--images", "20",
                    "--seconds", "0.5", "--rounds", "1", "--clients", "1,4", "--out", str(out)],
                   cwd=Path(__file__).resolve().parents[2], check=True, timeout=300,
                   capture_output=True)
    rows = list(csv.DictReader(out.open()))
    assert [r["clients"] for r in rows] == ["1", "4"]
    for r in rows:
        assert int(r["requests"]) > 0 and r["errors"] == "0"
        assert float(r["cli_images_per_s"]) > 0 and float(r["pct_of_cli"]) > 0
    assert out.with_suffix(".png").stat().st_size > 0


def test_cli_mistakes_exit_2_with_one_line(tmp_path, capsys):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        cases = [(["--max-batch", "0"], "--max-batch must be at least 1"),
                 (["--checkpoint", str(tmp_path / "missing.safetensors")], "missing.safetensors"),
                 (["--port", str(port)], f"cannot listen on 127.0.0.1:{port}")]
        for args, message in cases:
            assert main(["serve", *args]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
    finally:
        listener.close()
