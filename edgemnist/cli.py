"""The command line: one thin typer function per command; the work is in the library modules.

Training-side modules (torch) are imported only inside the commands that need them, so `infer`,
`eval` of an .onnx and `bench` of onnxruntime start fast and run without torch installed.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgemnist import UserError, __version__, first_line, show
from edgemnist.progress import bar, say
from edgemnist.settings import (
    CALIBRATION_METHODS,
    DEFAULT_CHECKPOINT,
    DEFAULT_ONNX,
    INPUT_DTYPES,
    PROVIDERS,
    QUANT_METHODS,
    WEB_HOST,
    WEB_PORT,
    MLPConfig,
    QuantSettings,
    Thresholds,
    TrainConfig,
    parse_hidden,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train an MNIST MLP, export it to ONNX (+int8), and run it on onnxruntime.",
)
_state = {"debug": False, "interrupted": False, "printing": False}


def _choice(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A typer choice type from a settings tuple (the tuple stays the one definition)."""
    return Enum(name, {v: v for v in values}, type=str)


Provider = _choice("Provider", PROVIDERS)  # onnxruntime execution provider, or torch device for `train`
Method = _choice("Method", QUANT_METHODS)
Calibration = _choice("Calibration", CALIBRATION_METHODS)
InputDtype = _choice("InputDtype", INPUT_DTYPES)


DataDir = Annotated[Optional[Path], typer.Option(help="Directory with the MNIST IDX files (raw or .gz); default $EDGEMNIST_DATA, else the cache / download.")]
Json = Annotated[bool, typer.Option("--json", help="One JSON object on stdout; human text goes to stderr.")]
ProviderOpt = Annotated[Provider, typer.Option(help="onnxruntime execution provider.")]
Threads = Annotated[Optional[int], typer.Option(help="onnxruntime intra-op threads (default: cores, at most 4).")]
MinReferenceAgreement = Annotated[float, typer.Option(help="Gate: top-1 agreement of this CPU's fused kernels with the reference semantics (0..1).")]
AllowFailedGate = Annotated[bool, typer.Option("--allow-failed-gate", help="Run a model that export marked as failing its parity gate (refused otherwise).")]
MaxReferenceDlogit = Annotated[float, typer.Option(help="Gate: max |Δlogit| between this CPU's fused kernels and the reference semantics.")]


def emit(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _on_interrupt(signum, frame) -> None:
    """Ctrl-C: stop at once, unless a result line is being printed (it ends first, whole). The flag
    stays for the result loop, which checks it after each line: a KeyboardInterrupt raised inside a
    finaliser (a weakref callback of the worker pool) is swallowed by Python, and the run went on."""
    _state["interrupted"] = True
    if not _state["printing"]:
        raise KeyboardInterrupt


def _quiet_unraisable(unraisable) -> None:
    """The KeyboardInterrupt that `_on_interrupt` raised inside a finaliser or an import lock's weakref
    callback: Python cannot raise it there and prints "Exception ignored" with a traceback. The flag
    it set already stops the run, so it is dropped; anything else goes to Python's own hook."""
    if issubclass(unraisable.exc_type, KeyboardInterrupt) and _state["interrupted"]:
        return
    sys.__unraisablehook__(unraisable)


@contextlib.contextmanager
def _one_line():
    """Printing one result: Ctrl-C waits for the end of the line, then stops the run."""
    _state["printing"] = True
    try:
        yield
    finally:
        _state["printing"] = False
    if _state["interrupted"]:
        raise KeyboardInterrupt


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
):
    _state["debug"] = debug


@app.command("data")
def data_cmd(data_dir: DataDir = None, json_out: Json = False):
    """Obtain MNIST, verify it by SHA-256, and cache it."""
    from edgemnist import data

    summary = data.summary(data.load(data_dir, quiet=json_out))
    if json_out:
        emit(summary)
    else:
        say(f"MNIST verified: {summary['train']} train / {summary['test']} test images, cached in {summary['cache']}")


