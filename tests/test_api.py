"""The Python API (`edgemnist.load`): every kind of picture gives the answer `infer` gives, the raw
contract, errors as UserError subclasses with the CLI's messages, an import without side effects,
and the README's examples, run as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import edgemnist
from edgemnist import ImageError, InputError, ModelError, UserError, runtime
from edgemnist.contract import images_to_pixels
from edgemnist.infer import answer_files

from conftest import ROOT

INT8 = ROOT / "exported" / "mlp.int8.onnx"


@pytest.fixture(scope="module")
def model():
    return edgemnist.load(INT8, provider="cpu")


def test_importing_edgemnist_imports_nothing_and_load_never_imports_torch_or_onnx():
    code = """
import sys, edgemnist
heavy = [m for m in ("numpy", "PIL", "onnxruntime", "onnx", "torch") if m in sys.modules]
assert not heavy, heavy
from PIL import Image, ImageDraw
before = Image.MAX_IMAGE_PIXELS
im = Image.new("L", (60, 60), 255)
ImageDraw.Draw(im).line([(30, 8), (30, 52)], fill=0, width=5)
assert edgemnist.load().classify(im).label == 1
assert Image.MAX_IMAGE_PIXELS == before and "torch" not in sys.modules and "onnx" not in sys.modules
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_every_kind_of_picture_gets_infers_answer(model, mnist, tmp_path):
    paths = []
    for i in range(12):
        a = 255 - mnist.test_images[i]
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.kron(a, np.ones((3, 3), np.uint8))).save(path)  # 84 px, dark on light
        paths.append(path)
    expected = answer_files(model.model, [str(p) for p in paths])
    for path, want in zip(paths, expected):
        gray = np.asarray(Image.open(path))
        kinds = {
            "str": str(path), "Path": path, "bytes": path.read_bytes(), "PIL": Image.open(path),
            "uint8": gray, "float": gray / 255.0, "RGB": np.stack([gray] * 3, -1),
            "RGBA": np.dstack([gray, gray, gray, np.full_like(gray, 255)]),
        }
        for kind, x in kinds.items():
            got = model.classify(x)
            assert (got.label, got.sure) == (want["label"], want["sure"]), kind
            assert np.allclose(got.probabilities, want["probabilities"], atol=1e-6), kind
    as_list = model.classify_batch([str(p) for p in paths])
    assert [r.label for r in as_list] == [r["label"] for r in expected]


def test_a_batch_in_the_contract_goes_straight_to_the_model(model, mnist):
    images = mnist.test_images[:2000]
    results = model.classify_batch(images)
    expected = runtime.open_model(INT8, "cpu", quiet=True).logits(images_to_pixels(images))
    assert [r.label for r in results] == expected.argmax(1).tolist()
    assert np.array_equal(model.logits(images), expected) and np.array_equal(model.logits(images_to_pixels(images)), expected)
    assert model.classify_batch(images[:, None].astype(np.float32) / 255)[7].label == int(expected[7].argmax())
    assert model.classify_batch(images[:0]) == []
    assert results[0].top_k[0] == edgemnist.api.Candidate(results[0].label, results[0].confidence)  # typed, most probable first


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda p: str(p / "missing.png"), ImageError, r"missing.png: no such file"),
        (lambda p: b"not an image", ImageError, r"^not an image \(unrecognised content\)$"),
        (lambda p: Image.new("L", (80, 80), 255), ImageError, r"^no digit found"),
        (lambda p: np.zeros((3, 3, 5), np.uint8), InputError, r"H x W or H x W x 3/4"),
        (lambda p: np.full((40, 40), 2.0), InputError, r"values in \[0, 1\]"),
        (lambda p: np.full((40, 40), np.nan), InputError, r"values in \[0, 1\]"),
        (lambda p: np.zeros((40, 40), np.int64), InputError, r"uint8 or float"),
        (lambda p: 7, InputError, r"cannot classify a int"),
        (lambda p: "a\0b.png", ImageError, r"^a\x00b.png: not a file name \(it holds a NUL byte\)$"),
        (lambda p: [np.zeros((40, 40), np.uint8)], InputError, r"^classify takes one picture: give a list or an N x 28 x 28 batch to classify_batch$"),
        (lambda p: np.zeros((5, 28, 28), np.uint8), InputError, r"^classify takes one picture"),
    ],
)
def test_errors_are_exceptions_with_one_line_messages(model, tmp_path, make, error, message):
    with pytest.raises(error, match=message) as caught:
        model.classify(make(tmp_path))
    assert isinstance(caught.value, UserError) and "\n" not in str(caught.value)


