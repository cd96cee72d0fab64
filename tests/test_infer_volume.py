"""`edgemnist infer` at volume: directories and stdin as inputs, results streamed in input order,
worker processes (--jobs) giving the same answers as one process, a summary line, and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from conftest import ROOT, run_cli

INT8 = str(ROOT / "exported" / "mlp.int8.onnx")


def _tree(mnist, root):
    """A folder as people have them: nested, with hidden entries, notes, a symlink loop, a file
    named .png that is no image, and images in five formats without telling extensions."""
    (root / "b" / "c").mkdir(parents=True)
    (root / ".cache").mkdir()
    Image.fromarray(255 - mnist.test_images[0]).save(root / "a.png")
    Image.fromarray(255 - mnist.test_images[1]).convert("RGB").save(root / "b" / "scan.jpg")
    Image.fromarray(255 - mnist.test_images[2]).save(root / "b" / "c" / "x.webp")
    Image.fromarray(255 - mnist.test_images[3]).save(root / "b" / "c" / "no_extension", format="BMP")
    Image.fromarray(255 - mnist.test_images[4]).save(root / "b" / "y.tif")
    Image.fromarray(255 - mnist.test_images[5]).save(root / ".hidden.png")
    Image.fromarray(255 - mnist.test_images[6]).save(root / ".cache" / "z.png")
    (root / "notes.txt").write_text("digits from the form\n")
    (root / "b" / "fake.png").write_text("not really a picture")
    os.symlink(root, root / "b" / "loop")
    return [str(root / p) for p in ("a.png", "b/c/no_extension", "b/c/x.webp", "b/scan.jpg", "b/y.tif")], [0, 3, 2, 1, 4]


def test_directories_are_searched_for_images_in_sorted_order(mnist, tmp_path):
    expected, picks = _tree(mnist, tmp_path / "forms")
    proc = run_cli("infer", str(tmp_path / "forms"), "--json", "--model", INT8, "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["path"] for r in results] == expected  # hidden, notes, fake.png and the loop left out
    assert [r["label"] for r in results] == [int(mnist.test_labels[i]) for i in picks]
    assert proc.stderr.strip().splitlines()[-1].startswith("5 images: 0 failed, 0 not sure; ")


def test_paths_on_stdin_alongside_arguments(mnist, tmp_path):
    expected, _ = _tree(mnist, tmp_path / "forms")
    listing = f"{expected[3]}\n\n{tmp_path / 'forms' / 'b' / 'c'}\n{tmp_path / 'missing.png'}\n"
    proc = subprocess.run([sys.executable, "-m", "edgemnist", "infer", expected[0], "-", "--json", "--model", INT8],
                          input=listing, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr  # the missing file: exit 1, the rest answered
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["path"] for r in results] == [expected[0], expected[3], *expected[1:3], str(tmp_path / "missing.png")]
    assert results[-1]["error"] == "no such file" and all("label" in r for r in results[:-1])


def test_odd_names_on_stdin_get_one_short_line_each(mnist, tmp_path):
    """A NUL byte (os.stat raises ValueError, not OSError) and a name too long for the file system: an
    error result each, the path said once, never exit 3."""
    good = tmp_path / "1.png"
    Image.fromarray(255 - mnist.test_images[2]).save(good)
    long_name = str(tmp_path / ("x" * 5000))
    proc = subprocess.run([sys.executable, "-m", "edgemnist", "infer", "-", "--json", "--model", INT8, "--jobs", "1"],
                          input=f"a\0b.png\n{long_name}\n{good}\n", capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r.get("error") for r in results[:2]] == ["not a file name (it holds a NUL byte)", "cannot read file (File name too long)"]
    assert results[2]["label"] == int(mnist.test_labels[2])


def test_save_preprocessed_where_nothing_can_be_written_stops_before_any_result(mnist, tmp_path):
    good = tmp_path / "1.png"
    Image.fromarray(255 - mnist.test_images[2]).save(good)
    proc = run_cli("infer", str(good), "--json", "--model", INT8, "--save-preprocessed", "/proc")  # was exit 3
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: cannot write to /proc: No such file or directory"


def test_worker_processes_give_the_same_answers_in_the_same_order(mnist, tmp_path):
    """--jobs 2 over 150 files (ten chunks) prints exactly what --jobs 1 prints, line for line."""
    rng = np.random.default_rng(0)
    for i in range(150):
        digit = 255 - mnist.test_images[i]
        side = int(rng.integers(28, 120))
        Image.fromarray(digit).resize((side, side)).save(tmp_path / f"{rng.integers(1e6):06d}-{i}.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)  # found by content, fails to decode
    one = run_cli("infer", str(tmp_path), "--json", "--model", INT8, "--jobs", "1")
    two = run_cli("infer", str(tmp_path), "--json", "--model", INT8, "--jobs", "2")
    assert one.returncode == two.returncode == 1
    assert one.stdout == two.stdout and len(one.stdout.splitlines()) == 151
    assert "1 failed" in two.stderr.splitlines()[-1] and "2 jobs" in two.stderr.splitlines()[-1]


def _session(sid: int) -> list[int]:
    """The processes left in a session (a run started with start_new_session: the command and its workers)."""
    alive = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    alive.append(int(entry))
            except OSError:
                continue
    return alive


def test_ctrl_c_at_any_moment_stops_within_a_second_with_whole_lines(mnist, tmp_path):
    """SIGINT at 20 seeded moments, from 50 ms after the start (Python's own start-up takes the first
    ~30 ms, before any edgemnist code can take Ctrl-C over) to 1.5 s: while modules load, while the
    worker pool starts, mid-stream. --jobs 1 and 2, paths on stdin and a folder. Every run ends within
    1 s of the signal with exit 130 (or 0 with every result, had it finished), whole JSON lines only,
    "interrupted" and no traceback, and no process of the run left behind."""
    image = tmp_path / "d.png"
    Image.fromarray(255 - mnist.test_images[0]).resize((200, 200)).save(image)
    listing = tmp_path / "listing.txt"
    listing.write_text(f"{image}\n" * 50_000)  # ~20 s of work
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(3000):
        os.link(image, folder / f"{i:04d}.png")
    rng = np.random.default_rng(27)
    moments = [*rng.uniform(0.05, 0.2, 6), *rng.uniform(0.2, 1.5, 14)]
    for k, moment in enumerate(moments):
        jobs, source = str(1 + k % 2), ("-" if k % 4 < 2 else str(folder))
        with listing.open() as stdin:
            proc = subprocess.Popen([sys.executable, "-m", "edgemnist", "infer", source, "--json", "--model", INT8, "--jobs", jobs],
                                    stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, start_new_session=True)
        time.sleep(moment)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.perf_counter() - sent
        what = f"SIGINT at {moment:.3f} s, --jobs {jobs}, {source}: exit {proc.returncode} after {took:.2f} s\n{err.decode()[-600:]}"
        assert took < 1.0 and proc.returncode in (0, 130), what
        lines = out.decode().splitlines()
        assert out == b"" or out.endswith(b"\n"), what
        assert all(json.loads(line)["label"] == int(mnist.test_labels[0]) for line in lines), what
        if proc.returncode == 0:
            assert len(lines) == (50_000 if source == "-" else 3000), what
        else:
            assert "Traceback" not in err.decode() and err.decode().strip().splitlines()[-1] == "interrupted", what
        deadline = time.perf_counter() + 1
        while _session(proc.pid) and time.perf_counter() < deadline:
            time.sleep(0.02)
        assert _session(proc.pid) == [], what


def test_a_ctrl_c_landing_in_a_weakref_callback_prints_no_traceback():
    """Ctrl-C while Python runs a weakref callback (an import lock's, a worker pool's finaliser): the
    KeyboardInterrupt cannot be raised there, Python would print "Exception ignored" and a traceback.
    The run still stops, by the flag the handler set, and says only "interrupted"."""
    code = (
        "import signal, sys, weakref\n"
        "from edgemnist import cli\n"
        "def stop(_): cli._on_interrupt(signal.SIGINT, None)\n"
        "class Held: pass\n"
        "signal.signal(signal.SIGINT, cli._on_interrupt)\n"
        "sys.unraisablehook = cli._quiet_unraisable\n"
        "held = Held(); ref = weakref.ref(held, stop); del held\n"
        "print(cli._state['interrupted'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "True\n" and proc.stderr == "", proc.stderr


def test_a_folder_without_images_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    proc = run_cli("infer", str(tmp_path), "--model", INT8)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: no images")


def test_out_writes_every_result_to_one_jsonl_file_and_prints_the_summary(mnist, tmp_path):
    """--out: the same answers as --json, as path/label/confidence/sure/note/error rows, in place when
    the run ends; stdout carries only the summary object. Wrong uses stop before any work."""
    expected, _ = _tree(mnist, tmp_path / "forms")
    (tmp_path / "forms" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    shown = run_cli("infer", str(tmp_path / "forms"), "--json", "--model", INT8, "--jobs", "1")
    out = tmp_path / "results" / "all.jsonl"
    proc = run_cli("infer", str(tmp_path / "forms"), "--json", "--model", INT8, "--jobs", "1", "--out", str(out))
    assert proc.returncode == shown.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["n"], summary["failed"], summary["out"]) == (6, 1, str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    want = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [list(r) for r in rows] == [["path", "number", "label", "confidence", "sure", "note", "error"]] * 6
    assert [{k: v for k, v in r.items() if v is not None} for r in rows] == [
        {k: w[k] for k in ("path", "number", "label", "confidence", "sure", "note", "error") if k in w} for w in want]
    assert sorted(os.listdir(out.parent)) == ["all.jsonl"]  # no temporary file left beside it
    for args, message in (
        (["--out", str(tmp_path / "r.csv")], f"error: --out {tmp_path / 'r.csv'}: give a .jsonl or .parquet file"),
        (["--address", "127.0.0.1:1"], "error: --address joins a Ray cluster: it goes with --engine ray"),
        (["--engine", "ray", "--save-preprocessed", str(tmp_path)], "error: --save-preprocessed writes on this machine: it goes with --engine local"),
    ):
        bad = run_cli("infer", expected[0], "--model", INT8, *args)
        assert (bad.returncode, bad.stdout, bad.stderr.strip().splitlines()[-1]) == (2, "", message)


def test_parquet_without_pyarrow_is_one_line_before_any_work(tmp_path):
    code = ("import sys; sys.modules['pyarrow'] = None\n"
            f"sys.argv = ['edgemnist', 'infer', 'x.png', '--out', {str(tmp_path / 'r.parquet')!r}]\n"
            "from edgemnist.cli import main\nmain()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: writing Parquet needs pyarrow: pip install 'edgemnist[ray]' (or pyarrow), or use .jsonl")