@app.command()
def train(
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = TrainConfig.epochs,
    batch_size: Annotated[int, typer.Option(help="Mini-batch size.")] = TrainConfig.batch_size,
    lr: Annotated[float, typer.Option(help="Peak learning rate of the one-cycle schedule.")] = TrainConfig.lr,
    seed: Annotated[int, typer.Option(help="Random seed (same seed and device -> same weights).")] = TrainConfig.seed,
    holdout: Annotated[int, typer.Option(help="Training images held out of training; export fits the confidence temperature on them.")] = TrainConfig.holdout,
    variants: Annotated[int, typer.Option(help="Pen-stroke digits in handwriting forms MNIST rarely has (a 1 with a flag, a 7 with a crossbar...) mixed into training; 0 for MNIST alone.")] = TrainConfig.variants,
    fragments: Annotated[int, typer.Option(help="Touching pairs of digits mixed into training, taught to be no digit, so a piece of a line holding two digits scores low; 0 for none.")] = TrainConfig.fragments,
    hidden: Annotated[str, typer.Option(help="Hidden layer sizes, comma-separated.")] = ",".join(map(str, MLPConfig.hidden)),
    device: Annotated[Provider, typer.Option(help="auto picks CUDA when torch sees it.")] = Provider("auto"),
    data_dir: DataDir = None,
    out: Annotated[Path, typer.Option(help="Checkpoint path.")] = DEFAULT_CHECKPOINT,
    json_out: Json = False,
):
    """Train the MLP on MNIST and write a checkpoint."""
    from edgemnist import atomic
    from edgemnist.training import train as tr

    model_config = MLPConfig(hidden=parse_hidden(hidden))
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, holdout=holdout, variants=variants,
                      fragments=fragments)
    dev = tr.pick_device(device.value)
    atomic.ensure_writable_dir(out)
    with bar(quiet=json_out) as progress:
        task = progress.add_task(f"train ({dev})", total=epochs, status="")

        def on_epoch(epoch, loss, acc):
            status = f"loss {loss:.4f}  test acc {acc:.2%}"
            progress.update(task, advance=1, status=status)
            if progress.disable and not json_out:
                say(f"epoch {epoch}/{epochs}: {status}")

        model, metrics = tr.train(model_config, cfg, device=dev, data_dir=data_dir, on_epoch=on_epoch)
    tr.save_checkpoint(out, model, cfg, metrics)
    result = {k: metrics[k] for k in ("test_accuracy", "seconds", "epochs", "device", "trained_on", "variants", "fragments")} | {"checkpoint": str(out)}
    if json_out:
        emit(result | {"history": metrics["history"], "config": model_config.to_dict()})
    else:
        say(f"test accuracy {metrics['test_accuracy']:.2%} after {epochs} epochs in {metrics['seconds']:.1f} s on {metrics['device']}; checkpoint: {out}")


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint from `edgemnist train`.")] = DEFAULT_CHECKPOINT,
    out: Annotated[Path, typer.Option(help="fp32 ONNX path; int8 goes to <stem>.int8.onnx beside it.")] = DEFAULT_ONNX,
    quantize: Annotated[bool, typer.Option("--quantize/--no-quantize", help="Also write the int8 model.")] = True,
    temperature: Annotated[bool, typer.Option("--temperature/--no-temperature", help="Fit a confidence temperature on the checkpoint's held-out training images and fold it into the model (calibrated probabilities).")] = True,
    method: Annotated[Method, typer.Option(help="int8 quantization method.")] = Method(QuantSettings.method),
    calibration_size: Annotated[int, typer.Option(help="Training images used to calibrate static quantization.")] = QuantSettings.calibration_size,
    calibration_method: Annotated[Calibration, typer.Option(help="Static calibration method.")] = Calibration(QuantSettings.calibration_method),
    per_channel: Annotated[bool, typer.Option("--per-channel/--per-tensor", help="int8 weight scales one per tensor (default: faster at batch 1) or one per output channel.")] = QuantSettings.per_channel,
    weight_bits: Annotated[int, typer.Option(help="7: weights in [-64, 64], the same answers on every CPU (default); 8: full range, exact only on VNNI/AMX/ARM64 CPUs, saturates on AVX2.")] = QuantSettings.weight_bits,
    opset: Annotated[Optional[int], typer.Option(help="ONNX opset (default: the exporter's).")] = None,
    max_dlogit: Annotated[float, typer.Option(help="Gate: fp32 max |Δlogit| vs PyTorch.")] = Thresholds.fp32_max_abs_dlogit,
    max_int8_drop: Annotated[float, typer.Option(help="Gate: int8 accuracy drop vs PyTorch, percentage points.")] = Thresholds.int8_max_drop_pp,
    min_int8_agreement: Annotated[float, typer.Option(help="Gate: int8 top-1 agreement with PyTorch (0..1).")] = Thresholds.int8_min_agreement,
    min_reference_agreement: MinReferenceAgreement = Thresholds.reference_min_agreement,
    max_reference_dlogit: MaxReferenceDlogit = Thresholds.reference_max_abs_dlogit,
    data_dir: DataDir = None,
    input_dtype: Annotated[InputDtype, typer.Option("--input", help="uint8: also write <stem>.int8.uint8.onnx, the int8 model taking uint8 pixels 0-255 (camera frames, decoded images) with the same logits; 1.1x the images/s at batch 1024, none at batch 1.")] = InputDtype("float32"),
    sign_key: Annotated[Optional[Path], typer.Option(help="Sign each model that passes the gate with this elliptic-curve private key (PEM): <model>.sig beside it, OpenSSF model-signing, offline. Needs the [sign] extra.")] = None,
    json_out: Json = False,
):
    """Export a checkpoint to ONNX (+int8) and run the parity gate on all 10,000 test images."""
    from edgemnist.training.export import export_checkpoint, stages

    settings = QuantSettings(method=method.value, calibration_size=calibration_size, calibration_method=calibration_method.value,
                             per_channel=per_channel, weight_bits=weight_bits)
    thresholds = Thresholds(fp32_max_abs_dlogit=max_dlogit, int8_max_drop_pp=max_int8_drop, int8_min_agreement=min_int8_agreement,
                            reference_min_agreement=min_reference_agreement, reference_max_abs_dlogit=max_reference_dlogit)
    steps = stages(quantize, temperature)
    with bar(quiet=json_out) as progress:
        task = progress.add_task(f"{checkpoint} -> {out}", total=len(steps), status="")

        def on_stage(stage: str) -> None:
            progress.update(task, completed=steps.index(stage), status=stage)

        report = export_checkpoint(checkpoint, out, quantize=quantize, temperature=temperature, settings=settings, opset=opset,
                                   thresholds=thresholds, data_dir=data_dir, sign_key=sign_key,
                                   uint8_input=input_dtype.value == "uint8", on_stage=on_stage)
        progress.update(task, completed=len(steps), status="done")
    if json_out:
        emit(report)
    else:
        show.parity(report)
    if not report["passed"]:
        failing = ", ".join(report["failing"])
        raise UserError(f"parity gate failed: {'; '.join(report['failures'])} (files kept for inspection, failing: {failing})", exit_code=1)


