"""`edgemnist infer`: image files -> digits, through onnxruntime.  [runtime side]

Inputs are files, directories (searched recursively for image files, by content) and `-` (paths on
stdin, one per line). Results stream in input order: files are read and preprocessed in chunks, by
worker processes when `jobs` > 1, a few chunks in flight at a time (memory stays bounded whatever
the number of files), and the model runs on each chunk as one batch in this process.
"""

from __future__ import annotations

import itertools
import os
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np
from PIL import Image

from edgemnist import answers, atomic, runtime
from edgemnist.preprocess import prepare

CHUNK = 16  # images per unit of work: a worker's task, one model batch
IN_FLIGHT_PER_JOB = 4  # chunks submitted ahead per worker: enough to keep them busy, few enough to bound memory


def _walk(top: str) -> Iterator[tuple[str, bool]]:
    """The files under a directory, depth first, sorted by name, as (path, True): only the images
    among them get a result (`prepare` looks at their first bytes). Hidden entries and symlinked
    directories (loops) are skipped."""
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except OSError:
        yield top, False  # unreadable: its result says why
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path)
        elif entry.is_file():
            yield entry.path, True


def expand_inputs(items: Iterable[str], stdin: TextIO | None = None) -> Iterator[tuple[str, bool]]:
    """Files as given (each gets a result, an error if it is no image), directories searched for image
    files, `-` for paths read from `stdin`, one per line (directories there searched too). Lazy:
    (path, whether only an image file there gets a result)."""
    for item in items:
        if item == "-":
            lines = (line.rstrip("\r\n") for line in (stdin or ()))
            yield from expand_inputs(line for line in lines if line.strip() and line != "-")
        elif os.path.isdir(item):
            yield from _walk(item)
        else:
            yield item, False


def _chunks(paths: Iterable, size: int) -> Iterator[list]:
    it = iter(paths)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _quiet_worker() -> None:
    """Workers leave Ctrl-C to the parent, which stops them: no traceback from each of them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _prepared(paths: Iterable[tuple[str, bool]], polarity: str, jobs: int, fork_safe: bool = False,
              count: tuple[int, int] | None = None) -> Iterator[tuple[list, list]]:
    """(chunk, prepare(chunk)) in input order. The first chunk is done in this process; with jobs > 1
    and more chunks, a process pool starts on the next ones meanwhile and works ahead, at most
    IN_FLIGHT_PER_JOB chunks per worker. `fork_safe`: this process holds no thread that forking would
    leave in a bad state (onnxruntime runs with one thread)."""
    chunks = _chunks(paths, CHUNK)
    first = next(chunks, None)
    second = next(chunks, None) if first is not None and jobs > 1 else None
    if second is None:  # one process: no chunk, one chunk, or --jobs 1
        for chunk in itertools.chain([first] if first is not None else [], chunks):
            yield chunk, prepare(chunk, polarity, count)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    # fork starts workers in milliseconds (forkserver: ~0.3 s, a tenth of a 2,000-JPEG run), but only
    # from a process without onnxruntime's thread pool; else a clean process to fork from, or spawn
    method = "fork" if fork_safe and "fork" in methods else "forkserver" if "forkserver" in methods else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["edgemnist.preprocess"])
    pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_quiet_worker)
    rest = itertools.chain([second], chunks)
    window: deque = deque()

    def fill() -> None:
        while len(window) < IN_FLIGHT_PER_JOB * jobs and (chunk := next(rest, None)) is not None:
            window.append((chunk, pool.submit(prepare, chunk, polarity, count)))

    try:
        fill()  # the workers start on these while this process does the first chunk: answers at once
        yield first, prepare(first, polarity, count)
        while window:
            chunk, done = window.popleft()
            yield chunk, done.result()
            fill()
    finally:  # also on Ctrl-C and when the caller stops early: nothing left running
        pool.shutdown(wait=True, cancel_futures=True)


def answer_stream(
    model: runtime.Model, paths: Iterable[str | tuple[str, bool]], *, top_k: int = 3, save_dir: str | Path | None = None,
    jobs: int = 1, count: tuple[int, int] | None = None,
) -> Iterator[dict]:
    """One result per path, in input order, as soon as its chunk is done: {"path", "label",
    "confidence", "sure", "probabilities", "top_k"} or {"path", "error"}. Every image is tried; one that
    fails does not stop the others. `sure` is False below the model's "not sure" confidence
    (`Model.not_sure_below`) and for a picture of several digits side by side (then "note" says so).
    `paths` may hold (path, True) for files found in a directory: those that are no image are skipped."""
    taken: set[str] = set()  # names written by this run: a/1.png and b/1.jpg must not share one
    items = ((p, False) if isinstance(p, str) else p for p in paths)
    one_thread = model.session.get_session_options().intra_op_num_threads == 1  # no pool threads to fork
    for chunk, prepared in _prepared(items, model.polarity, jobs, one_thread, count):
        for result in answers.for_prepared(model, [path for path, _ in chunk], prepared, top_k, count):
            pixels = result.pop("pixels", None)
            if save_dir is not None and pixels is not None and pixels.ndim == 3:  # a line: each digit's
                result["preprocessed"] = [str(save_preprocessed(p, result["path"], Path(save_dir), taken)) for p in pixels]
            elif save_dir is not None and pixels is not None:
                result["preprocessed"] = str(save_preprocessed(pixels, result["path"], Path(save_dir), taken))
            yield result


def answer_files(
    model: runtime.Model, paths: list[str], *, top_k: int = 3, save_dir: str | Path | None = None, jobs: int = 1,
    count: tuple[int, int] | None = None,
) -> list[dict]:
    """`answer_stream` as a list (the API's `classify` gives typed Results; this, `infer`'s dicts)."""
    return list(answer_stream(model, paths, top_k=top_k, save_dir=save_dir, jobs=jobs, count=count))


def save_preprocessed(img: np.ndarray, source: str, save_dir: Path, taken: set[str] | None = None) -> Path:
    """Write the 28x28 image the model saw as <stem>.28x28.png; a stem already written by this run
    (`taken`) gets -2, -3, ... so no result's file is overwritten by another's."""
    taken = set() if taken is None else taken
    stem, n = Path(source).stem, 1
    name = f"{stem}.28x28.png"
    while name in taken:
        n += 1
        name = f"{stem}-{n}.28x28.png"
    taken.add(name)
    out = save_dir / name
    with atomic.atomic_path(out) as tmp:
        Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8), mode="L").save(tmp, format="PNG")
    return out
