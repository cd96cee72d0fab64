"""The browser target's figures: what a cold load transfers, time to the first prediction, and the
in-browser speed of the fp32 and int8 models next to Python onnxruntime on the same machine.

    python -m benchmarks.web_bench [--cold-runs 5] [--seconds 3] [--json out.json]

Builds both reference models (exported/) into sites with `edgemnist web build`, serves them on
loopback, and drives Debian's headless chromium through Playwright (testkit/browser.py: system browser,
networking flags, a fresh profile per launch).
- Cold load: a new browser per run (empty HTTP and code caches). Bytes from the DevTools protocol
  (encoded = on the wire, with headers; decoded = after decompression). First prediction: from
  navigation start until `classifyImageData` has answered for a digit drawn on a 280x280 canvas.
- Speed: one thread on both sides. onnxruntime-web through `classifyPixels` (its session.run), the
  int8 model both ways the page can run it (reference: weights folded to fp32 at load, the default;
  fused: onnxruntime's integer QGemm kernels, `?int8=fused`);
  Python through `session.run` and through IOBinding. Batch 1: p50/p90 over 100-call means
  (the browser's clock is coarsened to 100 µs without cross-origin isolation). Batch 1024: images/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgemnist import runtime, timing, web
from edgemnist.cpu import cpu_info, describe
from testkit import browser as b

ROOT = Path(__file__).resolve().parents[1]

MODELS = {"int8": ROOT / "exported/mlp.int8.onnx", "fp32": ROOT / "exported/mlp.onnx"}

FIRST_PREDICTION = """async () => {
  await window.edgemnist.ready;
  const c = new OffscreenCanvas(280, 280).getContext('2d');
  c.fillStyle = '#fff'; c.fillRect(0, 0, 280, 280);
  c.strokeStyle = '#000'; c.lineWidth = 18; c.lineCap = 'round';
  c.beginPath(); c.moveTo(70, 56); c.lineTo(210, 56); c.lineTo(126, 238); c.stroke();
  const r = await window.edgemnist.classifyImageData(c.getImageData(0, 0, 280, 280));
  return {label: r.label, ms: performance.now()};
}"""

PAD_ANSWERS = """async ([rounds, per]) => {
  // digits drawn the way the page's pad holds them (dark ink on white, round pen), one on a 280x280
  // canvas or `per` in a line on the 840x280 pad (each at 0.55 scale in its slot), each picture
  // answered by classifyImageData: preprocessing (the JS port) + one model run
  const strokes = [
    [[[70, 56], [210, 56], [126, 238]]],
    [[[140, 40], [136, 240]]],
    [[[90, 70], [120, 45], [170, 45], [195, 80], [185, 120], [85, 225], [200, 225]]],
    [[[95, 40], [85, 160], [205, 160]], [[170, 80], [170, 245]]],
  ];
  const W = per === 1 ? 280 : 840, s = per === 1 ? 1 : 0.55;
  const c = new OffscreenCanvas(W, 280).getContext('2d', { willReadFrequently: true });
  const times = [], pre = [], numbers = [];
  for (let r = 0; r < rounds; r++) {
    for (const [k] of strokes.entries()) {
      c.fillStyle = '#fff'; c.fillRect(0, 0, W, 280);
      c.strokeStyle = '#000'; c.lineWidth = (14 + (r % 3) * 4) * s; c.lineCap = 'round'; c.lineJoin = 'round';
      for (let j = 0; j < per; j++) {
        const digit = strokes[(k + j) % strokes.length];
        const dx = ((r * 7 + k * 13 + j * 3) % 40) - 20, dy = ((r * 11 + k * 5 + j * 7) % 30) - 15;
        const ox = per === 1 ? 0 : 20 + j * 160 - 140 * s + 80, oy = per === 1 ? 0 : 140 - 140 * s;
        for (const line of digit) {
          c.beginPath(); c.moveTo(ox + (line[0][0] + dx) * s, oy + (line[0][1] + dy) * s);
          for (const [x, y] of line.slice(1)) c.lineTo(ox + (x + dx) * s, oy + (y + dy) * s);
          c.stroke();
        }
      }
      const image = c.getImageData(0, 0, W, 280);
      const t = performance.now();
      const answer = await window.edgemnist.classifyImageData(image);
      times.push(performance.now() - t);
      pre.push(answer.timing.preprocess_ms);
      numbers.push(answer.number);
    }
  }
  return { times, pre, numbers };
}"""

SPEED = """async ([batch, seconds]) => {
  const x = new Float32Array(batch * 784).map((_, i) => (i * 7919 % 256) / 255);
  const run = () => window.edgemnist.classifyPixels(x, batch);
  for (let i = 0; i < 20; i++) await run();
  const chunk = batch === 1 ? 100 : 1, means = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    for (let i = 0; i < chunk; i++) await run();
    means.push((performance.now() - t) / chunk);
  }
  return means;
}"""


def pad_answers(page, rounds: int, per: int = 1) -> dict:
    """classifyImageData on pad drawings (one digit on 280x280, or `per` in a line on 840x280): p50/p90
    ms per answer, and of its preprocessing; how many answers had `per` digits."""
    page.evaluate(PAD_ANSWERS, [3, per])  # warm-up (JIT)
    r = page.evaluate(PAD_ANSWERS, [rounds, per])
    return {"answer_p50_ms": float(np.percentile(r["times"], 50)), "answer_p90_ms": float(np.percentile(r["times"], 90)),
            "preprocess_p50_ms": float(np.percentile(r["pre"], 50)), "n": len(r["times"]),
            "read_whole": sum(len(n) == per for n in r["numbers"])}


def cold_load(playwright, url: str) -> dict:
    chromium = b.launch(playwright)
    try:
        page = chromium.new_page()
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        encoded, decoded = {}, {}
        cdp.on("Network.loadingFinished", lambda e: encoded.__setitem__(e["requestId"], e["encodedDataLength"]))
        cdp.on("Network.dataReceived", lambda e: decoded.__setitem__(e["requestId"], decoded.get(e["requestId"], 0) + e["dataLength"]))
        page.goto(url, wait_until="commit")
        page.wait_for_function("window.edgemnist !== undefined")
        first = page.evaluate(FIRST_PREDICTION)
        page.wait_for_timeout(200)  # the last loadingFinished events
        return {"first_prediction_ms": first["ms"], "label": first["label"], "requests": len(encoded),
                "bytes_encoded": sum(encoded.values()), "bytes_decoded": sum(decoded.values())}
    finally:
        chromium.close()


def in_browser(page, batch: int, seconds: float) -> dict:
    means = np.array(page.evaluate(SPEED, [batch, seconds])) * 1000  # µs
    return {"p50_us": float(np.median(means)), "p90_us": float(np.percentile(means, 90)),
            "images_per_s": batch / (float(np.median(means)) / 1e6)}


def in_python(path: Path, batch: int, seconds: float, iobinding: bool) -> dict:
    model = runtime.open_model(path, "cpu", 1, quiet=True)
    x = np.random.default_rng(0).random((batch, 1, 28, 28), dtype=np.float32)
    call = timing.bound_call(model.session, model.input_name, x, 10) if iobinding else \
        (lambda: model.session.run(None, {model.input_name: x}))
    for _ in range(20):
        call()
    chunk, means = (100 if batch == 1 else 1), []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        for _ in range(chunk):
            call()
        means.append((time.perf_counter() - t) / chunk * 1e6)
    p50 = float(np.median(means))
    return {"p50_us": p50, "p90_us": float(np.percentile(means, 90)), "images_per_s": batch / (p50 / 1e6)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--pad-only", action="store_true", help="only the per-answer time on the drawing pad")
    args = parser.parse_args()
    if why := b.unavailable():
        sys.exit(why)
    from playwright.sync_api import sync_playwright

    report = {"cpu": cpu_info(), "onnxruntime_web": web.ORT_WEB_VERSION, "cold": {}, "rows": []}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        site = web.build(Path(tmp, "pad"), MODELS["int8"])["site"]
        with b.served(Path(site)) as url:
            chromium = b.launch(p)
            page = b.open_page(chromium, url)[0]
            report["pad"] = pad_answers(page, rounds=50)
            report["pad_number"] = pad_answers(page, rounds=50, per=5)
            chromium.close()
        if args.pad_only:
            print(f"{describe(report['cpu'])}; classifyImageData, int8, on 280x280 drawings: {report['pad']}; "
                  f"on five-digit 840x280 drawings: {report['pad_number']}")
            return
        built = {name: web.build(Path(tmp, name), path) for name, path in MODELS.items()}
        report["site_files"] = built["int8"]["files"]
        for name, info in built.items():
            with b.served(Path(info["site"])) as url:
                runs = [cold_load(p, url) for _ in range(args.cold_runs)]
                report["cold"][name] = {"runs": runs, "first_prediction_ms_median": statistics.median(r["first_prediction_ms"] for r in runs),
                                        "bytes_encoded": runs[-1]["bytes_encoded"], "bytes_decoded": runs[-1]["bytes_decoded"]}
                chromium = b.launch(p)
                modes = ["reference", "fused"] if name == "int8" else ["reference"]
                pages = {mode: b.open_page(chromium, url + ("?int8=fused" if mode == "fused" else ""))[0] for mode in modes}
                for batch in (1, 1024):
                    for mode, page in pages.items():
                        label = "onnxruntime-web (wasm, Chromium)" + (f", int8 {mode}" if name == "int8" else "")
                        report["rows"].append({"runtime": label, "precision": name, "batch_size": batch}
                                              | in_browser(page, batch, args.seconds))
                    for iobinding in (False, True):
                        report["rows"].append({"runtime": "onnxruntime Python " + ("IOBinding" if iobinding else "session.run"),
                                               "precision": name, "batch_size": batch} | in_python(MODELS[name], batch, args.seconds, iobinding))
                chromium.close()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    print_report(report)


def print_report(r: dict) -> None:
    print(f"`python -m benchmarks.web_bench` — {describe(r['cpu'])}; onnxruntime-web {r['onnxruntime_web']}, headless Chromium\n")
    print("| cold load from loopback | transferred (compressed) | decompressed | first prediction, median |")
    print("| --- | ---: | ---: | ---: |")
    for name, c in r["cold"].items():
        print(f"| {name} site | {c['bytes_encoded'] / 1e6:.2f} MB | {c['bytes_decoded'] / 1e6:.2f} MB | {c['first_prediction_ms_median']:.0f} ms |")
    pad = r["pad"]
    print(f"\nOne answer on a 280x280 drawing (`classifyImageData`, int8, n {pad['n']}): p50 {pad['answer_p50_ms']:.2f} ms, "
          f"p90 {pad['answer_p90_ms']:.2f} ms; its preprocessing p50 {pad['preprocess_p50_ms']:.2f} ms")
    five = r["pad_number"]
    print(f"One answer on a five-digit 840x280 drawing (n {five['n']}, {five['read_whole']} read as five digits): "
          f"p50 {five['answer_p50_ms']:.2f} ms, p90 {five['answer_p90_ms']:.2f} ms; its preprocessing p50 {five['preprocess_p50_ms']:.2f} ms")
    print("\n| runtime | precision | batch | p50 µs | p90 µs | images/s |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for row in r["rows"]:
        print(f"| {row['runtime']} | {row['precision']} | {row['batch_size']} | {row['p50_us']:.1f} | {row['p90_us']:.1f} | {row['images_per_s']:,.0f} |")


if __name__ == "__main__":
    main()