Engine = _choice("Engine", ("local", "ray"))


@app.command()
def infer(
    images: Annotated[list[str], typer.Argument(help="Image files (any format Pillow reads), directories (searched recursively for images), or - for paths on stdin; with --engine ray also URIs (s3://...).", show_default=False)],
    model: Annotated[Optional[Path], typer.Option(help="ONNX model (default: exported/mlp.int8.onnx, exported/mlp.onnx, else the packaged one).")] = None,
    provider: ProviderOpt = Provider("auto"),
    threads: Annotated[Optional[int], typer.Option(help="onnxruntime intra-op threads (default: 1; the cores go to --jobs).")] = None,
    jobs: Annotated[Optional[int], typer.Option(help="Worker processes that read and preprocess the images (default: the cores this process may use); with --engine ray, reader actors (default: one per CPU of the cluster).", min=1, max=256)] = None,
    top_k: Annotated[int, typer.Option(help="How many top classes to show.", min=1, max=10)] = 3,
    save_preprocessed: Annotated[Optional[Path], typer.Option(help="Write the 28x28 image the model saw into this directory.")] = None,
    engine: Annotated[Engine, typer.Option(help="local: this machine's processes; ray: Ray Data, on a local Ray or the cluster at --address (the [ray] extra).")] = Engine("local"),
    address: Annotated[Optional[str], typer.Option(help="--engine ray: the running cluster to join (as `ray start --head` prints it); default: start a local Ray.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the results to this .jsonl or .parquet file (path, number, label, confidence, sure, note, error), in place when the run ends; then only the summary is printed.")] = None,
    digits: Annotated[Optional[str], typer.Option(help="How many digits each picture holds, N or N-M (a ZIP code: 5); 1 reads one digit whatever the picture holds. Default: as many as it shows.")] = None,
    allow_failed_gate: AllowFailedGate = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per image on stdout (JSON lines; with --out, one summary object); human text goes to stderr.")] = False,
):
    """Classify handwritten digit images; results stream in input order (--engine ray: as batches finish)."""
    import time

    from edgemnist import atomic, results, runtime, segment
    from edgemnist import infer as inf

    count = segment.count_range(digits) if digits is not None else None
    if engine.value == "local" and address is not None:
        raise UserError("--address joins a Ray cluster: it goes with --engine ray")
    if engine.value == "ray" and provider.value == "cuda":
        raise UserError("--engine ray runs its readers on CPUs: the model is small, the pictures' preprocessing is the work")
    if save_preprocessed is not None:
        if engine.value == "ray":
            raise UserError("--save-preprocessed writes on this machine: it goes with --engine local")
        atomic.writable_dir(save_preprocessed)  # before any work: not after the first results
    if out is not None:
        results.check(out)
    # one onnxruntime thread unless asked: a chunk is a small batch, and idle ORT threads spin on the
    # cores the preprocessing workers need (measured: --jobs 2 went from 1.4x to 1.8x --jobs 1)
    m = runtime.open_model(model or runtime.default_model_path(), provider.value, 1 if threads is None else threads,  # says which, on stderr
                           allow_failed_gate=allow_failed_gate)
    if engine.value == "ray":
        stream = _ray_stream(images, m, address, top_k, jobs, count)
    else:
        jobs = jobs or runtime.usable_cores()
        stream = inf.answer_stream(m, inf.expand_inputs(images, sys.stdin), top_k=top_k, save_dir=save_preprocessed, jobs=jobs,
                                    count=count)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        write = stack.enter_context(results.writer(out)) if out is not None else None
        counts = _show_results(stream, top_k, json_out, write)
    seconds = time.perf_counter() - start
    if counts["n"] == 0:
        raise UserError("no images: the directories hold no image files and no paths came on stdin")
    workers = f"{jobs} job{'s' * (jobs > 1)}" if engine.value == "local" else "Ray"
    summary = {"n": counts["n"], "failed": counts["failed"], "not_sure": counts["not sure"], "seconds": round(seconds, 3),
               "images_per_s": round(counts["n"] / seconds, 1), "out": str(out) if out else None}
    if json_out and out is not None:
        emit(summary)
    if counts["n"] > 1 or out is not None:
        say(f"{counts['n']} images: {counts['failed']} failed, {counts['not sure']} not sure; "
            f"{counts['n'] / seconds:.0f} images/s ({seconds:.1f} s, {workers})" + (f"; results in {out}" if out else ""))
    if counts["failed"]:
        raise typer.Exit(1)


