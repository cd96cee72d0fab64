// window.edgemnist: the page's documented API (docs/design.md, "Browser"), for tests and other pages.
//
//   ready                         Promise, resolved once the model is loaded (rejected if it cannot be)
//   facts                         the model's metadata (model.json): precision, test accuracy, size, calibration
//   classifyPixels(pixels, n)     Float32Array [n*784] in the ONNX contract (light-on-dark, [0, 1], no
//                                 preprocessing) -> Promise<Float32Array> logits [n*10]
//   classifyImageData(imageData, count?)  ImageData (a canvas, a photo) -> Promise<{number, digits, label,
//                                 confidence, sure, probabilities, pixels, timing, note?}> with the same
//                                 preprocessing and reading of a line of digits as `edgemnist infer`
//                                 (`count`: [least, most] digits, as --digits; [1, 1]: one digit)
//   classifyBlob(blob)            an image file's bytes (File, Blob) -> the same, decoded by the browser and
//                                 reduced as `infer` does; rejects with PreprocessError (message for people)
//
//   checkModelBytes(bytes, sha)   Promise, rejected with IntegrityError unless the bytes' SHA-256 is `sha`
//                                 (the page checks model.onnx against model.json's sha256 before loading it)
//   int8Kernels                   "reference" (default) or "fused" (page URL ?int8=fused): how an int8 model runs
//
// onnxruntime-web's WebAssembly-only entry, one thread, loaded from this site (never a CDN).
// int8 models: by default the session folds the weights' DequantizeLinear into fp32 constants at load
// (session.disable_quant_qdq) and computes in fp32 between the activations' Q/DQ pairs: the model's
// reference semantics, and 2x faster at batch 1 in WebAssembly than the fused integer kernels (QGemm),
// which win only at large batches (benchmarks/web_bench.py). The download stays the int8 file.
import * as ort from "./ort/ort.wasm.bundle.min.mjs";
import { toGray, toMnist, isMnistForm, pictureBox, ready as paramsReady, PreprocessError, MAX_PIXELS, WORK_SIDE } from "./preprocess.js";
import { isLine, lineOf, read, readings, plainPiece, PARAMS } from "./segment.js";
import { checkModelBytes, IntegrityError, sha256Hex, sha256Js } from "./integrity.js";

ort.env.wasm.numThreads = 1; // a 0.5 MFLOP model: threads cost more than they give
ort.env.wasm.wasmPaths = { wasm: new URL("./ort/ort-wasm-simd-threaded.wasm", import.meta.url).href }; // the loader is in the bundle
ort.env.logLevel = "error";

const SIDE = 28 * 28, CLASSES = 10;
const int8Kernels = new URLSearchParams(location.search).get("int8") === "fused" ? "fused" : "reference";

export function softmax(logits) {
  const max = Math.max(...logits);
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const total = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / total);
}

async function load() {
  const params = paramsReady;
  const response = await fetch(new URL("./model.json", import.meta.url));
  if (!response.ok) throw new Error(`model.json: HTTP ${response.status}`);
  const facts = await response.json();
  const model = await fetch(new URL("./model.onnx", import.meta.url));
  if (!model.ok) throw new Error(`model.onnx: HTTP ${model.status}`);
  const bytes = new Uint8Array(await model.arrayBuffer());
  await checkModelBytes(bytes, facts.sha256); // IntegrityError: never run a model that is not the one built
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
    extra: { session: { disable_quant_qdq: int8Kernels === "reference" ? "1" : "0" } },
  });
  await params;
  return { facts, session };
}

const loaded = load();
let facts = null; // the model's facts once loaded
loaded.then((l) => { facts = l.facts; }, () => {});
let queue = Promise.resolve(); // one run at a time on the session

async function run(pixels, n) {
  const { session } = await loaded;
  if (!(pixels instanceof Float32Array) || pixels.length !== n * SIDE) {
    throw new TypeError(`classifyPixels wants a Float32Array of n*784 = ${n * SIDE} values, got ${pixels && pixels.length}`);
  }
  const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", pixels, [n, 1, 28, 28]) };
  const out = await session.run(feeds);
  const logits = out[session.outputNames[0]];
  const data = logits.data.slice();
  logits.dispose?.();
  return data;
}

function classifyPixels(pixels, n) {
  const result = queue.then(() => run(pixels, n));
  queue = result.catch(() => {});
  return result;
}

// answers._digit: a digit's answer from its ten probabilities.
function digitAnswer(p, label, notSureBelow) {
  const top = [...p.keys()].sort((a, b) => p[b] - p[a] || a - b).slice(0, 3);
  return { label, confidence: p[label], sure: isSure(p, label, notSureBelow), top_k: top.map((d) => [d, p[d]]) };
}

// answers._sure: the "not sure" confidence reached, and the model's doubt at most max_doubt.
function isSure(p, label, notSureBelow) {
  return p[label] >= notSureBelow && doubt(p) <= PARAMS.max_doubt;
}

// answers.doubt: the entropy of the probabilities, in nats.
function doubt(p) {
  let h = 0;
  for (const v of p) if (v > 0) h -= v * Math.log(v);
  return h;
}

