"""What each command prints for a person, one function per command (`--json` prints the report itself).
The numbers come from the commands' reports; nothing here computes one.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from edgemnist.cpu import describe
from edgemnist.progress import console, say


def answer(r: dict, top_k: int) -> None:
    """`infer`: one picture's answer (or its error) on one line."""
    if "error" in r:
        say(f"{r['path']}: error: {r['error']}")
        return
    tops = "  ".join(f"{d}:{p:.1%}" for d, p in r["top_k"]) if "top_k" in r else ""
    doubt = "" if r["sure"] else f"  not sure ({r['note']})" if "note" in r else "  not sure"
    print(f"{r['path']}: {r.get('number', r.get('label'))}  ({r['confidence']:.1%}){doubt}" + (f"  top-{top_k}: {tops}" if tops else ""), flush=True)


def evaluation(report: dict) -> None:
    """`eval`: accuracy, calibration, per class and the confusion matrix."""
    say(f"{report['model']}: accuracy {report['accuracy']:.2%} on {report['n']:,} test images ({', '.join(report['providers'])}, {report['seconds']:.2f} s)")
    cal = report["calibration"]
    say(f"expected calibration error {cal['ece']:.2%} ({cal['bins']} bins); confidence mean {cal['mean_confidence']:.1%}, median {cal['median_confidence']:.1%}")
    say("per class: " + "  ".join(f"{d}:{a:.1%}" for d, a in enumerate(report["per_class"])))
    say("confusion (rows = true, columns = predicted):")
    for d, row in enumerate(report["confusion"]):
        say(f"  {d} " + " ".join(f"{v:5d}" for v in row))


def parity(r: dict) -> None:
    t = Table(title=f"parity on {r['n']:,} MNIST test images (onnxruntime CPU)")
    for col in ("model", "accuracy", "agreement", "max |Δlogit|", "mean |Δlogit|", "ECE", "size"):
        t.add_column(col, justify="right")
    t.add_row("PyTorch", f"{r['torch']['accuracy']:.2%}", "-", "-", "-", f"{r['torch']['calibration']['ece']:.2%}", "-")
    for name in ("fp32", "int8"):
        row = r[name]
        if row:
            t.add_row(f"ONNX {name}", f"{row['accuracy']:.2%}", f"{row['agreement']:.2%}", f"{row['max_abs_dlogit']:.2e}",
                      f"{row['mean_abs_dlogit']:.2e}", f"{row['calibration']['ece']:.2%}", f"{row['size_bytes'] / 1024:.0f} KiB")
    console().print(t)
    cal = r["calibration"]
    say(f"confidence temperature {cal['temperature']:.3f}" + (f" fitted on {cal['fitted_on']}" if cal["fitted_on"] else " (not fitted: --no-temperature)")
        + f"; ECE = expected calibration error, {r['torch']['calibration']['bins']} bins")
    say(f"on {describe(r['cpu'])}, onnxruntime {r['onnxruntime']}")
    if r["int8"]:
        ref, sat = r["int8"]["reference"], r["int8"]["saturation"]
        say(f"int8 fused kernels vs reference semantics: agreement {ref['agreement']:.2%}, max |Δlogit| {ref['max_abs_dlogit']:.3g} "
            f"(reference accuracy {ref['accuracy']:.2%}); worst u8 x s8 pair sum {sat['worst_pair_sum']:,} "
            + (f"{'<=' if sat['saturation_free'] else '>'} {sat['int16_max']:,}: "
               + ("saturation-free on every CPU" if sat["saturation_free"] else "saturates on x86 without VNNI")))
    twin = r.get("int8_uint8")
    if twin:
        say(f"int8 model taking uint8 pixels: {twin['path']} ({twin['size_bytes'] / 1024:.0f} KiB), "
            f"max |Δlogit| vs the int8 model {twin['max_abs_dlogit_vs_int8']:g} on the {r['n']:,} test images")
    say(("PASSED" if r["passed"] else "FAILED") + f" in {r['seconds']:.1f} s: " + ", ".join(p["path"] for p in (r["fp32"], r["int8"], twin) if p))
    for precision in ("fp32", "int8", "int8_uint8"):
        if r.get(precision) and r[precision].get("signature"):
            say(f"signed {r[precision]['path']}: {r[precision]['signature']}")
    for path in r.get("removed", []):
        say(f"removed {path}: " + ("the signature of an older model" if path.endswith(".sig") else
                                   "an older int8 model that infer would have picked instead of this one" if ".int8.onnx" in path
                                   else "an older uint8-input model from another export"))


