"""`infer --engine ray` and edgemnist.ray on a local Ray: the answers `infer` gives, row for row by path;
no hang on one or two CPUs; a reader actor killed mid-run costs no picture and doubles none; damaged
files are error rows. Skipped, naming the extra, where Ray is not installed."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import fuzz
import handwriting
import realworld
from conftest import ROOT, run_cli

pytest.importorskip("ray", reason="the [ray] extra is not installed (pip install -e '.[ray]')")
pytest.importorskip("pyarrow", reason="the [ray] extra is not installed (pip install -e '.[ray]')")

INT8 = ROOT / "exported" / "mlp.int8.onnx"
READER = b"ray::MapWorker(MapBatches(Reader))"


@pytest.fixture(scope="module")
def corpus(mnist, tmp_path_factory):
    """5,000 pictures of every kind in one folder tree: MNIST digits in both polarities, rendered
    photos and scans (PNG, JPEG, WebP), crops, other writers' handwriting, and 500 damaged files;
    plus what a folder holds besides (a note, a hidden picture): (root, infer's results by path)."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "mnist").mkdir()
    for i in range(1850):
        digit = mnist.test_images[i]
        Image.fromarray(digit if i % 2 else 255 - digit).save(root / "mnist" / f"{i:04d}.png")
    realworld.build(mnist.test_images, mnist.test_labels, 150, root / "photos", seed=21)
    realworld.build_crops(mnist.test_images, mnist.test_labels, 1500, root / "crops", seed=22)
    handwriting.build(1000, root / "hand", seed=23)
    originals = [p.read_bytes() for p in sorted((root / "photos").iterdir())[:40]]  # damaged copies of photos
    (root / "damaged").mkdir()
    for j, (_, _, blob) in enumerate(fuzz.campaign(originals, 500, seed=24)):
        (root / "damaged" / f"{j:03d}.img").write_bytes(blob)
    (root / "notes.txt").write_text("not a picture: no result\n")
    Image.fromarray(mnist.test_images[0]).save(root / ".hidden.png")

    from edgemnist import infer, runtime

    model = runtime.open_model(INT8, "cpu", 1, quiet=True)
    expected = {r["path"]: r for r in infer.answer_stream(model, infer.expand_inputs([str(root)]), jobs=2)}
    assert 4500 < len(expected) <= 5000 and sum("error" in r for r in expected.values()) > 100  # damaged files: errors or skipped
    return root, expected


def _same_answers(rows: list[dict], expected: dict) -> None:
    assert [p for p, n in collections.Counter(r["path"] for r in rows).items() if n > 1] == []  # none twice
    assert {r["path"] for r in rows} == set(expected)  # none lost, none extra (hidden files, notes: no row)
    for r in rows:
        want = expected[r["path"]]
        assert r.get("error") == want.get("error"), r
        assert (r.get("label"), r.get("sure"), r.get("note")) == (want.get("label"), want.get("sure"), want.get("note")), r
        if "error" not in r:
            assert abs(r["confidence"] - want["confidence"]) < 1e-6, r


def test_cli_engine_ray_gives_infers_answers_and_writes_parquet(corpus, tmp_path):
    """The documented command on a fresh local Ray: every picture's answer as `infer` gives it, in one
    Parquet file, the summary as `infer` prints it, exit 1 because damaged files failed."""
    import pyarrow.parquet as pq

    root, expected = corpus
    out = tmp_path / "results.parquet"
    proc = run_cli("infer", str(root), "--engine", "ray", "--model", str(INT8), "--out", str(out), "--json", timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "core_worker" not in proc.stderr, proc.stderr
    summary = json.loads(proc.stdout)
    failed = sum("error" in r for r in expected.values())
    assert (summary["n"], summary["failed"], summary["out"]) == (len(expected), failed, str(out))
    assert f"model: {INT8} (int8" in proc.stderr and "ray: started a local Ray" in proc.stderr
    table = pq.read_table(out)
    assert table.column_names == ["path", "number", "label", "confidence", "sure", "note", "error"]
    _same_answers([{k: v for k, v in row.items() if v is not None} for row in table.to_pylist()], expected)


@pytest.fixture(scope="module")
def local_ray():
    from edgemnist import ray as edgemnist_ray

    edgemnist_ray.connect(cpus=2)
    yield edgemnist_ray
    import ray

    ray.shutdown()


def _reader_pids() -> list[int]:
    """The processes of Ray Data's reader actors, by the title Ray gives them."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read().startswith(READER):
                    pids.append(int(entry))
        except (OSError, ValueError):
            continue
    return pids


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def test_a_reader_killed_mid_run_loses_nothing_and_doubles_nothing(corpus, local_ray):
    """SIGKILL to one reader actor once results have begun: Ray Data restarts it and runs its batch
    again; every picture still has exactly one result, the one `infer` gives. The readers' peak
    memory stays under 450 MB each (a reader reading lines of digits peaks near 400 MB: measured)."""
    from edgemnist import runtime

    root, expected = corpus
    model = runtime.open_model(INT8, "cpu", 1, quiet=True)
    rows, killed, seen = [], None, set()
    for row in local_ray.answer_stream([str(root)], model):
        rows.append(row)
        if len(rows) % 256 == 1:
            seen.update(_reader_pids())
        if killed is None:
            readers = _reader_pids()
            assert len(readers) == 2, readers  # one per CPU
            killed = readers[0]
            os.kill(killed, signal.SIGKILL)
    assert killed is not None and killed not in _reader_pids()
    assert len(seen | set(_reader_pids())) >= 3, seen  # a third reader process: the killed one restarted
    _same_answers(rows, expected)
    peaks = [_peak_rss_mb(pid) for pid in _reader_pids()]
    assert peaks and max(peaks) < 450, peaks


NO_HANG = """
import sys, time, ray
from edgemnist import ray as er, runtime
model = runtime.open_model({model!r}, "cpu", 1, quiet=True)
for cpus in (1, 2):
    er.connect(cpus=cpus)
    start = time.perf_counter()
    rows = list(er.answer_stream([{uri!r}], model))
    print(cpus, er.cluster_cpus(), len(rows), round(time.perf_counter() - start, 1), flush=True)
    ray.shutdown()
"""


def test_never_hangs_on_one_or_two_cpus_with_ray_reading_the_files(corpus, tmp_path):
    """The trap of the obvious version: reader actors that take every CPU starve the tasks that read
    the files. Files given as a URI are read by Ray's read tasks: on one CPU and on two the job ends."""
    root, expected = corpus
    (tmp_path / "some").mkdir()
    names = sorted(p for p in expected if "/damaged/" not in p)[:150]
    for j, name in enumerate(names):
        os.link(name, tmp_path / "some" / f"{j:03d}-{os.path.basename(name)}")
    code = NO_HANG.format(model=str(INT8), uri=f"file://{tmp_path / 'some'}")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = [line.split() for line in proc.stdout.splitlines()]
    assert [(r[0], r[1], r[2]) for r in runs] == [("1", "1.0", "150"), ("2", "2.0", "150")], proc.stdout


def test_plan_leaves_cpus_for_the_read_tasks_on_any_cluster():
    from edgemnist.ray import READ_CPUS, Plan

    for cpus in (0.5, 1, 1.5, 2, 3, 4, 7, 8, 16, 64, 1000):
        for actors in (None, 1, 2, 32):
            plan = Plan.for_cpus(cpus, actors)
            assert plan.actors >= 1 and plan.actor_cpus > 0
            assert plan.actors * plan.actor_cpus + READ_CPUS <= cpus + 1e-9, (cpus, actors, plan)
        assert Plan.for_cpus(cpus).actors == max(1, int(cpus))


def test_core_never_imports_ray_and_says_how_to_get_it(tmp_path):
    """`import edgemnist` and every command of the core leave Ray alone; `--engine ray` without it is
    one line and exit 2."""
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "a.png")
    code = ("import sys; sys.modules['ray'] = None\n"
            "import edgemnist, edgemnist.api, edgemnist.infer, edgemnist.cli, edgemnist.results\n"
            f"sys.argv = ['edgemnist', 'infer', {str(tmp_path)!r}, '--engine', 'ray', '--model', {str(INT8)!r}]\n"
            "from edgemnist.cli import main\nmain()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: --engine ray needs Ray: pip install 'edgemnist[ray]'"
    proc = subprocess.run([sys.executable, "-c", "import sys, edgemnist.cli, edgemnist.api, edgemnist.infer; print('ray' in sys.modules)"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


def test_an_address_where_no_cluster_answers_is_one_line_not_a_hang(tmp_path):
    """ray.init retries a silent address for minutes, its messages in the native log: a port where
    nothing listens is refused at once, in one line, exit 2."""
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "a.png")
    proc = run_cli("infer", str(tmp_path), "--engine", "ray", "--address", "127.0.0.1:1", "--model", str(INT8), timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: cannot reach the Ray cluster at 127.0.0.1:1: Connection refused"
