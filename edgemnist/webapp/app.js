// The page: a drawing pad wide enough for a number (pointer events: mouse, touch, pen), live answers:
// the number, ten bars for one digit or each digit's readings under it and its box on the pad, the
// 28x28 images the model saw, the model's facts, and image files by drop or by picker. The model work is
// edgemnist.js (window.edgemnist); this file is only the user interface.
import { api } from "./edgemnist.js";
import { PreprocessError, FRAME } from "./preprocess.js";

const $ = (id) => document.getElementById(id);
const pad = $("pad"), ctx = pad.getContext("2d", { willReadFrequently: true });
const STROKE = 18; // pad pixels (280 tall): about MNIST's stroke once scaled to 20x20
const boxes = $("boxes").getContext("2d");

let drawn = false, busy = false, again = false, last = null, ready = false;
let view = { s: 1, x: 0, y: 0 }; // pad pixels per pixel of the classified picture, and its offset on the pad

function say(text, isError = false) {
  $("message").textContent = text;
  $("message").classList.toggle("error", isError);
}

function blank() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  drawn = false;
}

function clearAll() {
  blank();
  view = { s: 1, x: 0, y: 0 };
  showResult(null);
  say(ready ? "Draw a digit or a number." : $("message").textContent);
}

function buildBars() {
  const bars = $("bars");
  for (let d = 0; d < 10; d++) {
    const li = document.createElement("li");
    li.dataset.digit = d;
    li.innerHTML = `<span>${d}</span><span class="track"><span class="fill"></span></span><span class="p">–</span>`;
    bars.append(li);
  }
}

function showResult(r) {
  const items = $("bars").children, one = !!r && r.digits.length === 1;
  for (let d = 0; d < items.length; d++) {
    const p = one ? r.probabilities[d] : 0;
    items[d].dataset.p = p.toFixed(6);
    items[d].classList.toggle("top", one && d === r.label);
    items[d].querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    items[d].querySelector(".p").textContent = one ? `${(100 * p).toFixed(1)}%` : "–";
  }
  $("bars").hidden = !!r && !one;
  showDigits(r && !one ? r.digits : []);
  showBoxes(r ? r.digits : []);
  $("label").textContent = r ? r.number : "–";
  $("label").dataset.label = one ? r.label : "";
  $("label").dataset.number = r ? r.number : "";
  $("confidence").textContent = r ? `${(100 * r.confidence).toFixed(1)}%${r.sure ? "" : " — not sure"}` : "";
  document.querySelector(".answer").classList.toggle("unsure", !!r && !r.sure);
  const k = r ? r.pixels.length / (FRAME * FRAME) : 1, canvas = $("seen");
  canvas.width = FRAME * k;
  canvas.style.width = `${84 * k}px`;
  const seen = canvas.getContext("2d"), img = seen.createImageData(FRAME * k, FRAME);
  for (let j = 0; j < k; j++) for (let i = 0; i < FRAME * FRAME; i++) {
    const v = r ? Math.round(255 * Math.min(1, Math.max(0, r.pixels[j * FRAME * FRAME + i]))) : 0;
    img.data.set([v, v, v, 255], 4 * ((Math.floor(i / FRAME) * FRAME * k) + j * FRAME + (i % FRAME)));
  }
  seen.putImageData(img, 0, 0);
  $("timing").textContent = r ? `preprocessing ${r.timing.preprocess_ms.toFixed(1)} ms · model ${r.timing.model_ms.toFixed(2)} ms` : "";
}

// A number's digits, each with its most probable readings under it.
function showDigits(digits) {
  $("digits").replaceChildren(...digits.map((d) => {
    const li = document.createElement("li");
    li.className = d.sure ? "" : "unsure";
    li.innerHTML = `<span class="d">${d.label}</span>` + d.top_k.map(([digit, p]) =>
      `<span class="alt"><span>${digit}</span><span class="track"><span class="fill" style="width:${(100 * p).toFixed(1)}%"></span></span></span>`).join("");
    return li;
  }));
}

// Each digit's box on the pad (boxes are in the classified picture's pixels).
function showBoxes(digits) {
  boxes.clearRect(0, 0, boxes.canvas.width, boxes.canvas.height);
  boxes.lineWidth = 2;
  for (const d of digits) {
    if (!d.box) continue;
    const [x, y, w, h] = d.box;
    boxes.strokeStyle = d.sure ? "#1f6feb" : "#b8860b";
    boxes.strokeRect(view.x + x * view.s, view.y + y * view.s, w * view.s, h * view.s);
  }
}

async function classify(imageData) {
  try {
    const r = await api.classifyImageData(imageData);
    showResult(r);
    say(r.sure ? "" : r.note ? `Not sure: ${r.note}.` : r.digits.length > 1 ? "Not sure: a digit is ambiguous, or digits touch." : "Not sure: the digit is ambiguous or unlike MNIST.");
    return r;
  } catch (e) {
    showResult(null);
    say(e instanceof PreprocessError ? capitalize(e.message) + "." : `Could not classify: ${e.message}`, !(e instanceof PreprocessError));
    return null;
  }
}

