"""Issue #17's list of ways outside input broke the tools, one test each (each failed before its fix):
serving, building a site, the data layer and opening models."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import urllib.request
import zlib
from pathlib import Path

import onnx
import pytest

from edgemnist import ModelError, UserError, data, runtime, serve, web

import browser as b
from conftest import ROOT, cli, read_line

INT8 = ROOT / "exported/mlp.int8.onnx"


def get(url: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """(status, headers, body) of a GET on the served site, whatever the status."""
    req = urllib.request.Request(url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


# ---------------------------------------------------------------- web serve

@pytest.fixture
def site(sites, tmp_path):
    """A copy of the built int8 site that a test may change."""
    copy = tmp_path / "site"
    shutil.copytree(sites["int8"], copy)
    return copy


def test_serve_never_follows_a_symlink_out_of_the_site(site, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for browsers")
    (site / "leak.txt").symlink_to(secret)
    (site / "passwd").symlink_to("/etc/passwd")
    (site / "loop").symlink_to(site / "loop")
    (site / "again.js").symlink_to(site / "app.js")  # inside the site: fine
    with b.served(site) as url:
        for path in ("leak.txt", "passwd", "loop", "site.json", "model.onnx.br", "%2e%2e/secret.txt", "..%2fsecret.txt"):
            assert get(url, path)[0] == 404, path
        status, _, body = get(url, "again.js", {"Accept-Encoding": "identity"})
        assert status == 200 and body == (site / "app.js").read_bytes()


def test_serve_answers_an_unchanged_file_with_304(site):
    """no-cache with a validator: the 2.7 MB wasm is revalidated on each visit, not downloaded again."""
    with b.served(site) as url:
        status, headers, body = get(url, "ort/ort-wasm-simd-threaded.wasm", {"Accept-Encoding": "br"})
        assert status == 200 and headers["ETag"] and int(headers["Content-Length"]) == len(body)
        again = get(url, "ort/ort-wasm-simd-threaded.wasm", {"Accept-Encoding": "br", "If-None-Match": headers["ETag"]})
        assert again[0] == 304 and again[2] == b""
        other = get(url, "ort/ort-wasm-simd-threaded.wasm", {"Accept-Encoding": "identity", "If-None-Match": headers["ETag"]})
        assert other[0] == 200 and len(other[2]) > len(body)  # another encoding, another entity
        (site / "app.js.br").write_bytes(b"rebuilt")  # a rebuild changes the validator
        first = get(url, "app.js", {"Accept-Encoding": "br"})
        assert first[2] == b"rebuilt" and int(first[1]["Content-Length"]) == 7


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_serve_listens_on_ipv6_loopback(site):
    with serve.make_server(site, "::1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = serve.url(server)
        assert url.startswith("http://[::1]:")
        assert get(url, "")[0] == 200
        server.shutdown()


def test_serve_warns_when_it_is_reachable_from_other_machines(sites):
    proc = subprocess.Popen([sys.executable, "-m", "edgemnist", "web", "serve", "--host", "0.0.0.0", "--port", "0",
                             "--site", str(sites["int8"]), "--model", str(INT8)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        lines = [read_line(proc.stderr) for _ in range(2)]
    finally:
        proc.terminate()
        proc.wait(10)
    assert lines[0].startswith("serving ") and "warning: listening on 0.0.0.0, not loopback" in lines[1], lines
    assert serve.is_loopback("127.0.0.1") and serve.is_loopback("::1") and serve.is_loopback("localhost")
    assert not serve.is_loopback("0.0.0.0") and not serve.is_loopback("::") and not serve.is_loopback("example.org")


def test_serve_survives_clients_that_hang_up_or_send_garbage(site, capfd):
    with b.served(site) as url:
        host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        for raw in (b"GET /ort/ort-wasm-simd-threaded.wasm HTTP/1.1\r\nHost: x\r\n\r\n",  # hang up mid-body
                    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", b"\x00\xff garbage\r\n\r\n",
                    b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n"):
            with socket.create_connection((host, int(port)), timeout=5) as s:
                s.sendall(raw)
                s.recv(100)
        assert get(url, "")[0] == 200
    assert "Traceback" not in capfd.readouterr().err


# ---------------------------------------------------------------- web build

def test_build_into_the_current_directory_is_refused_in_one_line(tmp_path):
    for where in (".", str(tmp_path)):
        proc = cli("web", "build", where, "--model", str(INT8), cwd=tmp_path)
        assert proc.returncode == 2 and "is the current directory" in proc.stderr.strip().splitlines()[-1], proc.stderr


def test_a_folder_holding_a_file_named_site_json_is_not_a_site(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "site.json").write_text('{"my": "settings"}')
    (mine / "work.txt").write_text("keep")
    proc = cli("web", "build", str(mine), "--model", str(INT8))
    assert proc.returncode == 2 and "is not an edgemnist site" in proc.stderr
    assert (mine / "work.txt").read_text() == "keep"


def test_a_runtime_package_missing_a_file_is_one_line(monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/dist/README.md")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(UserError, match="a file missing from it") as e:
        web._members(buf.getvalue())
    assert e.value.exit_code == 1


def test_two_builds_filling_the_runtime_cache_at_once(monkeypatch, tmp_path):
    """Another build renames its copy into the cache between this one's clean-up and rename: this one
    uses theirs (they are the same integrity-checked files) instead of failing."""
    monkeypatch.setenv("EDGEMNIST_HOME", str(tmp_path / "home"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in web.ORT_WEB_FILES:
            content = f"the {name} of this test".encode()
            info = tarfile.TarInfo(f"package/dist/{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    blob = buf.getvalue()
    monkeypatch.setattr(web, "ORT_WEB_INTEGRITY", web._integrity(blob))
    monkeypatch.setattr(web, "_tarball", lambda tmp: blob)
    real_rmtree = shutil.rmtree

    def rmtree_then_the_other_build_lands(path, *args, **kwargs):
        real_rmtree(path, *args, **kwargs)
        if Path(path) == web.runtime_dir():
            Path(path).mkdir(parents=True)
            for name in web.ORT_WEB_FILES:
                for suffix in ("", ".gz", ".br"):
                    (Path(path) / (name + suffix)).write_text("theirs")

    monkeypatch.setattr(web.shutil, "rmtree", rmtree_then_the_other_build_lands)
    target = web.fetch_runtime()
    assert target == web.runtime_dir() and (target / web.ORT_WEB_FILES[0]).read_text() == "theirs"


def test_npm_timing_out_is_one_line(monkeypatch, tmp_path):
    def timeout(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], 900)

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(subprocess, "run", timeout)
    monkeypatch.setattr(web, "TARBALL_URL", "http://127.0.0.1:9/nothing.tgz")
    with pytest.raises(UserError, match="npm pack: timed out after 900 s"):
        web._tarball(tmp_path)


# ---------------------------------------------------------------- the data layer

def test_mnist_comes_over_https_only():
    """A plain-HTTP mirror is refused before any request (a loopback server here sees none), and an
    HTTPS mirror's redirect to plain HTTP is refused too."""
    import http.server
    import urllib.error
    import urllib.request

    seen = []

    class Recording(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_error(404)

        def log_message(self, *args):
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recording) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        mirror = f"http://127.0.0.1:{server.server_address[1]}/"
        with pytest.raises(data.SourceError, match=r"not HTTPS, and MNIST is fetched over HTTPS only"):
            data._from_mirror(mirror, ["train-labels-idx1-ubyte"], quiet=True)
        server.shutdown()
    assert seen == []
    handler, request = data._HttpsOnlyRedirects(), urllib.request.Request("https://mirror.example/x.gz")
    with pytest.raises(urllib.error.URLError, match="not HTTPS"):
        handler.redirect_request(request, None, 302, "Found", {}, "http://elsewhere.example/x.gz")
    assert handler.redirect_request(request, None, 302, "Found", {}, "https://elsewhere.example/x.gz").full_url == "https://elsewhere.example/x.gz"
    assert data.MIRRORS and all(m.startswith("https://") for m in data.MIRRORS)


