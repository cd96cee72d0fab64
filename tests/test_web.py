"""The browser target: `edgemnist web build/serve`, and the page in Debian's headless chromium —
parity of onnxruntime-web with Python onnxruntime on all 10,000 test images, the JS port of the
preprocessing against preprocess.py, drawing with pointer events, and bad input."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgemnist import runtime
from edgemnist.contract import images_to_pixels
from edgemnist.preprocess import PreprocessError, load_gray, to_mnist
from edgemnist.settings import Thresholds

import browser as b
import realworld
import tamper
import written_numbers
from conftest import ROOT, cli, read_line

pytestmark = pytest.mark.browser
INT8, FP32 = ROOT / "exported/mlp.int8.onnx", ROOT / "exported/mlp.onnx"


# ---------------------------------------------------------------- build and serve (no browser)

def test_build_writes_a_self_contained_site(sites):
    site = sites["int8"]
    files = json.loads((site / "site.json").read_text())
    assert files["built_from"]["onnxruntime_web"] == "1.30.0"
    names = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file() and p.suffix not in (".gz", ".br")}
    assert names == {"index.html", "app.js", "edgemnist.js", "integrity.js", "preprocess.js", "preprocess.json", "segment.js", "style.css",
                     "model.onnx", "model.json",
                     "site.json", "ort/ort.wasm.bundle.min.mjs", "ort/ort-wasm-simd-threaded.wasm"}
    assert (site / "model.onnx").read_bytes() == INT8.read_bytes()
    for name in ("index.html", "style.css"):  # the browser tests check that every request stays on the site
        assert "://" not in (site / name).read_text(), name
    facts = json.loads((site / "model.json").read_text())
    assert facts["precision"] == "int8" and facts["test_accuracy"] > 0.99 and facts["calibration"]["temperature"] > 0


def test_build_names_the_model_it_put_in_the_site(tmp_path):
    proc = cli("web", "build", str(tmp_path / "site"), "--model", str(INT8), "--json")
    sha = hashlib.sha256(INT8.read_bytes()).hexdigest()
    assert proc.returncode == 0 and f"model: {INT8} (int8, sha256 {sha[:12]})" in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["built_from"]["model_sha256"] == sha
    assert json.loads((tmp_path / "site/model.json").read_text())["sha256"] == sha


def test_cold_load_is_under_4_mb_compressed(sites):
    from edgemnist import web

    sizes = web.sizes(sites["int8"])
    fetched = [f for f in sizes if f not in ("site.json",)]
    assert sum(sizes[f].get("br", sizes[f]["raw"]) for f in fetched) <= 4_000_000


@pytest.mark.parametrize("content", [b"not an onnx model", b""])
def test_build_refuses_a_non_onnx_model(tmp_path, content):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    r = cli("web", "build", str(tmp_path / "site"), "--model", str(bad))
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: ")
    assert not (tmp_path / "site").exists()


def test_build_refuses_a_contract_breaking_model(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 3, 32, 32])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3, 32, 32])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["pixels"], ["logits"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, tmp_path / "other.onnx")
    r = cli("web", "build", str(tmp_path / "site"), "--model", str(tmp_path / "other.onnx"))
    assert r.returncode == 2 and "expected float32 [N, 1, 28, 28]" in r.stderr
    assert not (tmp_path / "site").exists()


def test_build_where_nothing_can_be_written_is_one_line_exit_2():
    r = cli("web", "build", "/proc/edgemnist-site", "--model", str(INT8))  # /proc takes no new files: was exit 3
    assert r.returncode == 2 and "cannot write the site /proc/edgemnist-site: " in r.stderr and "Traceback" not in r.stderr


def test_build_will_not_replace_a_directory_that_is_not_a_site(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("mine")
    r = cli("web", "build", str(tmp_path / "docs"), "--model", str(INT8))
    assert r.returncode == 2 and "not an edgemnist site" in r.stderr
    assert (tmp_path / "docs" / "notes.txt").read_text() == "mine"


def test_serve_refuses_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = cli("web", "serve", "--port", str(port), "--site", str(tmp_path / "site"), "--model", str(INT8))
    assert r.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "site").exists()


def test_serve_sends_compressed_files_with_the_right_types(tmp_path, sites):
    proc = subprocess.Popen([sys.executable, "-m", "edgemnist", "web", "serve", "--port", "0", "--json",
                             "--site", str(sites["int8"]), "--model", str(INT8)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        url = json.loads(read_line(proc.stdout))["url"]
        assert url.startswith("http://127.0.0.1:")

        def get(path, encoding):
            req = urllib.request.Request(url + path, headers={"Accept-Encoding": encoding})
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.headers, r.read()

        headers, body = get("ort/ort-wasm-simd-threaded.wasm", "gzip, deflate, br, zstd")
        assert headers["Content-Type"] == "application/wasm" and headers["Content-Encoding"] == "br"
        assert len(body) < 3_000_000
        headers, body = get("edgemnist.js", "gzip")
        assert headers["Content-Type"].startswith("text/javascript") and headers["Content-Encoding"] == "gzip"
        headers, body = get("", "identity")
        assert headers["Content-Type"].startswith("text/html") and "Content-Encoding" not in headers and b"<canvas" in body
        with pytest.raises(urllib.error.HTTPError, match="404"):
            get("../../etc/passwd", "identity")
    finally:
        proc.terminate()
        proc.wait(10)


# ---------------------------------------------------------------- in the browser

@pytest.fixture(scope="module")
def int8_page(browser, sites):
    with b.served(sites["int8"]) as url:
        page, console = b.open_page(browser, url)
        yield page, console
        page.context.close()


def test_fp32_in_the_browser_matches_python_on_all_10000(browser, sites, mnist):
    with b.served(sites["fp32"]) as url:
        page, console = b.open_page(browser, url)
        web = b.logits_in_page(page, mnist.test_images)
        page.context.close()
    python = runtime.open_model(FP32, "cpu", quiet=True).logits(images_to_pixels(mnist.test_images))
    assert (web.argmax(1) == python.argmax(1)).mean() == 1.0
    assert np.abs(web - python).max() <= 1e-4
    assert console.errors == []


@pytest.mark.parametrize("kernels", ["reference", "fused"])
def test_int8_in_the_browser_matches_the_reference_semantics(browser, sites, mnist, kernels):
    with b.served(sites["int8"]) as url:
        page, console = b.open_page(browser, url + ("?int8=fused" if kernels == "fused" else ""))
        assert page.evaluate("window.edgemnist.int8Kernels") == kernels
        web = b.logits_in_page(page, mnist.test_images)
        page.context.close()
    model = runtime.open_model(INT8, "cpu", quiet=True, reference=True)
    reference = model.logits(images_to_pixels(mnist.test_images))
    agreement = (web.argmax(1) == reference.argmax(1)).mean()
    accuracy = (web.argmax(1) == mnist.test_labels).mean()
    recorded = float(model.metadata["edgemnist.accuracy.int8"])
    assert agreement >= Thresholds.reference_min_agreement, agreement
    assert np.abs(web - reference).max() <= Thresholds.reference_max_abs_dlogit
    assert abs(accuracy - recorded) * 100 <= Thresholds.verify_max_drop_pp, (accuracy, recorded)
    assert console.errors == []


CLASSIFY_FILES = """async ([names, count]) => {
  const out = [];
  for (const name of names) {
    try {
      const r = await window.edgemnist.classifyBlob(await (await fetch('/files/' + name)).blob(), count);
      out.push({label: r.label, pixels: Array.from(r.pixels)});
    } catch (e) { out.push({error: e.message}); }
  }
  return out;
}"""


def classify_files_in_page(page, paths: list[Path], count: list[int] | None = None) -> list[dict]:
    """Each file through the page's classifyBlob (`count`: its digits, as infer's --digits)."""
    blobs = {p.name: p.read_bytes() for p in paths}
    page.unroute("**/files/*")
    page.route("**/files/*", lambda route: route.fulfill(body=blobs[route.request.url.rsplit("/", 1)[1]]))
    return page.evaluate(CLASSIFY_FILES, [[p.name for p in paths], count])


def pad_bitmaps(images: np.ndarray, rng: np.random.Generator, out: Path) -> list[Path]:
    """MNIST digits as a drawing pad holds them: dark ink on a white 280x280 PNG, anywhere, any size."""
    paths = []
    for i, digit in enumerate(images):
        side = int(rng.integers(90, 240))
        ink = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC), np.float32) / 255
        canvas = np.ones((280, 280), np.float32)
        y, x = rng.integers(0, 280 - side, size=2)
        canvas[y : y + side, x : x + side] -= ink
        path = out / f"pad{i:03d}.png"
        Image.fromarray(np.round(np.clip(canvas, 0, 1) * 255).astype(np.uint8)).convert("RGB").save(path)
        paths.append(path)
    return paths


# The worst pixel between the page's preprocess.js and preprocess.py on the same decoded pixels: the
# same steps in float32, summed in other orders (measured: at most 6e-7 on 100 pictures)
PORT_PIXEL_BOUND = 1e-5


def crop_pngs(mnist, n: int, out: Path) -> list[Path]:
    """Crops of every kind (testkit/realworld.render_crop), re-saved as PNG: lossless, so the page and
    Pillow decode the same pixels."""
    paths, _, _ = realworld.build_crops(mnist.test_images, mnist.test_labels, n, out, seed=8)
    pngs = []
    for p in map(Path, paths):
        png = p.with_name(p.stem + "-crop.png")
        with Image.open(p) as im:
            im.convert("RGB").save(png)
        pngs.append(png)
    return pngs


def test_page_preprocessing_matches_preprocess_py(int8_page, mnist, tmp_path):
    """The JS port against preprocess.py, step for step, on 500 pictures: pad bitmaps (280 px, reduced
    2x) and crops of every kind (tight, touching edges, tiny, blocky, form cells, neighbours' pieces;
    both polarities). The worst pixel of every 28x28 within PORT_PIXEL_BOUND, every answer the same."""
    page, console = int8_page
    rng = np.random.default_rng(7)
    paths = pad_bitmaps(mnist.test_images[rng.choice(10000, 150, replace=False)], rng, tmp_path)
    paths += crop_pngs(mnist, 350, tmp_path / "crops")
    model = runtime.open_model(INT8, "cpu", quiet=True)
    for path, r in zip(paths, classify_files_in_page(page, paths, [1, 1])):  # one digit each: the preprocessing alone
        try:
            python = to_mnist(load_gray(path))
        except PreprocessError as e:
            assert r.get("error") == str(e), path.name
            continue
        assert "error" not in r, (path.name, r)
        assert np.abs(np.array(r["pixels"], np.float32).reshape(28, 28) - python).max() <= PORT_PIXEL_BOUND, path.name
        assert r["label"] == int(model.logits(python[None, None]).argmax()), path.name
    assert console.errors == []


def test_photos_dropped_on_the_page_get_infers_answer(int8_page, mnist, tmp_path):
    """The same files in the page and in `infer`. Opaque PNGs (both decode the same pixels) give the
    same 28x28 image to PORT_PIXEL_BOUND and the same answer, every one. The others are decoded
    differently: JPEG and WebP by other decoders (Chromium's against Pillow's, which reads JPEGs at a
    reduced DCT scale), and PNGs with transparency through the canvas's premultiplied alpha (measured:
    up to 0.81 on one pixel of a 28x28 image); at most 1% of their answers may differ (one of 300
    files measured)."""
    from edgemnist import infer

    page, console = int8_page
    paths, labels, _ = realworld.build(mnist.test_images, mnist.test_labels, 300, tmp_path, seed=11)
    python = infer.answer_files(runtime.open_model(INT8, "cpu", quiet=True), paths)
    web = classify_files_in_page(page, [Path(p) for p in paths])
    opaque = [i for i, p in enumerate(paths) if p.endswith(".png") and Image.open(p).mode == "RGB"]
    others = [i for i in range(len(paths)) if i not in opaque]
    assert len(opaque) >= 60 and len(others) >= 100
    for i in opaque:
        assert web[i].get("label") == python[i].get("label") and "error" not in web[i], (paths[i], web[i].get("label"), python[i])
        seen = np.array(web[i]["pixels"], np.float32).reshape(28, 28)
        assert np.abs(seen - to_mnist(load_gray(paths[i]))).max() <= PORT_PIXEL_BOUND, paths[i]
    differ = [paths[i] for i in others if web[i].get("label", -1) != python[i].get("label", -2)]
    assert len(differ) <= 0.01 * len(others), differ
    assert console.errors == []


# Digits drawn stroke by stroke, in pad coordinates 0..1.
DIGITS = {
    1: [[(0.52, 0.15), (0.5, 0.85)]],
    7: [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]],
    0: [[(0.5 + 0.22 * np.sin(t), 0.5 - 0.33 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 25)]],
    4: [[(0.35, 0.15), (0.3, 0.58), (0.74, 0.58)], [(0.62, 0.3), (0.62, 0.88)]],
    2: [[(0.3, 0.3), (0.4, 0.18), (0.55, 0.16), (0.67, 0.25), (0.66, 0.4), (0.3, 0.82), (0.74, 0.82)]],
}


def draw(page, strokes, place: float = 0.5):
    """Strokes in a square of the pad as tall as it, centred `place` of the way across."""
    box = page.locator("#pad").bounding_box()
    left = box["x"] + place * box["width"] - box["height"] / 2
    at = lambda p: (left + p[0] * box["height"], box["y"] + p[1] * box["height"])  # noqa: E731
    for stroke in strokes:
        page.mouse.move(*at(stroke[0]))
        page.mouse.down()
        for p in stroke[1:]:
            page.mouse.move(*at(p), steps=6)
        page.mouse.up()


def settled_label(page) -> int:
    """The label the page shows once it has answered for the final drawing."""
    # an answer shown, and none in flight: the page runs the latest drawing last
    page.wait_for_function("document.getElementById('label').dataset.label !== '' && !document.getElementById('pad').dataset.busy")
    return int(page.locator("#label").get_attribute("data-label"))


def test_drawing_with_pointer_events(browser, sites, tmp_path):
    with b.served(sites["int8"]) as url:
        page, console = b.open_page(browser, url, viewport={"width": 900, "height": 800})
        model = runtime.open_model(INT8, "cpu", quiet=True)
        for digit, strokes in DIGITS.items():
            page.keyboard.press("Escape")
            assert page.locator("#label").inner_text() == "–"
            draw(page, strokes)
            shown = settled_label(page)
            assert shown == digit, f"drew {digit}, page says {shown}"
            bars = page.locator("#bars li")
            p = np.array([float(bars.nth(d).get_attribute("data-p")) for d in range(10)])
            assert abs(p.sum() - 1) < 1e-4 and p.argmax() == digit
            assert bars.nth(digit).get_attribute("class") == "top"
            # drawn, not just in the DOM: the fill's width reaches its share of the track (a CSS transition)
            page.wait_for_function("""([d, p]) => {
                const li = document.querySelectorAll('#bars li')[d];
                const track = li.querySelector('.track').getBoundingClientRect(), fill = li.querySelector('.fill').getBoundingClientRect();
                return Math.abs(fill.width - p * track.width) <= 2; }""", arg=[digit, float(p[digit])], timeout=5000)
            # the pad's bitmap through preprocess.py: the same label, the same 28x28 image
            png = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
            path = tmp_path / f"drawn{digit}.png"
            path.write_bytes(base64.b64decode(png.split(",", 1)[1]))
            python = to_mnist(load_gray(path))
            seen = np.array(page.evaluate(
                "(async () => Array.from((await window.edgemnist.classifyImageData(document.getElementById('pad')"
                ".getContext('2d').getImageData(0, 0, 840, 280))).pixels))()"), np.float32).reshape(28, 28)
            assert np.abs(seen - python).max() <= PORT_PIXEL_BOUND
            assert int(model.logits(python[None, None]).argmax()) == digit
            page.screenshot(path=tmp_path / f"drawn{digit}-page.png")
        # a number across the pad: the page reads it as `infer` reads the pad's bitmap, a box per digit
        page.keyboard.press("Escape")
        for digit, place in ((7, 0.2), (0, 0.5), (4, 0.8)):
            draw(page, DIGITS[digit], place)
        page.wait_for_function("document.getElementById('label').dataset.number !== '' && !document.getElementById('pad').dataset.busy")
        shown = page.locator("#label").get_attribute("data-number")
        png = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
        path = tmp_path / "number.png"
        path.write_bytes(base64.b64decode(png.split(",", 1)[1]))
        from edgemnist import infer

        python = infer.answer_files(model, [str(path)])[0]
        assert shown == python["number"] == "704", (shown, python)
        assert page.locator("#digits li").count() == 3 and not page.locator("#bars").is_visible()
        page.screenshot(path=tmp_path / "number-page.png")
        assert console.errors == []
        page.context.close()


def test_bad_input_in_the_page(int8_page, tmp_path):
    page, console = int8_page
    page.keyboard.press("Escape")
    assert "Draw a digit" in page.locator("#message").inner_text()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 100)
    page.set_input_files("#file", str(broken))
    page.wait_for_function("document.getElementById('message').textContent.includes('cannot decode')")
    huge = tmp_path / "huge.png"
    Image.new("L", (8000, 6000), 255).save(huge)  # 48 MP, a few kB of PNG
    page.set_input_files("#file", str(huge))
    page.wait_for_function("document.getElementById('message').textContent.includes('larger than 40 MP')")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), (255, 255, 255)).save(blank)
    page.set_input_files("#file", str(blank))
    page.wait_for_function("document.getElementById('message').textContent.includes('No digit found')")
    assert page.locator("#label").inner_text() == "–"
    assert console.errors == []


# In the page: model.onnx with each (offset, bit) flipped in turn through the page's own check.
CHECK_FLIPS = """async (flips) => {
  const bytes = new Uint8Array(await (await fetch('model.onnx')).arrayBuffer());
  const api = window.edgemnist, expected = api.facts.sha256;
  await api.checkModelBytes(bytes, expected);  // the intact model passes
  let refused = 0;
  for (const [offset, bit] of flips) {
    const copy = bytes.slice();
    copy[offset] ^= 1 << bit;
    try { await api.checkModelBytes(copy, expected); } catch (e) { if (e instanceof api.IntegrityError) refused++; }
  }
  return refused;
}"""


def test_the_page_refuses_every_seeded_bit_flip_in_the_weights(int8_page):
    page, console = int8_page
    flips = tamper.weight_bit_flips(INT8.read_bytes(), 200, seed=17)
    assert page.evaluate(CHECK_FLIPS, flips) == 200
    assert console.errors == []


def test_the_pages_own_sha256_matches_hashlib(int8_page):
    """Without SubtleCrypto (plain http from another host) the page hashes in JS."""
    page, _ = int8_page
    rng = np.random.default_rng(0)
    for n in (0, 1, 55, 56, 63, 64, 65, 1000, 200_003):
        blob = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        js = page.evaluate("(b64) => { const s = atob(b64), b = Uint8Array.from(s, (c) => c.charCodeAt(0));"
                           " return Array.from(window.edgemnist.sha256Js(b), (v) => v.toString(16).padStart(2, '0')).join(''); }",
                           base64.b64encode(blob).decode())
        assert js == hashlib.sha256(blob).hexdigest(), n


def test_a_damaged_model_on_the_site_is_not_run(browser, sites, tmp_path):
    from edgemnist import web

    site = tmp_path / "site"
    shutil.copytree(sites["int8"], site)
    blob = (site / "model.onnx").read_bytes()
    offset, bit = tamper.weight_bit_flips(blob, 1, seed=9)[0]
    (site / "model.onnx").write_bytes(tamper.flipped(blob, offset, bit))
    web._write_compressed(site / "model.onnx")  # what is served: the brotli sibling
    with b.served(site) as url:
        page = browser.new_context().new_page()
        page.goto(url)
        page.wait_for_function("document.body.dataset.ready === 'error'")
        message = page.locator("#message").inner_text()
        page.context.close()
    assert "not the model this site was built with" in message and "edgemnist web build" in message


def test_the_page_loads_nothing_from_elsewhere(int8_page):
    page, console = int8_page
    origin = page.url.split("/", 3)[:3]
    assert console.requests and all(u.split("/", 3)[:3] == origin or u.startswith(("data:", "blob:")) for u in console.requests)


def test_phone_sized_viewport(browser, sites):
    with b.served(sites["int8"]) as url:
        page, console = b.open_page(browser, url, viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        pad = page.locator("#pad").bounding_box()
        assert pad["width"] >= 300 and pad["x"] >= 0 and pad["x"] + pad["width"] <= 390
        page.context.close()
    assert console.errors == []


CLASSIFY_NUMBERS = """async (names) => {
  const out = [];
  for (const name of names) {
    try {
      const r = await window.edgemnist.classifyBlob(await (await fetch('/files/' + name)).blob());
      out.push({number: r.number, sure: r.sure, digits: r.digits.map((d) => ({label: d.label, box: d.box ?? null})),
                pixels: Array.from(r.pixels)});
    } catch (e) { out.push({error: e.message}); }
  }
  return out;
}"""


def test_numbers_in_the_page_get_infers_answer(int8_page, mnist, tmp_path):
    """Pictures of numbers of every lossless kind (gaps, close, touching, five digits: PNGs in both
    polarities), 250 of them, and the touching pairs among 300 more whose narrow mark the model finds
    no digit in (read again as a line), read by the page's port of segment.py and by `infer`: the same
    number, the same digits with the same boxes, the same "sure" on every one, and the digits' 28x28s
    within PORT_PIXEL_BOUND on the worst pixel."""
    from edgemnist import answers
    from edgemnist.preprocess import prepare

    page, console = int8_page
    paths: list[str] = []
    for kind, n in (("gaps", 70), ("close", 70), ("touching", 60), ("zip", 50)):
        paths += written_numbers.build(mnist.test_images, mnist.test_labels, n, tmp_path / kind, kind, seed=21)[0]
    model = runtime.open_model(INT8, "cpu", quiet=True)
    more = written_numbers.build(mnist.test_images, mnist.test_labels, 300, tmp_path / "narrow", "touching", seed=11,
                                 part=realworld.HELD_OUT)[0]
    pictures = prepare([(p, False) for p in more], model.polarity)
    first = answers._answers(model, dict(enumerate(pictures)), 3, None)
    narrow = [path for j, path in enumerate(more) if answers.reads_again(pictures[j], first[j])]
    assert len(narrow) >= 3, narrow
    paths += narrow
    python = [next(answers.for_prepared(model, [p], prepare([(p, False)], model.polarity))) for p in paths]
    blobs = {Path(p).name: Path(p).read_bytes() for p in paths}
    page.unroute("**/files/*")
    page.route("**/files/*", lambda route: route.fulfill(body=blobs[route.request.url.rsplit("/", 1)[1]]))
    web = page.evaluate(CLASSIFY_NUMBERS, [Path(p).name for p in paths])
    differ = []
    for path, w, p in zip(paths, web, python):
        if "pixels" in w and "pixels" in p:
            seen, mine = np.array(w.pop("pixels"), np.float32).reshape(-1, 28, 28), p["pixels"].reshape(-1, 28, 28)
            assert seen.shape == mine.shape and np.abs(seen - mine).max() <= PORT_PIXEL_BOUND, path
        w.pop("pixels", None)
        mine = {"number": p.get("number"), "sure": p.get("sure"),
                "digits": [{"label": d["label"], "box": d.get("box")} for d in p.get("digits", [])]}
        if "error" in p:
            mine = {"error": p["error"]}
        if w != mine:
            differ.append((path, w, mine))
    assert differ == [], (len(differ), differ[:3])
    assert console.errors == []