const capitalize = (s) => s.charAt(0).toUpperCase() + s.slice(1);

// Live answers: at most one classification in flight; the latest drawing wins.
async function classifyPad() {
  if (!ready || !drawn) return;
  if (busy) { again = true; return; }
  busy = true;
  pad.dataset.busy = "1"; // for tests and other pages: an answer for the latest drawing is still to come
  do {
    again = false;
    await classify(ctx.getImageData(0, 0, pad.width, pad.height));
  } while (again);
  busy = false;
  pad.dataset.busy = "";
}

function point(e) {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * (pad.width / r.width), (e.clientY - r.top) * (pad.height / r.height)];
}

function stroke(from, to, pressure) {
  ctx.strokeStyle = "#000";
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.lineWidth = STROKE * (pressure > 0 && pressure !== 0.5 ? 0.6 + 0.8 * pressure : 1); // pens vary the width
  ctx.beginPath();
  ctx.moveTo(...from);
  ctx.lineTo(...to);
  ctx.stroke();
}

pad.addEventListener("pointerdown", (e) => {
  if (e.button !== 0 && e.pointerType === "mouse") return;
  pad.setPointerCapture(e.pointerId);
  if (pad.dataset.source === "file") { blank(); pad.dataset.source = ""; view = { s: 1, x: 0, y: 0 }; }
  last = point(e);
  stroke(last, last, e.pressure);
  drawn = true;
  classifyPad();
});
pad.addEventListener("pointermove", (e) => {
  if (last === null) return;
  for (const ev of e.getCoalescedEvents?.() ?? [e]) {
    const p = point(ev);
    stroke(last, p, ev.pressure);
    last = p;
  }
  classifyPad();
});
for (const type of ["pointerup", "pointercancel"]) pad.addEventListener(type, () => { last = null; classifyPad(); });

$("clear").addEventListener("click", clearAll);
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" || e.key === "Delete" || (e.key === "Backspace" && e.target === pad)) { e.preventDefault(); clearAll(); }
});

// Image files: decoded and reduced by edgemnist.js the way `infer` does, shown on the pad.
async function classifyFile(file) {
  if (!ready) return;
  let imageData;
  try {
    imageData = await api.decodeBlob(file);
  } catch (e) {
    showResult(null);
    say(`${file.name}: ${e instanceof PreprocessError ? e.message : "cannot decode it as an image"}.`, true);
    return;
  }
  blank();
  const bitmap = await createImageBitmap(imageData);
  const s = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
  view = { s, x: (pad.width - bitmap.width * s) / 2, y: (pad.height - bitmap.height * s) / 2 };
  ctx.drawImage(bitmap, view.x, view.y, bitmap.width * s, bitmap.height * s);
  bitmap.close();
  pad.dataset.source = "file";
  const r = await classify(imageData);
  if (r) say(`${file.name}${r.sure ? "" : r.note ? `: not sure, ${r.note}` : ": not sure"}.`);
}

$("file").addEventListener("change", (e) => { if (e.target.files[0]) classifyFile(e.target.files[0]); e.target.value = ""; });
pad.addEventListener("dragover", (e) => { e.preventDefault(); pad.classList.add("dragging"); });
pad.addEventListener("dragleave", () => pad.classList.remove("dragging"));
pad.addEventListener("drop", (e) => {
  e.preventDefault();
  pad.classList.remove("dragging");
  const file = e.dataTransfer.files[0];
  if (file) classifyFile(file);
  else say("Drop an image file.", true);
});

function showFacts(f) {
  const pct = (v) => (v == null ? "unknown" : `${(100 * v).toFixed(2)}%`);
  const rows = [
    ["precision", f.precision],
    ["test accuracy", `${pct(f.test_accuracy)} on the 10,000 MNIST test images`],
    ["size", `${(f.size_bytes / 1024).toFixed(0)} KiB (${f.file})`],
    ["calibration", f.calibration?.temperature ? `temperature ${f.calibration.temperature.toFixed(3)}, expected calibration error ${pct(f.calibration.ece_test)}; "not sure" below ${pct(f.not_sure_below)}` : "none"],
    ["verified on", f.verified_on?.cpu ? `${f.verified_on.cpu} (${f.verified_on.int8_kernels} int8 kernels), onnxruntime ${f.verified_on.onnxruntime}` : "unknown"],
    ["runtime", `onnxruntime-web ${api.onnxruntimeWeb ?? ""} (WebAssembly, 1 thread)` +
      (f.precision === "int8" ? (api.int8Kernels === "fused" ? ", fused int8 kernels" : ", int8 weights computed in fp32 (reference semantics)") : "")],
  ];
  $("facts").replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = v;
    return [dt, dd];
  }));
}

buildBars();
blank();
api.ready.then(
  (facts) => { ready = true; showFacts(facts); say("Draw a digit or a number."); document.body.dataset.ready = "1"; },
  (e) => { say(`Could not load the model: ${e.message}`, true); document.body.dataset.ready = "error"; },
);
