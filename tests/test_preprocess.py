"""preprocess.py's parts against independent implementations (Pillow's own filters and resampling, a
plain flood fill), and its whole on inputs nobody here drew: digits by other writers (scikit-learn's
copy of the UCI handwritten digits, 8x8 px), pictures of two digits, random arrays of any shape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from edgemnist import preprocess as pp
from edgemnist import runtime

from conftest import ROOT

INT8 = ROOT / "exported" / "mlp.int8.onnx"


@pytest.fixture(scope="module")
def model():
    return runtime.open_model(INT8, "cpu", quiet=True)


def flood_fill_labels(mask: np.ndarray) -> np.ndarray:
    """8-connected labels 1..n by a plain flood fill, numbered in raster order of the first pixel."""
    h, w = mask.shape
    labels, n = np.zeros((h, w), int), 0
    for y in range(h):
        for x in range(w):
            if mask[y, x] and not labels[y, x]:
                n += 1
                labels[y, x], stack = n, [(y, x)]
                while stack:
                    cy, cx = stack.pop()
                    for ny in range(max(cy - 1, 0), min(cy + 2, h)):
                        for nx in range(max(cx - 1, 0), min(cx + 2, w)):
                            if mask[ny, nx] and not labels[ny, nx]:
                                labels[ny, nx] = n
                                stack.append((ny, nx))
    return labels


def test_run_based_components_equal_a_flood_fill():
    rng = np.random.default_rng(0)
    for _ in range(200):
        mask = rng.random((int(rng.integers(1, 40)), int(rng.integers(1, 40)))) < rng.uniform(0.05, 0.7)
        ys, starts, ends, comp, boxes = pp.components(mask)
        labels = np.zeros(mask.shape, int)
        for y, s, e, c in zip(ys, starts, ends, comp):
            labels[y, s:e] = c + 1
        expected = flood_fill_labels(mask)
        assert np.array_equal(labels, expected)
        for c, (top, left, bottom, right) in enumerate(boxes):
            rows, cols = np.nonzero(expected == c + 1)
            assert (top, left, bottom, right) == (rows.min(), cols.min(), rows.max(), cols.max())


def test_lanczos_and_extreme_filters_equal_pillows():
    rng = np.random.default_rng(1)
    for _ in range(100):
        x = rng.random((int(rng.integers(3, 90)), int(rng.integers(3, 90)))).astype(np.float32)
        h, w = int(rng.integers(1, 21)), int(rng.integers(1, 21))
        pillow = np.asarray(Image.fromarray(x, mode="F").resize((w, h), Image.Resampling.LANCZOS))
        assert np.abs(pp.resize_lanczos(x, h, w) - pillow).max() <= 1e-5
        k = int(rng.choice([3, 5, 7, 9]))
        for pillow_filter, reduce in ((ImageFilter.MaxFilter, np.maximum), (ImageFilter.MinFilter, np.minimum)):
            expected = np.asarray(Image.fromarray(x, mode="F").filter(pillow_filter(k)))
            assert np.array_equal(pp.extreme_filter(x, k, reduce), expected)


def test_any_array_ends_as_a_digit_or_one_clear_refusal():
    """Random shapes from 1 px up, noise, flat fields, specks, a half-and-half picture."""
    rng = np.random.default_rng(2)
    outcomes = {"digit": 0, "refused": 0}
    for t in range(600):
        h, w = int(rng.integers(1, 160)), int(rng.integers(1, 160))
        g = rng.random((h, w)).astype(np.float32) if t % 4 == 0 else np.full((h, w), rng.random(), np.float32)
        if t % 4 >= 2:
            g[rng.integers(0, h, 5), rng.integers(0, w, 5)] = rng.random()
        if t % 4 == 3:
            g[:, : max(1, w // 3)] = 1 - g[0, 0]
        try:
            out = pp.to_mnist(g)
        except pp.PreprocessError as e:
            assert "\n" not in str(e) and str(e)
            outcomes["refused"] += 1
            continue
        assert out.shape == (28, 28) and out.dtype == np.float32 and np.isfinite(out).all()
        assert out.min() >= 0 and out.max() <= 1
        outcomes["digit"] += 1
    assert min(outcomes.values()) > 50, outcomes


def test_importing_preprocess_leaves_pillow_alone():
    code = ("from PIL import Image; before = Image.MAX_IMAGE_PIXELS; import edgemnist.preprocess; "
            "assert Image.MAX_IMAGE_PIXELS == before, Image.MAX_IMAGE_PIXELS")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_digits_by_other_writers_at_8_px(model, tmp_path):
    """scikit-learn's copy of the UCI digits: 1,797 digits by 43 writers, 8x8 px with 17 grey levels,
    as PNG files of the bare 8x8 crop and zoomed 12x without smoothing. Measured (AMD EPYC, the
    reference int8 model): 94.8% and 90.4% (92.4% and 88.4% before training drew 1s with a flag; the
    old preprocessing scored 51% and 49%). What is left: these writers' thick 8-px 1s read as 4 or 8."""
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    images = (255 - digits.images / 16 * 255).round().astype(np.uint8)  # dark ink on white
    accuracy = {}
    for name, zoom in (("8px", 1), ("blocky", 12)):
        pixels = []
        for i, a in enumerate(images):
            path = tmp_path / f"{name}{i}.png"
            Image.fromarray(np.kron(a, np.ones((zoom, zoom), np.uint8))).save(path)
            pixels.append(pp.preprocess(path))
        accuracy[name] = float((model.logits(np.stack(pixels)[:, None]).argmax(1) == digits.target).mean())
    assert accuracy["8px"] >= 0.93 and accuracy["blocky"] >= 0.875, accuracy


