"""`edgemnist infer`: real-world images of MNIST test digits, MNIST-form pass-through, bad input."""

from __future__ import annotations

import io
import json
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgemnist import runtime
from edgemnist.contract import images_to_pixels
from edgemnist.infer import answer_files
from edgemnist.preprocess import PreprocessError, preprocess

import fuzz
import handwriting
import realworld
from conftest import ROOT, run_cli

INT8 = ROOT / "exported" / "mlp.int8.onnx"


@pytest.fixture(scope="module")
def model():
    return runtime.open_model(INT8, "cpu", quiet=True)


def test_real_world_renderings_keep_accuracy(mnist, model, tmp_path):
    """Photos, scans and canvases of test digits the preprocessing was never tuned on (the held-out slice)."""
    paths, labels, idx = realworld.build(mnist.test_images, mnist.test_labels, 1000, tmp_path, seed=1, part=realworld.HELD_OUT)
    results = answer_files(model, paths)
    acc = float(np.mean([r.get("label") == y for r, y in zip(results, labels)]))
    clean = float((model.logits(images_to_pixels(mnist.test_images[idx])).argmax(1) == labels).mean())
    assert acc >= 0.985, acc
    assert acc >= clean - 0.008, (acc, clean)  # measured: 99.2% vs 99.5% clean on these 1,000 (98.6% with the earlier preprocessing)


def _accuracy(model, paths, labels) -> float:
    return float(np.mean([r.get("label") == y for r, y in zip(answer_files(model, paths), labels)]))


def test_tight_crops_keep_accuracy(mnist, model, tmp_path):
    """Held-out test digits cropped tight to the ink (it touches all four edges), both polarities, next
    to the same digits cropped with paper all round: the polarity, lighting and crop steps must not
    need a margin of paper."""
    build = realworld.build_crops
    tight, labels, idx = build(mnist.test_images, mnist.test_labels, 1000, tmp_path / "t", seed=1, part=realworld.HELD_OUT, kind="tight")
    margin, same, _ = build(mnist.test_images, mnist.test_labels, 1000, tmp_path / "m", seed=1, part=realworld.HELD_OUT, kind="margin")
    assert np.array_equal(labels, same)
    acc, with_margin = _accuracy(model, tight, labels), _accuracy(model, margin, labels)
    assert acc >= 0.985 and acc >= with_margin - 0.01, (acc, with_margin)  # measured: 98.6% vs 99.2% (74.7% with the earlier preprocessing)


def test_crops_of_every_kind(mnist, model, tmp_path):
    """Crops as people cut them (testkit/realworld.render_crop): tight, touching one to three edges,
    tiny (8-32 px), tiny and zoomed blockily, a form's cell with its box lines, a piece of the
    neighbouring digit at an edge; both polarities. Held-out digits."""
    records: list[dict] = []
    paths, labels, _ = realworld.build_crops(mnist.test_images, mnist.test_labels, 1200, tmp_path, seed=1,
                                             part=realworld.HELD_OUT, records=records)
    results = answer_files(model, paths)
    right = np.array([r.get("label") == y for r, y in zip(results, labels)])
    per_kind = {k: float(right[[r["kind"] == k for r in records]].mean()) for k in realworld.CROP_KINDS}
    # measured on 2,000 held-out crops (seed 1): 97.2% in all; tiny 94.1%, blocky 97.9%, cell 97.8%,
    # tight 98.1%, neighbour 96.4%, edges 99.1% (AMD EPYC, the reference trained with touching pairs)
    assert right.mean() >= 0.96 and min(per_kind.values()) >= 0.9, (right.mean(), per_kind)
    assert sum("note" in r for r in results) <= 6  # one digit each: hardly ever taken for two (measured 3 of 2,000)


def test_mnist_form_images_pass_through_unchanged(mnist, tmp_path):
    for i in range(20):
        path = tmp_path / f"m{i}.png"
        Image.fromarray(mnist.test_images[i], mode="L").save(path)
        assert np.array_equal(preprocess(path), mnist.test_images[i].astype(np.float32) / 255.0)


def _digit_image(mnist, i=0, size=200) -> Image.Image:
    """A dark-on-white rendering of test digit i (label mnist.test_labels[i])."""
    ink = Image.fromarray(mnist.test_images[i], mode="L").resize((size, size), Image.Resampling.BICUBIC)
    return Image.eval(ink, lambda v: 255 - v)


def test_formats_modes_and_exif_orientation(mnist, model, tmp_path):
    i = 0  # a 7: not rotation invariant
    label = int(mnist.test_labels[i])
    img = _digit_image(mnist, i)
    files = []
    for fmt, ext in [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("BMP", "bmp"), ("GIF", "gif"), ("TIFF", "tif")]:
        path = tmp_path / f"d.{ext}"
        img.save(path, format=fmt)
        files.append(path)
    misnamed = tmp_path / "really_a_png.jpg"  # decoded by content, not by extension
    img.save(misnamed, format="PNG")
    palette = tmp_path / "palette.png"
    img.convert("P").save(palette)
    sixteen = tmp_path / "sixteen.png"
    Image.fromarray(np.asarray(img, np.uint16) * 257).save(sixteen)
    rotated = tmp_path / "exif.jpg"  # stored sideways, EXIF says: rotate 90° clockwise to display
    exif = Image.Exif()
    exif[0x0112] = 6
    img.rotate(90, expand=True).save(rotated, exif=exif)
    transparent = tmp_path / "alpha.png"
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[..., 3] = 255 - np.asarray(img)
    Image.fromarray(rgba, mode="RGBA").save(transparent)
    files += [misnamed, palette, sixteen, rotated, transparent]
    results = answer_files(model, [str(f) for f in files])
    assert [(Path(r["path"]).name, r.get("label")) for r in results] == [(f.name, label) for f in files]


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")


