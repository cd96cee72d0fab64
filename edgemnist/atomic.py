"""Atomic file writes: write to a temp file beside the target, fsync, then rename over it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from edgemnist import UserError


def ensure_writable_dir(path: Path) -> None:
    """Create `path`'s parent directory and check that a file can be written there (a probe file,
    not os.access: root passes that check on read-only mounts and in /proc); UserError (exit 2)
    otherwise. For the start of a command, before its long work."""
    _make_parent(path)
    _probe(path.parent)


def writable_dir(directory: Path) -> None:
    """Create `directory` and write and remove a probe file in it; UserError (exit 2) if that fails."""
    _make_dir(directory)
    _probe(directory)


def _probe(directory: Path) -> None:
    os.unlink(_temp_file(directory, prefix=".edgemnist-probe."))


def _temp_file(directory: Path, prefix: str, suffix: str = "") -> str:
    """mkstemp in `directory`, closed -> its path; UserError (exit 2) when nothing can be written there."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    except OSError as e:
        raise UserError(f"cannot write to {directory}: {e.strerror or e}") from None
    os.close(fd)
    return tmp


def _make_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create directory {directory}: {e.strerror}") from None


def _make_parent(path: Path) -> None:
    _make_dir(path.parent)
    if path.is_dir():
        raise UserError(f"{path} is a directory, expected a file path")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed to `path`, on error removed.

    An interrupted or failed write never leaves a truncated file at `path`, nor replaces a good one.
    """
    path = Path(path)
    _make_parent(path)
    tmp_path = Path(_temp_file(path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; a model file is for sharing
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
