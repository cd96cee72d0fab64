"""The front door: the README is short, its quick start runs as written, every link in the docs
resolves, and no issue number or development history hides in the code or the docs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
# "#16", "issue 17", "(#17 item 2)"; not "#L12", an anchor, or a colour in a string ("#000")
ISSUE = re.compile(r"[Ii]ssue #?\d+|(?<![\w/&\"'])#[1-9]\d{0,2}\b(?![\w-])")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) <= 250, len(lines)
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[:3] == ["## Install", "## Quick start, on the packaged model", "## Train, export, verify"]
    first = "\n".join(lines[:120])
    assert all(h in first for h in ("## Install", "## Quick start", "## Python API", "## Model card")), "not in the first 120 lines"


def test_every_link_in_the_docs_resolves():
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            assert file.exists(), f"{doc.name}: {target}"
            if anchor:
                anchors = {_anchor(line.lstrip("#")) for line in file.read_text().splitlines() if line.startswith("#")}
                assert anchor in anchors, f"{doc.name}: {target}"


def test_no_issue_numbers_in_code_or_docs():
    files = [*DOCS]
    for folder in ("edgemnist", "testkit", "benchmarks"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".js", ".sh", ".html", ".md")]  # CSS: colours
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in files for m in ISSUE.finditer(p.read_text())]
    assert found == []
    assert ISSUE.search("issue #16") and ISSUE.search("(#17 item 2)") and ISSUE.search("issue 18")
    assert not ISSUE.search("ray-project/ray#57733") and not ISSUE.search("#fff") and not ISSUE.search("#label")


def run_readme_block(text: str, after: str, cwd: Path) -> subprocess.CompletedProcess:
    """The README's first bash block after `after`, as written (a picture drawn, then `infer` on it),
    in `cwd` with this Python: the `infer` run."""
    block = text.split(after, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.replace(".venv/bin/python", sys.executable).replace(".venv/bin/edgemnist", f"{sys.executable} -m edgemnist")
                for line in block.strip().splitlines()]
    assert len(commands) == 2
    subprocess.run(commands[0], shell=True, check=True, cwd=cwd, timeout=60)
    proc = subprocess.run(commands[1], shell=True, capture_output=True, text=True, cwd=cwd, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_the_quick_start_runs_as_written(tmp_path):
    """The README's quick-start commands, in a fresh folder: the drawn 7 is read as a sure 7 by the
    packaged model (no exported/ there)."""
    text = (ROOT / "README.md").read_text()
    proc = run_readme_block(text, "## Quick start, on the packaged model", tmp_path)
    assert proc.stdout.startswith("digit.png: 7  (") and "not sure" not in proc.stdout
    assert "pretrained/mlp.int8.onnx (int8, sha256" in proc.stderr
    shown = re.search(r"then `(digit\.png: 7 [^`]*)`", text).group(1)  # what the README says it prints
    assert proc.stdout.strip() == shown


def test_the_number_example_runs_as_written(tmp_path):
    """The README's number example: the drawn 170 is read whole and sure, by infer and by the API,
    and prints what the README says."""
    import edgemnist

    text = (ROOT / "README.md").read_text()
    proc = run_readme_block(text, "A number written in one line is read whole", tmp_path)
    shown = re.search(r"It prints `(number\.png: 170 [^`]*)`", text).group(1)
    assert proc.stdout.strip() == shown
    result = edgemnist.load().classify(tmp_path / "number.png")
    assert result.number == "170" and result.sure and [d.label for d in result.digits] == [1, 7, 0]
    assert all(d.box is not None and d.box[2] > 0 for d in result.digits)


def test_benchmarks_are_modules_on_public_names_and_one_sampler():
    """Each benchmark runs as `python -m benchmarks.NAME` from the root: no sys.path edits, nothing
    from tests/, no private name of edgemnist, and one timing sampler in the whole tree."""
    scripts = sorted((ROOT / "benchmarks").glob("*.py"))
    assert len(scripts) >= 12
    for script in scripts:
        text = script.read_text()
        assert "sys.path" not in text and "noqa: E402" not in text, script.name
        assert not re.search(r"^\s*(from tests\b|import tests\b|import browser\b|from conftest\b)", text, re.M), script.name
        private = re.findall(r"^\s*from edgemnist[\w.]* import ([^\n]*)", text, re.M)
        assert not [n for names in private for n in names.split(",") if n.strip().startswith("_")], script.name
    samplers = [f"{p.relative_to(ROOT)}" for folder in ("edgemnist", "benchmarks", "testkit", "tests")
                for p in (ROOT / folder).rglob("*.py") if re.search(r"^\s*def\s+interleaved\(", p.read_text(), re.M)]
    assert samplers == ["edgemnist/timing.py"]
    names = [p.stem for p in scripts]
    code = "import importlib\nfor name in %r:\n    importlib.import_module('benchmarks.' + name)\n" % names
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