@pytest.fixture
def bad_files(mnist, tmp_path):
    img = _digit_image(mnist)
    png, jpg = io.BytesIO(), io.BytesIO()
    img.save(png, format="PNG")
    img.save(jpg, format="JPEG")
    files = {
        "empty.png": (b"", "empty file"),
        "text.png": (b"hello, I am text\n" * 10, "not an image"),
        "trunc.png": (_truncated(png.getvalue()), "cannot decode image"),
        "trunc.jpg": (_truncated(jpg.getvalue()), "cannot decode image"),
        "bomb.png": (_png_header_only(30000, 30000), "refusing to decode it"),
    }
    out = {}
    for name, (blob, message) in files.items():
        (tmp_path / name).write_bytes(blob)
        out[str(tmp_path / name)] = message
    Image.new("L", (300, 300), 255).save(tmp_path / "white.png")
    Image.new("L", (300, 300), 0).save(tmp_path / "black.png")
    out[str(tmp_path / "white.png")] = "no digit found"
    out[str(tmp_path / "black.png")] = "no digit found"
    (tmp_path / "adir").mkdir()
    out[str(tmp_path / "adir")] = "is a directory"
    out[str(tmp_path / "missing.png")] = "no such file"
    return out


def test_bad_images_each_get_a_one_line_error(bad_files):
    for path, message in bad_files.items():
        with pytest.raises(PreprocessError, match=message):
            preprocess(path)


def test_infer_cli_json_processes_every_image_and_exits_1_on_any_failure(mnist, bad_files, tmp_path):
    good = tmp_path / "good.png"
    _digit_image(mnist).save(good)
    paths = [str(good), *bad_files]
    proc = run_cli("infer", *paths, "--json", "--model", str(INT8), "--provider", "cpu", "--save-preprocessed", str(tmp_path / "seen"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["path"] for r in lines] == [p for p in paths if not Path(p).is_dir()]  # a folder is searched: this one is empty
    first = lines[0]
    assert first["label"] == int(mnist.test_labels[0]) and len(first["probabilities"]) == 10
    assert abs(sum(first["probabilities"]) - 1) < 1e-6 and first["confidence"] == max(first["probabilities"])
    assert Image.open(first["preprocessed"]).size == (28, 28)
    for r in lines[1:]:
        assert set(r) == {"path", "error"} and bad_files[r["path"]] in r["error"]


def test_calibrated_confidence_and_not_sure(mnist, tmp_path):
    """A crisp digit is answered with high confidence (label smoothing alone showed ~91%); below the
    model's not_sure_below the answer is marked not sure, in JSON and in text."""
    onnx = pytest.importorskip("onnx")
    good = tmp_path / "good.png"
    _digit_image(mnist).save(good)
    r = json.loads(run_cli("infer", str(good), "--json", "--model", str(INT8)).stdout)
    assert r["confidence"] > 0.97 and r["sure"] is True
    strict = onnx.load(INT8)
    for p in strict.metadata_props:
        if p.key == "edgemnist.calibration":
            p.value = json.dumps(json.loads(p.value) | {"not_sure_below": 0.999999})
    onnx.save(strict, tmp_path / "strict.onnx")
    r = json.loads(run_cli("infer", str(good), "--json", "--model", str(tmp_path / "strict.onnx")).stdout)
    assert r["sure"] is False
    text = run_cli("infer", str(good), "--model", str(tmp_path / "strict.onnx")).stdout
    assert "not sure" in text


def test_eval_reports_the_expected_calibration_error(tmp_path):
    proc = run_cli("eval", str(INT8), "--json", "--provider", "cpu")
    cal = json.loads(proc.stdout)["calibration"]
    assert cal["bins"] == 15 and 0 < cal["ece"] <= 0.005 and cal["median_confidence"] > 0.99


def test_infer_cli_plain_text_and_exit_0(mnist, tmp_path):
    good = tmp_path / "good.png"
    _digit_image(mnist).save(good)
    proc = run_cli("infer", str(good), "--model", str(INT8), "--top-k", "2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{good}: {int(mnist.test_labels[0])}") and "top-2" in proc.stdout


def test_infer_default_model_is_the_packaged_one_outside_the_repo(mnist, tmp_path):
    good = tmp_path / "good.png"
    _digit_image(mnist).save(good)
    proc = run_cli("infer", str(good), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["label"] == int(mnist.test_labels[0])


def test_model_that_is_not_onnx_or_breaks_the_contract_exits_2(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text("not a model")
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 784])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 784])])
    wrong = tmp_path / "wrong.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), wrong)
    (tmp_path / "x.png").write_bytes(b"")
    for model, message in [(not_onnx, "is not a usable ONNX model"), (wrong, "expected float32 [N, 1, 28, 28]")]:
        proc = run_cli("infer", str(tmp_path / "x.png"), "--model", str(model))
        assert proc.returncode == 2 and message in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("error:") and "Traceback" not in proc.stderr