def test_a_gzip_bomb_in_the_data_dir_is_refused_without_inflating_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEMNIST_HOME", str(tmp_path / "home"))
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    zeros = zlib.compressobj(9, zlib.DEFLATED, 31)
    blob = b"".join(zeros.compress(bytes(1 << 20)) for _ in range(1024)) + zeros.flush()  # 1 GiB of zeros, 1 MB
    for name in data.SHA256:
        (bomb / f"{name}.gz").write_bytes(blob)
    with pytest.raises(UserError, match="decompresses past 48,000,000 bytes") as e:
        data.fetch(bomb, quiet=True)
    assert e.value.exit_code == 1


# ---------------------------------------------------------------- opening models

def _with_batch(tmp_path, size: int):
    proto = onnx.load(INT8)
    dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    dim.ClearField("dim_param")
    dim.dim_value = size
    proto.graph.output[0].type.tensor_type.shape.dim[0].dim_value = size
    kept = [p for p in proto.metadata_props if p.key != "edgemnist.graph_sha256"]  # a graph edited by hand
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    path = tmp_path / f"batch{size}.onnx"
    onnx.save(proto, path)
    return path


def test_a_model_with_a_fixed_batch_of_one_runs_and_other_fixed_batches_are_refused(tmp_path, mnist):
    one = _with_batch(tmp_path, 1)
    images = mnist.test_images[:50].astype("float32")[:, None] / 255
    fixed = runtime.open_model(one, "cpu", quiet=True).logits(images)
    dynamic = runtime.open_model(INT8, "cpu", quiet=True).logits(images)
    assert (fixed.argmax(1) == dynamic.argmax(1)).all()
    assert cli("eval", str(one), "--json").returncode == 0
    with pytest.raises(ModelError, match="fixed batch of 4"):
        runtime.open_model(_with_batch(tmp_path, 4), "cpu", quiet=True)