def verification(r: dict) -> None:
    """`verify`: the verdict, a few lines."""
    t = r["thresholds"]
    lines = [f"{r['model']} ({r['precision'] or 'no edgemnist metadata'}) on {describe(r['cpu'])}",
             f"  provider {r['providers'][0]}, onnxruntime {r['onnxruntime']}, {r['n']:,} MNIST test images"]
    acc = f"  accuracy {r['accuracy']:.2%}"
    if r["recorded_accuracy"] is not None:
        where = r["recorded_on"] or {}
        origin = f" on {where.get('cpu', '?')} ({where.get('int8_kernels', '?')})" if where else ""
        acc += (f"; recorded at export {r['recorded_accuracy']:.2%}{origin}; "
                f"drop {r['accuracy_drop_pp']:.2f} pp (limit {t['verify_max_drop_pp']})")
    else:
        acc += "; no accuracy recorded in the model"
    lines.append(acc)
    if r.get("signature"):
        lines.append(f"  signature {r['signature']['signature']} verified with {r['signature']['public_key']}")
    lines.append(f"  vs reference semantics: top-1 agreement {r['agreement_with_reference']:.2%} (min {t['reference_min_agreement']:.2%}), "
                 f"max |Δlogit| {r['max_abs_dlogit_vs_reference']:.3g} (max {t['reference_max_abs_dlogit']:g})")
    lines += [f"  FAILED: {f}" for f in r["failures"]]
    lines.append(("PASSED" if r["passed"] else "DRIFTED") + f" in {r['seconds']:.1f} s")
    for line in lines:
        say(line)


def bench(report: dict) -> None:
    """`bench`: the latency and throughput table."""
    say(f"CPU: {describe(report['cpu'])}; threads tried: {report['threads']}")
    t = Table(title="per-call latency (µs) and throughput; ratios from this run")
    for col in ("backend", "model", "batch", "threads", "p50", "p90", "p99", "images/s", "vs torch", "int8/fp32", "vs ceiling"):
        t.add_column(col, justify="right")
    fmt = lambda r, k: f"{r[k]:.2f}x" if k in r else "-"  # noqa: E731
    for r in report["rows"]:
        t.add_row(r["backend"], Path(r["model"]).name, str(r["batch_size"]), str(r["threads"]), f"{r['p50_us']:.1f}",
                  f"{r['p90_us']:.1f}", f"{r['p99_us']:.1f}", f"{r['images_per_s']:,.0f}", fmt(r, "vs_torch"),
                  fmt(r, "int8_vs_fp32"), fmt(r, "vs_ceiling"))
    console().print(t)
    c = report["ceiling"]
    if c:
        say(f"ceiling ({c['what']}, batch {c['batch_size']}): {c['images_per_s']:,.0f} images/s = {c['gflops']:.1f} GFLOP/s "
            f"at {report['macs_per_image']:,} multiply-adds per image")
    for note in report["notes"]:
        say(f"note: {note}")


def profile(report: dict) -> None:
    """`bench --profile`: onnxruntime's per-node timings."""
    say(f"CPU: {describe(report['cpu'])}; batch {report['batch_size']}, {report['runs']} runs per model")
    for path, m in report["models"].items():
        t = Table(title=f"{path} ({m['providers'][0]}): onnxruntime profiler, per node")
        for col in ("node", "op", "calls", "median µs", "share"):
            t.add_column(col, justify="right" if col in ("calls", "median µs", "share") else "left")
        for r in m["nodes"]:
            t.add_row(r["node"], r["op_type"], str(r["calls"]), f"{r['median_us']:.1f}", f"{r['share']:.0%}")
        t.add_row("total", "", "", f"{m['sum_median_us']:.1f}", "100%")
        console().print(t)