def test_handwriting_forms_mnist_rarely_has(model, tmp_path):
    """Digits drawn as pen strokes (testkit/handwriting.py, which no training reads): a 1 with a flag
    and with a flag and a foot, a 7 with a crossbar, an open-top 4, a 9 with a straight tail, a 2 with
    a loop, and the common form of every digit; thin pen, pen and thick marker; upright and slanted."""
    records: list[dict] = []
    paths, labels = handwriting.build(800, tmp_path, seed=2, records=records)
    right = np.array([r.get("label") == y for r, y in zip(answer_files(model, paths), labels)])
    per_form = {f: float(right[[r["form"] == f for r in records]].mean()) for f in handwriting.FORMS}
    # measured: 99.9% (every form 98-100%) since training draws these forms too (training/variants.py);
    # 98.1% before, a 1 with a long flag 76% (read as a 7)
    assert right.mean() >= 0.98 and min(per_form.values()) >= 0.93, per_form


def test_save_preprocessed_keeps_every_result_apart(mnist, model, tmp_path):
    """a/1.png and b/1.jpg both have the stem 1: each result names its own file."""
    for sub, ext in (("a", "png"), ("b", "jpg")):
        (tmp_path / sub).mkdir()
        _digit_image(mnist, 0 if sub == "a" else 1).convert("RGB").save(tmp_path / sub / f"1.{ext}")
    results = answer_files(model, [str(tmp_path / "a/1.png"), str(tmp_path / "b/1.jpg")], save_dir=tmp_path / "seen")
    saved = [r["preprocessed"] for r in results]
    assert len(set(saved)) == 2 and all(Path(p).is_file() for p in saved)
    for r, i in zip(results, (0, 1)):  # each file holds its own digit
        seen = np.asarray(Image.open(r["preprocessed"]), np.float32)[None, None] / 255
        assert int(model.logits(seen).argmax()) == int(mnist.test_labels[i]) == r["label"]


FORMATS = [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("GIF", "gif"), ("TIFF", "tif"), ("BMP", "bmp")]


def test_damaged_image_files_end_as_a_result_or_one_line(mnist, tmp_path):
    """Seeded mutations of real image files of six formats (bit flips, truncation, header damage,
    splices): each ends as a 28x28 image or a PreprocessError with a one-line message, never another
    exception or a warning."""
    rng = np.random.default_rng(4)
    originals = []
    for fmt, ext in FORMATS:
        buf = io.BytesIO()
        _digit_image(mnist, int(rng.integers(100)), size=int(rng.integers(40, 200))).save(buf, format=fmt)
        originals.append((ext, buf.getvalue()))
    outcomes = {"digit": 0, "refused": 0}
    for i, (which, _, blob) in enumerate(fuzz.campaign([blob for _, blob in originals], 360, seed=4)):
        path = tmp_path / f"m{i}.{originals[which][0]}"
        path.write_bytes(blob)
        try:
            with warnings.catch_warnings():  # and nothing else printed: a warning fails the test
                warnings.simplefilter("error")
                x = preprocess(path)
        except PreprocessError as e:
            assert str(e) and "\n" not in str(e)
            outcomes["refused"] += 1
            continue
        assert x.shape == (28, 28) and np.isfinite(x).all()
        outcomes["digit"] += 1
    assert outcomes["refused"] > 0 and outcomes["digit"] > 0, outcomes


def test_every_command_that_runs_a_model_says_which(mnist, tmp_path):
    """Path, precision and the first 12 hex digits of the SHA-256 of the bytes that were loaded: on
    stderr for people (also with --json), in the JSON of eval, verify, bench and web build."""
    import hashlib

    good = tmp_path / "good.png"
    _digit_image(mnist).save(good)
    sha = hashlib.sha256(INT8.read_bytes()).hexdigest()
    for args in (["infer", str(good), "--json"], ["infer", str(good)], ["eval", str(INT8)]):
        proc = run_cli(*args, "--model", str(INT8)) if args[0] == "infer" else run_cli(*args)
        assert proc.returncode == 0 and f"model: {INT8} (int8, sha256 {sha[:12]})" in proc.stderr, proc.stderr
    assert json.loads(run_cli("eval", str(INT8), "--json").stdout)["sha256"] == sha
    bench = run_cli("bench", "--models", str(INT8), "--no-torch", "--batch-sizes", "1", "--duration", "0.05", "--json")
    assert f"model: {INT8} (int8, sha256 {sha[:12]})" in bench.stderr, bench.stderr
    assert {r["sha256"] for r in json.loads(bench.stdout)["rows"] if r["backend"].startswith("ort-")} == {sha}