def test_two_digits_side_by_side_are_read_as_a_number(mnist, model, tmp_path):
    """A picture of two digits is never answered as one confident digit: read as a line it gives the
    two-digit number (none wrong and sure); held to one digit (--digits 1) it is "not sure", with a note
    that counts the digit-sized marks side by side."""
    from edgemnist.infer import answer_files

    rng = np.random.default_rng(3)
    paths, want = [], []
    for i in range(100):
        a, b = rng.choice(10000, 2, replace=False)
        gap = np.zeros((28, int(rng.integers(3, 12))), np.uint8)
        pair = np.pad(np.concatenate([mnist.test_images[a], gap, mnist.test_images[b]], axis=1), 8)
        path = tmp_path / f"pair{i}.png"
        Image.fromarray(255 - np.kron(pair, np.ones((3, 3), np.uint8))).save(path)
        paths.append(str(path))
        want.append(f"{mnist.test_labels[a]}{mnist.test_labels[b]}")
    results = answer_files(model, paths)
    right = [r["number"] == w for r, w in zip(results, want)]
    wrong_but_sure = sum(r["sure"] and not ok for r, ok in zip(results, right))
    assert sum(right) >= 90 and wrong_but_sure <= 1, (sum(right), wrong_but_sure)  # measured: 93 right, 1 wrong but sure
    held = answer_files(model, paths, count=(1, 1))
    confident = [r for r in held if r["sure"]]
    assert len(confident) <= 5, len(confident)  # measured: 0 of these 100 (1 of 200 in-memory pairs: touching)
    noted = [r for r in held if "note" in r]
    assert len(noted) >= 90 and all("digits side by side" in r["note"] for r in noted)
    one = tmp_path / "one.png"  # and one digit alone is not flagged
    Image.fromarray(255 - np.kron(np.pad(mnist.test_images[0], 8), np.ones((3, 3), np.uint8))).save(one)
    single = answer_files(model, [str(one)])[0]
    assert single["sure"] and "note" not in single and single["label"] == mnist.test_labels[0]


def test_both_ports_read_every_parameter_from_the_one_table():
    """webapp/preprocess.json is the one source of the ports' parameters: every key of it is read by
    the Python port and by the page's, and every preprocess value has its reason."""
    import json

    from edgemnist import preprocess

    webapp = Path(preprocess.__file__).parent / "webapp"
    table = json.loads((webapp / "preprocess.json").read_text())
    package = webapp.parent
    python = {"preprocess": (package / "preprocess.py").read_text(),
              "segment": (package / "segment.py").read_text() + (package / "answers.py").read_text()}
    page = {"preprocess": (webapp / "preprocess.js").read_text(),
            "segment": (webapp / "segment.js").read_text() + (webapp / "edgemnist.js").read_text()}
    for section in ("preprocess", "segment"):
        for key in table[section]:
            assert f'"{key}"' in python[section] or f'["{key}"]' in python[section], (section, key)
            assert f".{key}" in page[section] or f"{key}:" in page[section], (section, key)
    for key in table["why"]:
        assert key in table["preprocess"] or key in table["segment"], key
    explained = " ".join(table["why"].values()) + " ".join(table["why"])
    assert all(key in explained for key in table["preprocess"]), [k for k in table["preprocess"] if k not in explained]