// answers.answer for one 28x28: today's one-digit answer, and the same as a number of one digit.
function oneDigit(probabilities, digits, notSureBelow) {
  const label = probabilities.indexOf(Math.max(...probabilities));
  const one = digitAnswer(probabilities, label, notSureBelow);
  one.sure = one.sure && digits <= 1;
  return { ...one, probabilities, number: String(label), digits: [{ ...one }],
    ...(digits > 1 ? { note: `${digits} digits side by side: crop to one` } : {}) };
}

// answers.read_line: a line's answer from the model's logits for the pieces of its readings.
function lineAnswer(lat, logits, count, notSureBelow) {
  const probs = [], total = logits.length / 10;
  const logp = new Float64Array(total * 10);
  for (let p = 0; p < total; p++) {
    probs.push(softmax(logits.subarray(p * 10, p * 10 + 10)));
    for (let d = 0; d < 10; d++) logp[p * 10 + d] = Math.log(Math.max(probs[p][d], 1e-300));
  }
  const parse = read(lat, logp, count);
  if (!parse) throw new PreprocessError(`no reading with ${count[0] === count[1] ? count[0] : `${count[0]}-${count[1]}`} digits`);
  const r = parse.reading;
  const digits = parse.pieces.map((piece, i) => {
    const p = probs[parse.first + piece], one = digitAnswer(p, parse.labels[i], notSureBelow);
    return { ...one, sure: one.sure && plainPiece(r, piece), box: r.boxes[piece] };
  });
  let confidence = 1;
  for (const d of digits) confidence *= d.confidence;
  const least = digits.length === 1 ? notSureBelow : Math.max(notSureBelow, PARAMS.number_sure);
  const result = { label: digits.length === 1 ? digits[0].label : null, confidence,
    sure: digits.every((d) => d.sure) && confidence >= least && parse.margin >= PARAMS.margin,
    number: digits.map((d) => d.label).join(""), digits };
  if (digits.length === 1) Object.assign(result, { probabilities: probs[parse.first + parse.pieces[0]], top_k: digits[0].top_k });
  const pixels = new Float32Array(parse.pieces.length * 784);
  parse.pieces.forEach((piece, i) => pixels.set(r.pieces.subarray(piece * 784, piece * 784 + 784), i * 784));
  return { ...result, pixels, margin: parse.margin };
}

async function classifyImageData(imageData, count = null) {
  const { facts } = await loaded;
  const start = performance.now();
  const seen = {};
  const g = toGray(imageData);
  const darkOnLight = facts.input?.polarity === "dark-on-light";
  const flip = (x) => { if (darkOnLight) for (let i = 0; i < x.length; i++) x[i] = 1 - x[i]; return x; };
  const pixels = flip(toMnist(g, seen)); // throws PreprocessError
  const held = Boolean(count && count[0] > 1); // the user knows it holds several digits, however narrow
  const may = !(count && count[0] === 1 && count[1] === 1) && !isMnistForm(g);
  const line = may && (held || isLine(seen.digits, seen.box));
  const lat = line ? lineOf(imageData, g, seen, held) : null;
  const inkBox = line ? null : pictureBox(imageData.width, imageData.height, g, seen);
  let pre = performance.now() - start;
  let result = await answerOf(lat, pixels, seen.digits, held, count, flip, facts, inkBox);
  if (may && !line && seen.digits === 1 && doubt(result.probabilities) > PARAMS.no_digit_doubt) {
    // one narrow mark with no digit in it for the model: read again as a line (answers.for_prepared)
    const again = performance.now();
    const asLine = lineOf(imageData, g, seen, true);
    pre += performance.now() - again;
    result = await answerOf(asLine, pixels, seen.digits, held, count, flip, facts);
  }
  return { ...result, timing: { preprocess_ms: pre, model_ms: performance.now() - start - pre } };
}

// answers._moved: the places, among every reading's pieces in order, of those in a mark at least `broad` lines wide.
function moved(parts) {
  const out = [];
  let at = 0;
  for (const r of parts) { r.broad.forEach((b, p) => { if (b) out.push(at + p); }); at += r.count; }
  return out;
}

// answers._shifted: every reading's pieces as framed, then the moved ones moved by each of piece_shifts
// (rows, columns), paper (the frame's corner) filling in, with room for `extra` 28x28s after.
function shifted(parts, pieces, which, extra) {
  const shifts = PARAMS.piece_shifts, batch = new Float32Array((pieces + shifts.length * which.length + extra) * 784);
  let at = 0;
  for (const r of parts) { batch.set(r.pieces, at); at += r.pieces.length; }
  shifts.forEach(([dy, dx], s) => {
    which.forEach((p, i) => {
      const from = p * 784, to = (pieces + s * which.length + i) * 784;
      batch.fill(batch[from], to, to + 784);
      for (let y = Math.max(dy, 0); y < 28 + Math.min(dy, 0); y++) {
        for (let x = Math.max(dx, 0); x < 28 + Math.min(dx, 0); x++) batch[to + y * 28 + x] = batch[from + (y - dy) * 28 + x - dx];
      }
    });
  });
  return batch;
}