def test_classify_batch_names_the_item_that_failed_and_takes_no_single_picture(model, mnist):
    digit = 255 - mnist.test_images[0]
    with pytest.raises(ImageError, match=r"^item 1: not an image \(unrecognised content\)$"):
        model.classify_batch([digit, b"xx"])
    with pytest.raises(ImageError, match=r"^item 0: no digit found"):
        model.classify_batch([np.zeros((40, 40), np.uint8) + 255, b""])
    with pytest.raises(InputError, match=r"^classify_batch takes a list of pictures or an N x 28 x 28 array"):
        model.classify_batch("digit.png")


@pytest.mark.parametrize(
    "pixels, message",
    [
        ([np.zeros((28, 28), np.float32), np.zeros((27, 28), np.float32)], r"unequal shapes"),  # numpy: ValueError
        (np.zeros((2, 28, 27), np.float32), r"got shape \(2, 28, 27\)"),
        (np.full((1, 28, 28), 1.5, np.float32), r"values in \[0, 1\]"),
        ("digit.png", r"got shape \(\)"),
    ],
)
def test_logits_refuses_what_is_not_the_contract_with_an_input_error(model, pixels, message):
    with pytest.raises(InputError, match=message):
        model.logits(pixels)


def test_a_model_that_cannot_be_used_is_a_model_error(tmp_path):
    (tmp_path / "m.onnx").write_text("not a model")
    for path, message in ((tmp_path / "none.onnx", "not found"), (tmp_path / "m.onnx", "not a usable ONNX model")):
        with pytest.raises(ModelError, match=message):
            edgemnist.load(path)


def _readme_examples() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_examples_run_as_written(mnist, tmp_path, monkeypatch, capsys):
    """The README's Python examples, run in a folder holding the digit.png they mention."""
    Image.fromarray(255 - mnist.test_images[0]).resize((140, 140)).save(tmp_path / "digit.png")
    monkeypatch.chdir(tmp_path)
    examples = _readme_examples()
    assert examples
    for code in examples:
        exec(compile(code, "README.md", "exec"), {})
    assert str(int(mnist.test_labels[0])) in capsys.readouterr().out


def test_pil_images_are_not_changed(model, mnist):
    im = Image.fromarray(255 - mnist.test_images[3]).convert("RGB").resize((100, 100))
    before = im.tobytes()
    model.classify(im)
    assert im.tobytes() == before and im.mode == "RGB"


NO_DISK = """
import json, sys
import edgemnist
model = edgemnist.load(MODEL, provider="cpu")
blobs = [open(p, "rb").read() for p in PATHS]
for blob in blobs:  # once first: Pillow loads its format plugins (files) on first use
    model.classify(blob)
events = []
watched = ("open", "os.mkdir", "os.rename", "os.remove", "tempfile.mkstemp", "tempfile.mkdtemp", "shutil.copyfile")
sys.addaudithook(lambda event, args: events.append([event, str(args[0])[:200]]) if event in watched else None)
labels = [model.classify(blob).label for blob in blobs]
print(json.dumps({"labels": labels, "events": events}))
"""


def test_bytes_never_touch_the_disk(mnist, tmp_path):
    """A picture given as bytes is decoded in memory: Python's audit events see no file opened,
    created, renamed or removed (builtins.open, os.open, tempfile, shutil alike) while it is classified."""
    paths = []
    for fmt, i in (("JPEG", 4), ("PNG", 5), ("WEBP", 6), ("BMP", 7), ("TIFF", 8), ("GIF", 9)):
        paths.append(str(tmp_path / f"d.{fmt.lower()}"))
        Image.fromarray(255 - mnist.test_images[i]).save(paths[-1], format=fmt)
    code = NO_DISK.replace("MODEL", repr(str(INT8))).replace("PATHS", repr(paths))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["events"] == []
    assert report["labels"] == [int(mnist.test_labels[i]) for i in range(4, 10)]