def _ray_stream(images: list[str], model, address: str | None, top_k: int, actors: int | None, count):
    """The Ray engine's results, its cluster joined or started first (one line if the extra is missing)."""
    try:
        from edgemnist import ray as edgemnist_ray
    except ImportError:
        raise UserError("--engine ray needs Ray: pip install 'edgemnist[ray]'") from None
    from edgemnist import data

    edgemnist_ray.connect(address, native_log=data.home() / "ray-driver.log")
    say("ray: " + (f"joined the cluster at {address}" if address else "started a local Ray") +
        f", {edgemnist_ray.cluster_cpus():g} CPUs")
    return edgemnist_ray.answer_stream(images, model, top_k=top_k, actors=actors, count=count)


def _show_results(stream, top_k: int, json_out: bool, write=None) -> dict:
    """Print (or, with `write`, write) each result as it comes; the counts for the summary line."""
    counts = {"n": 0, "failed": 0, "not sure": 0}
    progress = None
    try:
        for r in stream:
            counts["n"] += 1
            counts["failed"] += "error" in r
            counts["not sure"] += not r.get("sure", True)
            with _one_line():
                _show_one(r, top_k, json_out, write)
            progress = _volume_progress(progress, counts["n"])
    finally:
        if progress is not None:
            progress.stop()
        if hasattr(stream, "close"):  # the worker pool stops now, not when the traceback is dropped
            stream.close()
    return counts


def _show_one(r: dict, top_k: int, json_out: bool, write=None) -> None:
    if write is not None:
        write(r)
    elif json_out:
        keys = ("path", "number", "label", "confidence", "sure", "note", "probabilities", "top_k", "digits", "error", "preprocessed")
        emit({k: r[k] for k in keys if k in r})
    else:
        show.answer(r, top_k)