// answers._pooled: the logits of `shifted`'s batch -> per piece its log-probabilities, for a moved
// piece their mean over its framings.
function pooled(logits, pieces, which) {
  const logp = (row) => {
    const z = Float64Array.from(logits.subarray(row * 10, row * 10 + 10)), top = Math.max(...z);
    let total = 0;
    for (let d = 0; d < 10; d++) { z[d] -= top; total += Math.exp(z[d]); }
    return z.map((v) => v - Math.log(total));
  };
  const out = new Float64Array(pieces * 10), shifts = PARAMS.piece_shifts.length;
  for (let p = 0; p < pieces; p++) out.set(logp(p), p * 10);
  which.forEach((p, i) => {
    const sum = new Float64Array(10);
    for (let s = 0; s < shifts; s++) {
      const z = logp(pieces + s * which.length + i);
      for (let d = 0; d < 10; d++) sum[d] += z[d];
    }
    for (let d = 0; d < 10; d++) out[p * 10 + d] = (out[p * 10 + d] + sum[d]) / (1 + shifts);
  });
  return out;
}

// answers._read_one: the answer for one picture's digit (lat null; `inkBox`: its ink's box) or line,
// the model run once on its pieces.
async function answerOf(lat, pixels, digits, held, count, flip, facts, inkBox = null) {
  if (!lat) {
    const one = { ...oneDigit(softmax(await classifyPixels(pixels, 1)), digits, facts.not_sure_below), pixels };
    if (inkBox) one.digits[0].box = inkBox;
    return one;
  }
  const parts = readings(lat);
  for (const r of parts) flip(r.pieces);
  const pieces = parts.reduce((sum, r) => sum + r.count, 0); // every reading's pieces, in order
  const single = digits === 1 && !held ? pixels : null; // one mark: its answer as one digit, if the line reads so
  lat.single = single;
  const which = moved(parts);
  const batch = shifted(parts, pieces, which, single ? 1 : 0);
  if (single) batch.set(single, batch.length - 784);
  const logits = await classifyPixels(batch, batch.length / 784);
  const { margin, ...result } = lineAnswer(lat, pooled(logits, pieces, which), count, facts.not_sure_below);
  if (!single || result.digits.length !== 1) return result;
  // one mark read as one digit: as before (answers._read_one)
  const { box, sure: plain } = result.digits[0];
  const one = { ...oneDigit(softmax(logits.subarray(logits.length - 10)), 1, facts.not_sure_below), pixels: single };
  one.sure = one.sure && margin >= (plain ? -PARAMS.piece_cost : PARAMS.margin);
  Object.assign(one.digits[0], { box, sure: one.sure });
  return one;
}

// An image file -> ImageData: its size checked from the header before any pixel is decoded (a
// decompression bomb is refused, as `infer` does); a large photo is first brought down by an integer
// factor to about 4 x WORK_SIDE px by the browser (as `infer` decodes a JPEG at reduced scale), and
// `preprocess` then reduces it to the working size with Pillow's box filter.
export async function decodeBlob(blob) {
  await paramsReady; // MAX_PIXELS and WORK_SIDE
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    img.src = url;
    await new Promise((ok, fail) => { img.onload = ok; img.onerror = () => fail(new PreprocessError("cannot decode it as an image")); });
    const w = img.naturalWidth, h = img.naturalHeight;
    if (!w || !h) throw new PreprocessError("cannot decode it as an image");
    if (w * h > MAX_PIXELS) throw new PreprocessError(`image larger than ${MAX_PIXELS / 1e6} MP (${w}×${h}): refusing to decode it`);
    const factor = Math.floor(Math.max(w, h) / (4 * WORK_SIDE));
    const size = factor >= 2 ? { resizeWidth: Math.ceil(w / factor), resizeHeight: Math.ceil(h / factor), resizeQuality: "high" } : {};
    let bitmap;
    try {
      bitmap = await createImageBitmap(img, size);
    } catch {
      throw new PreprocessError("cannot decode it as an image");
    }
    const work = new OffscreenCanvas(bitmap.width, bitmap.height).getContext("2d", { willReadFrequently: true });
    work.drawImage(bitmap, 0, 0);
    bitmap.close();
    return work.getImageData(0, 0, work.canvas.width, work.canvas.height);
  } finally {
    URL.revokeObjectURL(url);
  }
}

async function classifyBlob(blob, count = null) {
  return classifyImageData(await decodeBlob(blob), count);
}

export const api = {
  ready: loaded.then(({ facts }) => facts),
  get facts() { return facts; },
  classifyPixels,
  classifyImageData,
  classifyBlob,
  decodeBlob,
  PreprocessError,
  checkModelBytes,
  IntegrityError,
  sha256Hex,
  sha256Js,
  onnxruntimeWeb: ort.env.versions?.web ?? null,
  int8Kernels,
  classes: CLASSES,
};
window.edgemnist = api;
