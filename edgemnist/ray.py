"""Pictures by the million on Ray Data: `infer`'s preprocessing and answers, one reader actor per core.  [extra `ray`]

    import edgemnist.ray
    ds = edgemnist.ray.dataset(["s3://bucket/forms/"])      # a ray.data.Dataset of results, one row per picture
    ds.write_parquet("s3://bucket/answers/")                # written by the workers, never through this process

Each result row has the columns of results.COLUMNS: path, label, confidence, sure, note (why not sure, when it
is not the confidence) and error (one line; the other columns are then null). A picture that cannot be
read is an error row, never an exception that stops the job. Local folders are listed here, as `infer`
lists them (hidden entries, symlinked folders and files that are no image left out), and each reader
opens its files itself (a shared file system on a cluster); URIs (s3://, gs://, ...) are listed and
read by Ray, and only images among them get a row.

Resources: Ray Data starts the reader actors before any other task, and actors that hold every CPU
leave none for the tasks that read the files, so the job waits forever. `Plan` keeps a share of the
CPUs free for those tasks, whatever the cluster's size. The model is opened once per actor, from
bytes shipped with it, so workers need edgemnist installed but not the model file. A worker that dies
is restarted and its batch run again by Ray Data; rows are produced per batch, so none is lost or
doubled.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import ray
import ray.data

from edgemnist import UserError, answers, results, runtime
from edgemnist.infer import expand_inputs
from edgemnist.preprocess import prepare

READ_CPUS = 0.25  # one read task's claim: reading bytes is I/O, so a quarter of a core per task
READ_SHARE = 1 / 8  # of the cluster's CPUs kept free for read tasks (at least READ_CPUS)
BATCH = 256  # pictures per actor call and per block: one model batch, the unit a dead worker's retry repeats;
# 64 spent a third of the time between calls (20,000 PNGs on 2 cores: 1,284 against 2,787 images/s)


@dataclass(frozen=True)
class Plan:
    """How a job shares the CPUs: `actors` readers of `actor_cpus` each, read tasks of READ_CPUS in the rest."""

    actors: int
    actor_cpus: float

    @classmethod
    def for_cpus(cls, cpus: float, actors: int | None = None) -> Plan:
        """One actor per whole CPU unless told; together they leave max(READ_CPUS, cpus x READ_SHARE) free."""
        if not cpus > 0:
            raise UserError("the Ray cluster has no CPUs to run on")
        actors = actors or max(1, math.floor(cpus))
        free = max(READ_CPUS, cpus * READ_SHARE)
        if cpus - free <= 0:
            raise UserError(f"the Ray cluster has {cpus:g} CPUs: it needs at least {2 * READ_CPUS:g}")
        return cls(actors, (cpus - free) / actors)


class Reader:
    """The callable class for `Dataset.map_batches`: a batch of files (a "path" column and either their
    "bytes" or a "named" flag, read here) -> pyarrow table of results (results.COLUMNS). The model is opened once
    per actor from `model` (its bytes), with one onnxruntime thread: the actor's core goes to preprocessing."""

    def __init__(self, model: bytes, name: str, top_k: int = 3, provider: str = "cpu", count: tuple[int, int] | None = None):
        self.model = runtime.open_model(name, provider, 1, quiet=True, blob=model)
        self.top_k, self.count = top_k, count

    def __call__(self, batch):
        paths = batch.column("path").to_pylist()
        if "bytes" in batch.column_names:  # read by Ray (URIs): only the images among them get a row
            items = [(blob, True) for blob in batch.column("bytes").to_pylist()]
        else:  # local files listed as `infer` lists them, opened here
            items = [(path, not named) for path, named in zip(paths, batch.column("named").to_pylist())]
        prepared = prepare(items, self.model.polarity, self.count)
        rows = list(answers.for_prepared(self.model, paths, prepared, self.top_k, self.count))
        return results.table(rows)


def is_uri(item: str) -> bool:
    return "://" in item