def _volume_progress(progress, done: int):
    """A bar on stderr once many images have gone by and stderr is a terminal (None until then)."""
    if progress is None and done >= 100 and sys.stderr.isatty():
        progress = bar()
        progress.start()
        progress.add_task("infer", total=None, status="")
    if progress is not None:
        progress.update(progress.task_ids[0], completed=done)
    return progress


@app.command("eval")
def eval_cmd(
    model: Annotated[Path, typer.Argument(help="An .onnx model (onnxruntime) or a .pt checkpoint (torch).")],
    provider: ProviderOpt = Provider("auto"),
    threads: Threads = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write a confusion-matrix picture (PNG/SVG/PDF).")] = None,
    data_dir: DataDir = None,
    allow_failed_gate: AllowFailedGate = False,
    json_out: Json = False,
):
    """Accuracy, per-class accuracy and confusion matrix on the full MNIST test set."""
    from edgemnist import evaluate as ev

    report = ev.evaluate(model, provider=provider.value, threads=threads, data_dir=data_dir, quiet=json_out,
                         allow_failed_gate=allow_failed_gate)
    if plot is not None:
        ev.plot_confusion(report, plot)
        report["plot"] = str(plot)
    if json_out:
        emit(report)
        return
    show.evaluation(report)


@app.command()
def verify(
    model: Annotated[Path, typer.Argument(help="The .onnx model to verify on this device.")],
    provider: ProviderOpt = Provider("auto"),
    threads: Threads = None,
    max_drop: Annotated[float, typer.Option(help="Accuracy drop allowed vs the accuracy recorded at export, percentage points.")] = Thresholds.verify_max_drop_pp,
    min_reference_agreement: MinReferenceAgreement = Thresholds.reference_min_agreement,
    max_reference_dlogit: MaxReferenceDlogit = Thresholds.reference_max_abs_dlogit,
    data_dir: DataDir = None,
    allow_failed_gate: AllowFailedGate = False,
    public_key: Annotated[Optional[Path], typer.Option(help="First check the model's signature (from export --sign-key) with this public key (PEM); a model that does not verify is refused. Needs the [sign] extra.")] = None,
    signature: Annotated[Optional[Path], typer.Option(help="The signature to check with --public-key (default: <model>.sig).")] = None,
    json_out: Json = False,
):
    """Check a model on this device's kernels: accuracy vs its recorded accuracy, and vs its reference semantics."""
    from edgemnist import verify as vf

    thresholds = Thresholds(verify_max_drop_pp=max_drop, reference_min_agreement=min_reference_agreement,
                            reference_max_abs_dlogit=max_reference_dlogit)
    report = vf.verify(model, provider=provider.value, threads=threads, data_dir=data_dir, thresholds=thresholds, quiet=json_out,
                       allow_failed_gate=allow_failed_gate, public_key=public_key, signature=signature)
    if json_out:
        emit(report)
    else:
        show.verification(report)
    if not report["passed"]:
        raise typer.Exit(1)


