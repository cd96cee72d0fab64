"""`infer --out`: results streamed into one file, JSON lines or Parquet by its suffix.  [runtime side]

The file holds COLUMNS for every picture, whichever engine read them, and appears whole when the run
ends: written beside its place and renamed there (atomic.atomic_path), so an interrupted run leaves
no half file. Parquet needs pyarrow (it comes with the `ray` extra); JSON lines need nothing.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Callable

from edgemnist import UserError, atomic

COLUMNS = ("path", "number", "label", "confidence", "sure", "note", "error")
FORMATS = (".jsonl", ".parquet")
ROW_GROUP = 50_000  # Parquet rows per write: bounded memory however many pictures


def check(path: Path) -> None:
    """Before any work: a known suffix, pyarrow there for Parquet, a directory that takes files."""
    if path.suffix not in FORMATS:
        raise UserError(f"--out {path}: give a .jsonl or .parquet file")
    if path.suffix == ".parquet":
        pyarrow()
    atomic.ensure_writable_dir(path)


def pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401  (pa.parquet below)
    except ImportError:
        raise UserError("writing Parquet needs pyarrow: pip install 'edgemnist[ray]' (or pyarrow), or use .jsonl") from None
    return pa


def table(rows: Sequence[dict]):
    """Result dicts -> a pyarrow table of COLUMNS (null where a row has no such field)."""
    pa = pyarrow()
    types = {"path": pa.string(), "number": pa.string(), "label": pa.int8(), "confidence": pa.float64(), "sure": pa.bool_(),
             "note": pa.string(), "error": pa.string()}
    return pa.table({c: pa.array([r.get(c) for r in rows], types[c]) for c in COLUMNS})


@contextlib.contextmanager
def writer(path: Path) -> Iterator[Callable[[dict], None]]:
    """A function that takes one result dict at a time; the file is in place when the block ends."""
    with atomic.atomic_path(path) as tmp:
        if path.suffix == ".jsonl":
            with open(tmp, "w", encoding="utf-8") as f:
                yield lambda r: f.write(json.dumps({c: r.get(c) for c in COLUMNS}) + "\n")
            return
        pending: list[dict] = []
        with pyarrow().parquet.ParquetWriter(tmp, table([]).schema) as out:

            def add(r: dict) -> None:
                pending.append(r)
                if len(pending) >= ROW_GROUP:
                    out.write_table(table(pending))
                    pending.clear()

            yield add
            out.write_table(table(pending))