def source(items: Sequence[str]):
    """The files of `items` as a dataset: local files and folders listed as `infer` lists them
    (columns path, named), URIs read by Ray (path, bytes). Not both kinds in one job."""
    uris = [i for i in items if is_uri(i)]
    if uris and len(uris) < len(items):
        raise UserError("give either local paths or URIs (s3://...), not both in one run")
    if uris:
        return ray.data.read_binary_files(uris, include_paths=True, num_cpus=READ_CPUS)
    if "-" in items:
        raise UserError("--engine ray reads folders, files and URIs, not paths on stdin (-)")
    listed = [{"path": path, "named": not only_images} for path, only_images in expand_inputs(items)]
    if not listed:
        raise UserError("no images: the directories hold no files")
    return ray.data.from_items(listed, override_num_blocks=max(1, -(-len(listed) // BATCH)))


def dataset(items: Sequence[str], model: runtime.Model | str | os.PathLike | None = None, *, top_k: int = 3,
            actors: int | None = None, provider: str = "cpu", count: tuple[int, int] | None = None):
    """The whole pipeline on the running Ray (`connect` first, or Ray starts a local one): files ->
    results (results.COLUMNS), lazily, as a ray.data.Dataset. `model`: opened already (its contract, digest
    and gate checked), a path, or None for the model `infer` would pick. `provider`: the actors'."""
    if not isinstance(model, runtime.Model):
        model = runtime.open_model(model or runtime.default_model_path(), provider, 1, quiet=True)
    blob = model.path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != model.sha256:  # the actors run the model that was checked, or none
        raise UserError(f"{model.path} changed on disk while it was being opened: run again")
    plan = Plan.for_cpus(cluster_cpus(), actors)
    return source(items).map_batches(
        Reader, fn_constructor_kwargs={"model": blob, "name": str(model.path), "top_k": top_k, "provider": provider,
                                  "count": count},
        batch_size=BATCH, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=plan.actors),
        num_cpus=plan.actor_cpus,
    )


def connect(address: str | None = None, cpus: int | None = None, native_log: Path | None = None) -> None:
    """Join the cluster at `address` (`ray start --head` prints it), or start a local Ray on `cpus`
    (default: all). Ray's Python logs and progress bars stay off the terminal; `native_log`: its C++
    core's lines too (this process's file descriptor 2 goes there; sys.stderr keeps the terminal)."""
    if ray.is_initialized():
        return
    why = _unreachable(address) if address else None
    if why:  # ray.init retries a silent address for minutes
        raise UserError(f"cannot reach the Ray cluster at {address}: {why}")
    if address is None:  # a local Ray of this process's own, on loopback: no token to hand out
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if native_log is not None:
        # the C++ core writes to descriptor 2, and logs an ERROR line for every Ray Data actor pool
        # (ray-project/ray#57733, harmless): the user hears of failures as result rows and one-line errors
        terminal = os.dup(2)
        native_log.parent.mkdir(parents=True, exist_ok=True)
        with open(native_log, "ab") as log:
            os.dup2(log.fileno(), 2)
        sys.stderr = os.fdopen(terminal, "w", buffering=1)
    try:
        ray.init(address=address, num_cpus=None if address else cpus, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = f"reach the Ray cluster at {address}" if address else "start a local Ray"
        raise UserError(f"cannot {where}: {str(e).splitlines()[0][:200]}") from None
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def _unreachable(address: str, seconds: float = 5.0) -> str | None:
    """Why nothing answers on the port of `address` (host:port, or ray://host:port), or None; None too
    for forms Ray resolves itself ("auto")."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit():
        return None
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=seconds):
            return None
    except OSError as e:
        return e.strerror or str(e) or type(e).__name__


def cluster_cpus() -> float:
    return ray.cluster_resources().get("CPU", 0)


def answer_stream(items: Sequence[str], model: runtime.Model, *, top_k: int = 3, actors: int | None = None,
                    count: tuple[int, int] | None = None) -> Iterator[dict]:
    """`infer.answer_stream` on the Ray `connect`ed to: one result dict per picture ({"path",
    "label", "confidence", "sure"[, "note"]} or {"path", "error"}) as batches finish, in no set order."""
    for batch in dataset(items, model, top_k=top_k, actors=actors, count=count).iter_batches(batch_format="pyarrow", batch_size=None):
        for row in batch.to_pylist():
            yield {k: v for k, v in row.items() if v is not None}