@app.command()
def bench(
    models: Annotated[Optional[str], typer.Option(help="Comma-separated ONNX models (default: exported/mlp.onnx,exported/mlp.int8.onnx).")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint for the PyTorch eager baseline (default exported/mlp.pt, if torch is installed).")] = None,
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,64,1024",
    threads: Threads = None,
    provider: ProviderOpt = Provider("cpu"),
    duration: Annotated[float, typer.Option(help="Timed seconds per backend and batch size.")] = 2.0,
    no_torch: Annotated[bool, typer.Option("--no-torch", help="Skip the PyTorch baseline.")] = False,
    plot: Annotated[Optional[Path], typer.Option(help="Bar chart of images/s per backend and batch size.")] = None,
    profile: Annotated[bool, typer.Option("--profile", help="Instead: onnxruntime's per-node timings of each model at one batch size.")] = False,
    allow_failed_gate: AllowFailedGate = False,
    json_out: Json = False,
):
    """Latency percentiles and throughput of PyTorch eager vs ONNX fp32 vs ONNX int8, side by side."""
    from edgemnist import bench as b

    if profile:
        sizes = b.parse_batch_sizes(batch_sizes)
        if len(sizes) != 1:
            raise UserError(f"--profile takes one batch size, got --batch-sizes {batch_sizes}")
        report = b.profile(b.parse_models(models), sizes[0], provider=provider.value, threads=threads)
        emit(report) if json_out else show.profile(report)
        return
    report = b.run(
        b.parse_models(models), b.parse_batch_sizes(batch_sizes), checkpoint=checkpoint, use_torch=not no_torch,
        threads=threads, provider=provider.value, duration=duration, quiet=json_out, allow_failed_gate=allow_failed_gate,
    )
    if plot is not None:
        b.plot(report, plot)
        report["plot"] = str(plot)
    if json_out:
        emit(report)
    else:
        show.bench(report)


web_app = typer.Typer(no_args_is_help=True, help="The model in a web page: onnxruntime-web (WebAssembly), no CDN, works offline.")
app.add_typer(web_app, name="web")
WebModel = Annotated[Optional[Path], typer.Option(help="ONNX model for the page (default: as `infer`, the int8 model).")]


@web_app.command("build")
def web_build(
    site: Annotated[Path, typer.Argument(help="Directory to write the static site into (replaced whole).")],
    model: WebModel = None,
    allow_failed_gate: AllowFailedGate = False,
    json_out: Json = False,
):
    """Write a self-contained static site: index.html, the app, onnxruntime-web's wasm-only entry, the model."""
    from edgemnist import runtime, web

    report = web.build(site, model or runtime.default_model_path(), allow_failed_gate)
    if json_out:
        emit(report)
        return
    raw = sum(f["raw"] for f in report["files"].values())
    compressed = sum(f.get("br", f["raw"]) for f in report["files"].values())
    say(f"site {site}: {len(report['files'])} files, {raw / 1e6:.1f} MB ({compressed / 1e6:.1f} MB brotli); model {report['model']}")


@web_app.command("serve")
def web_serve(
    model: WebModel = None,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default; 0.0.0.0 shares it on your network).")] = WEB_HOST,
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).", min=0, max=65535)] = WEB_PORT,
    site: Annotated[Optional[Path], typer.Option(help="Site directory (default: in the cache), built when missing or out of date.")] = None,
    json_out: Json = False,
):
    """Build the site when needed and serve it, printing the URL (Ctrl-C stops)."""
    from edgemnist import data, runtime, serve, web

    model = model or runtime.default_model_path()
    site = site or data.home() / "site"
    server = serve.make_server(site, host, port)  # a taken port fails before any build
    with server:
        if not web.is_current(site, model):
            web.build(site, model)
        address = serve.url(server)
        if json_out:
            emit({"url": address, "site": str(site), "model": str(model)})
        else:
            say(f"serving {model} at {address}  (Ctrl-C stops)")
        if not serve.is_loopback(host):
            say(f"warning: listening on {host}, not loopback: anyone who can reach this machine on port "
                f"{server.server_address[1]} can load the site")
        server.serve_forever()


# Exit codes (README, "Commands"): usage or environment / a bug in edgemnist / Ctrl-C; a failure of the
# work itself (1) is a UserError's own exit_code
EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 2, 3, 130
# click's base of usage errors, whether typer vendors click (>= 0.2x) or depends on it
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _show_usage_error(e: Exception) -> None:
    try:
        from typer import rich_utils

        rich_utils.rich_format_error(e)
    except ImportError:  # a typer without rich formatting
        e.show()


def main() -> None:
    """Run the app with edgemnist's exit codes, the same whatever typer version is installed."""
    _state["interrupted"] = False
    previous = signal.signal(signal.SIGINT, _on_interrupt)
    previous_hook, sys.unraisablehook = sys.unraisablehook, _quiet_unraisable
    try:
        code = app(standalone_mode=False)
    except UserError as e:
        if _state["debug"]:
            raise
        if not _state["interrupted"]:
            say(f"error: {e}")
        code = EXIT_INTERRUPTED if _state["interrupted"] else e.exit_code
    except _ClickException as e:  # a bad option or argument: typer's own message
        _show_usage_error(e)
        code = EXIT_USAGE if e.exit_code == 2 else e.exit_code
    except (KeyboardInterrupt, typer.Abort):
        code = EXIT_INTERRUPTED
    except Exception as e:
        if _state["interrupted"]:  # Ctrl-C inside an import becomes its ImportError ("initialization failed")
            code = EXIT_INTERRUPTED
        else:  # a bug: one line, the traceback only with --debug
            if _state["debug"]:
                raise
            say(f"error: internal error, {type(e).__name__}: {first_line(e)} (a bug in edgemnist; --debug shows the traceback)")
            code = EXIT_INTERNAL
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
    if code == EXIT_INTERRUPTED:
        say("interrupted")
    sys.exit(code if isinstance(code, int) else 0)