def test_metadata_that_is_not_utf8_is_one_line(tmp_path):
    blob = INT8.read_bytes()
    at = blob.index(b"edgemnist.version") + len(b"edgemnist.version") + 2  # the value after the key's field
    bad = tmp_path / "latin.onnx"
    bad.write_bytes(blob[:at] + b"\xff\xfe" + blob[at + 2 :])
    proc = cli("infer", str(ROOT / "README.md"), "--model", str(bad))
    assert proc.returncode == 2 and "metadata is not valid UTF-8" in proc.stderr.strip().splitlines()[-1], proc.stderr


# ---------------------------------------------------------------- reading images

def test_any_exception_from_pillows_decoders_is_one_line_and_no_file_stays_open(tmp_path, monkeypatch):
    from PIL import Image, ImageFile

    from edgemnist.preprocess import PreprocessError, load_gray

    good = tmp_path / "d.png"
    Image.effect_noise((60, 60), 40).save(good)  # noise: a PNG of a few kB
    broken = tmp_path / "b.png"
    broken.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    def open_here() -> list[str]:  # this process's descriptors onto the two files (other threads' come and go)
        targets = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                targets.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:  # closed between the listing and the look
                continue
        return [t for t in targets if t in (str(good), str(broken))]

    for _ in range(50):
        load_gray(good)
        with pytest.raises(PreprocessError):
            load_gray(broken)
    assert open_here() == []  # every file Pillow opened was closed

    def exploding(self):
        raise RuntimeError("a decoder bug\nwith a second line")

    monkeypatch.setattr(ImageFile.ImageFile, "load", exploding)
    with pytest.raises(PreprocessError, match=r"^cannot decode image \(a decoder bug\)$"):
        load_gray(good)
