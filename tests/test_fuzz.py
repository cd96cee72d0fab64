"""The fuzz campaign, seeded and bounded: damaged images through `infer`, damaged models
through `infer`, `verify` and `web build`, malformed requests to `web serve`, malformed MNIST files
for the data layer. Every case ends as a result or a one-line error with exit 1 or 2: never exit 3,
a traceback, a hang or memory past the bound stated here. docs/design.md, "Outside input", has the table."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from edgemnist import UserError, data, integrity

import fuzz
from conftest import ROOT, cli, read_line

INT8, FP32 = ROOT / "exported/mlp.int8.onnx", ROOT / "exported/mlp.onnx"
FORMATS = [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("GIF", "gif"), ("TIFF", "tif"), ("BMP", "bmp")]
IMAGES, MODELS, REQUESTS, DATA_FILES = 2000, 200, 500, 100
MAX_RSS_MB = 400  # the largest process of a run (measured: see docs/design.md)


# Linux keeps a process's peak RSS across exec: a command started straight from this (large) pytest
# process would report pytest's. So a small runner starts it and reports the command's own peak
# (its worker processes included: wait4 counts the descendants it waited for).
RUNNER = """import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))"""


def measured(args: list[str], stdin: str = "", cwd: Path = ROOT) -> tuple[int, str, str, float]:
    """`python -m edgemnist ARGS` with `stdin`: (exit code, stdout, stderr, peak RSS in MB)."""
    command = [sys.executable, "-c", RUNNER, str(cwd / ".rss"), sys.executable, "-m", "edgemnist", *args]
    proc = subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=cwd, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr, int((cwd / ".rss").read_text()) / 1024


def one_line_errors(stderr: str) -> bool:
    return "Traceback" not in stderr and "internal error" not in stderr and stderr.count("error:") <= 1


def test_damaged_images_through_infer(mnist, tmp_path):
    """2,000 damaged files of six formats, named on stdin (`infer -`): one JSON line each, in order."""
    rng = np.random.default_rng(11)
    originals, exts = [], []
    for i in range(24):
        fmt, ext = FORMATS[i % len(FORMATS)]
        side = int(rng.integers(20, 400))
        ink = Image.fromarray(mnist.test_images[i]).resize((side, side), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        (Image.eval(ink, lambda v: 255 - v) if i % 2 else ink).save(buf, format=fmt)
        originals.append(buf.getvalue())
        exts.append(ext)
    paths = []
    for i, (which, _, blob) in enumerate(fuzz.campaign(originals, IMAGES, seed=11)):
        paths.append(tmp_path / f"f{i:04d}.{exts[which]}")
        paths[-1].write_bytes(blob)
    start = time.perf_counter()
    code, out, err, rss = measured(["infer", "-", "--json", "--jobs", "2"], "\n".join(map(str, paths)) + "\n", tmp_path)
    seconds = time.perf_counter() - start
    results = [json.loads(line) for line in out.splitlines()]
    assert code in (0, 1) and "Traceback" not in err and "internal error" not in err, err[-2000:]
    assert [r["path"] for r in results] == [str(p) for p in paths]
    answered = sum("label" in r for r in results)
    refused = [r["error"] for r in results if "error" in r]
    assert answered + len(refused) == IMAGES and answered > 0 and refused
    assert all(e and "\n" not in e for e in refused)
    assert rss <= MAX_RSS_MB and seconds < 120, (rss, seconds)
    print(f"\nimages: {IMAGES} -> {answered} answered, {len(refused)} refused; exit {code}; peak RSS {rss:.0f} MB; {seconds:.1f} s")


def test_damaged_models_through_infer_verify_and_web_build(mnist, tmp_path):
    """200 damaged copies of the int8 model (splices with the fp32 one), each through three commands."""
    digit = tmp_path / "digit.png"
    Image.fromarray(255 - mnist.test_images[0]).resize((100, 100)).save(digit)
    cases = fuzz.campaign([INT8.read_bytes(), FP32.read_bytes()[:600_000]], 2 * MODELS, seed=12)[::2]  # the int8 ones
    outcomes: dict[str, dict[int, int]] = {}
    slowest = 0.0
    model, site = tmp_path / "m.onnx", tmp_path / "site"
    for _, kind, blob in cases:
        model.write_bytes(blob)
        for name, args in (("infer", ["infer", str(digit), "--model", str(model), "--json"]),
                           ("verify", ["verify", str(model), "--json"]),
                           ("web build", ["web", "build", str(site), "--model", str(model), "--json"])):
            start = time.perf_counter()
            proc = cli(*args)
            slowest = max(slowest, time.perf_counter() - start)
            assert proc.returncode in (0, 1, 2) and one_line_errors(proc.stderr), (name, kind, proc.returncode, proc.stderr[-1500:])
            outcomes.setdefault(name, {}).setdefault(proc.returncode, 0)
            outcomes[name][proc.returncode] += 1
        shutil.rmtree(site, ignore_errors=True)
    assert all(sum(o.values()) == MODELS for o in outcomes.values())
    assert all(o.get(2, 0) > MODELS * 0.8 for o in outcomes.values()), outcomes  # most damage is refused outright
    assert slowest < 20, slowest
    print(f"\nmodels: {MODELS} x 3 commands, exit codes {outcomes}; slowest case {slowest:.1f} s")


def test_damaged_metadata_through_infer_verify_and_web_build(mnist, tmp_path):
    """Each edgemnist metadata key of the int8 model given a value of the wrong kind: the weights digest
    still holds (metadata is outside the graph), so this is what reaches the code that reads metadata.
    A run either refuses the model in one line naming the damaged key (exit 2), or gives exactly the
    undamaged model's answer; the keys `infer` reads for every answer (the polarity, the "not sure"
    threshold) are refused whatever the damage."""
    digit = tmp_path / "digit.png"
    Image.fromarray(255 - mnist.test_images[0]).save(digit)
    clean = json.loads(cli("infer", str(digit), "--model", str(INT8), "--json").stdout)
    base = onnx.load(INT8)
    keys = [p.key for p in base.metadata_props if p.key.startswith("edgemnist.") and p.key != integrity.KEY]
    assert {"edgemnist.input", "edgemnist.calibration", "edgemnist.gate"} <= set(keys)
    model, site, outcomes = tmp_path / "m.onnx", tmp_path / "site", {}
    for key in keys:
        for value in ("{broken json", "3", '{"polarity": 5, "not_sure_below": "x", "hidden": "x"}'):
            proto = onnx.load(INT8)
            next(p for p in proto.metadata_props if p.key == key).value = value
            onnx.save(proto, model)
            runs = [["infer", str(digit), "--model", str(model), "--json"]]  # the slower two with one value
            for args in runs + ([["web", "build", str(site), "--model", str(model)], ["verify", str(model), "--json"]] if value == "3" else []):
                proc = cli(*args)
                what = (key, value, args[0], proc.stderr[-800:])
                assert proc.returncode in (0, 1, 2) and one_line_errors(proc.stderr), what
                if proc.returncode == 2:
                    assert key in proc.stderr.strip().splitlines()[-1], what  # the damaged key is named
                if args[0] == "infer" and key in ("edgemnist.input", "edgemnist.calibration"):
                    assert proc.returncode == 2, what
                if args[0] == "infer" and proc.returncode == 0:
                    assert json.loads(proc.stdout) == clean, what
                outcomes.setdefault(args[0], {}).setdefault(proc.returncode, 0)
                outcomes[args[0]][proc.returncode] += 1
            shutil.rmtree(site, ignore_errors=True)
    assert outcomes["web"].get(2) and outcomes["verify"].get(2) and outcomes["infer"].get(2), outcomes
    print(f"\nmetadata: {len(keys)} keys x 3 damaged values, exit codes {outcomes}")


REQUESTS_BY_KIND = {
    "traversal": ["/../../../etc/passwd", "/..%2f..%2fetc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/.%2e/.%2e/etc/passwd",
                  "/....//....//etc/passwd", "/%252e%252e/etc/passwd", "/..\\..\\etc\\passwd", "//etc/passwd",
                  "/ort/../../site.json", "/%c0%ae%c0%ae/etc/passwd", "/leak", "/loop", "/site.json", "/model.onnx%00.png"],
    "good": ["/", "/index.html", "/app.js", "/model.onnx", "/model.json", "/ort/ort-wasm-simd-threaded.wasm"],
}


def _request(rng: np.random.Generator, i: int) -> tuple[str, bytes]:
    kind = ("traversal", "good", "huge headers", "garbage", "aborted", "methods")[i % 6]
    if kind in REQUESTS_BY_KIND:
        paths = REQUESTS_BY_KIND[kind]
        return kind, f"GET {paths[int(rng.integers(len(paths)))]} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br\r\n\r\n".encode()
    if kind == "huge headers":
        return kind, (b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"a" * int(rng.integers(1, 200_000)) + b"\r\n"
                      + b"X-Many: 1\r\n" * int(rng.integers(0, 300)) + b"\r\n")
    if kind == "garbage":
        return kind, rng.integers(0, 256, int(rng.integers(1, 4000)), dtype=np.uint8).tobytes()
    if kind == "aborted":  # a large file asked for, the connection closed after a few bytes of the answer
        return kind, b"GET /ort/ort-wasm-simd-threaded.wasm HTTP/1.1\r\nHost: x\r\n\r\n"
    method = (b"POST", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"PATCH", b"HEAD")[int(rng.integers(7))]
    return kind, method + b" /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"


def _expected(kind: str, raw: bytes) -> set[str]:
    """What http.server must answer each request: a header line over 65,536 bytes or 100 headers or more
    is 431, methods other than GET and HEAD 501, garbage a 400 or a closed connection."""
    if kind == "huge headers":
        headers = raw.split(b"\r\n")[1:-2]
        # http.client.parse_headers counts the blank line that ends them among its 100
        return {"431"} if len(headers) + 1 > 100 or any(len(h) + 2 > 65536 for h in headers) else {"200"}
    if kind == "methods":
        return {"200"} if raw.startswith(b"HEAD ") else {"501"}
    return {"traversal": {"404", "400"}, "good": {"200"}, "aborted": {"200"}, "garbage": {"400", "closed"}}[kind]


def test_malformed_requests_to_web_serve(sites, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(sites["int8"], site)
    (site / "leak").symlink_to("/etc/passwd")
    (site / "loop").symlink_to(site / "loop")
    proc = subprocess.Popen([sys.executable, "-m", "edgemnist", "web", "serve", "--port", "0", "--json", "--site", str(site),
                             "--model", str(INT8)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        host, port = json.loads(read_line(proc.stdout))["url"].removeprefix("http://").rstrip("/").rsplit(":", 1)
        rng, statuses, leaked, wrong = np.random.default_rng(13), {}, [], []
        for i in range(REQUESTS):
            kind, raw = _request(rng, i)
            with socket.create_connection((host, int(port)), timeout=10) as s:
                try:
                    s.sendall(raw)
                    if kind == "garbage":
                        s.shutdown(socket.SHUT_WR)  # no more bytes will come: the server must answer or close
                    answer = s.recv(1 << 16 if kind != "aborted" else 64)
                except (ConnectionResetError, BrokenPipeError):  # the server may close first on garbage
                    answer = b""
                except TimeoutError:  # a server that neither answers nor closes: counted, and it fails below
                    answer = b"timeout"
            if answer.startswith(b"HTTP/"):
                status = answer[9:12].decode("latin-1")
            elif b"<p>Error code: " in answer:  # garbage read as HTTP/0.9: the error page without a status line
                status = answer.split(b"<p>Error code: ", 1)[1][:3].decode("latin-1")
            else:
                status = answer.decode("latin-1")[:20] or "closed"
            if status not in _expected(kind, raw):
                wrong.append((kind, status, raw[:60]))
            statuses.setdefault(kind, {}).setdefault(status, 0)
            statuses[kind][status] += 1
            if b"root:" in answer or b'"built_from"' in answer:
                leaked.append(raw[:80])
        alive = proc.poll() is None
        status = Path(f"/proc/{proc.pid}/status").read_text()  # VmHWM: the server's own peak (per address space)
        peak_mb = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert alive and not leaked and "Traceback" not in err, (leaked, err[-2000:])
    assert wrong == [], (wrong[:5], statuses)
    assert all(len(statuses[kind]) >= 1 for kind in ("traversal", "good", "huge headers", "garbage", "aborted", "methods"))
    assert {"431", "200"} <= set(statuses["huge headers"]) and {"501", "200"} <= set(statuses["methods"]), statuses  # both sides seen
    assert sum(sum(s.values()) for s in statuses.values()) == REQUESTS
    assert peak_mb <= MAX_RSS_MB, peak_mb
    print(f"\nrequests: {REQUESTS}, statuses by kind {statuses}; server peak RSS {peak_mb:.0f} MB")


def test_malformed_mnist_files_for_the_data_layer(tmp_path, monkeypatch):
    """100 damaged gzip/IDX files where MNIST is read from, and the IDX parser on 100 damaged headers."""
    monkeypatch.setenv("EDGEMNIST_HOME", str(tmp_path / "home"))
    labels = bytes([0, 0, 8, 1, 0, 0, 0, 16]) + bytes(range(10)) + bytes(6)
    images = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(2 * 784)
    originals = [gzip.compress(labels), gzip.compress(images), labels, images]
    refused = 0
    for i, (_, kind, blob) in enumerate(fuzz.campaign(originals, DATA_FILES, seed=14)):
        where = tmp_path / f"d{i}"
        where.mkdir()
        for name in data.SHA256:
            (where / (name + ".gz" if blob[:2] == b"\x1f\x8b" else name)).write_bytes(blob)
        with pytest.raises(UserError) as e:
            data.fetch(where, quiet=True)
        assert e.value.exit_code == 1 and "\n" not in str(e.value)
        refused += 1
    parsed = 0
    for _, _, blob in fuzz.campaign([labels, images], DATA_FILES, seed=15):
        try:
            array = data.parse_idx(blob)
        except ValueError:
            continue
        assert array.dtype == np.uint8 and array.size == len(blob) - 4 - 4 * blob[3]
        parsed += 1
    assert refused == DATA_FILES
    print(f"\ndata: {DATA_FILES} damaged files refused (exit 1); parser: {parsed} of {DATA_FILES} still well-formed, the rest ValueError")
