// edgemnist/preprocess.py ported to the browser, step for step: a drawing or a photo -> the 28x28
// float32 image the model takes (light digit on dark, MNIST's framing). Keep the two in step: the
// browser tests compare them pixel by pixel on the same bitmaps.

export const BOX = 20, FRAME = 28;
export const MNIST_STROKE = 2.2;
export const WORK_SIDE = 512;
export const MAX_PIXELS = 40_000_000;

export class PreprocessError extends Error {}

// A grayscale image: {w, h, a: Float32Array(w*h)} with values in [0, 1].
const gray = (w, h, a) => ({ w, h, a: a || new Float32Array(w * h) });

// Python's round(): halves go to the even neighbour.
export function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

// ImageData (RGBA bytes) -> gray, as preprocess._to_gray does for a Pillow RGB/RGBA image.
export function toGray(imageData) {
  const { width: w, height: h, data } = imageData;
  const out = gray(w, h);
  let minAlpha = 255;
  for (let i = 3; i < data.length; i += 4) minAlpha = Math.min(minAlpha, data[i]);
  if (minAlpha / 255 >= 0.99) {
    // Pillow's "L" conversion of RGB (ITU-R 601-2 luma, fixed point)
    for (let p = 0, i = 0; p < w * h; p++, i += 4) {
      out.a[p] = ((data[i] * 19595 + data[i + 1] * 38470 + data[i + 2] * 7471 + 0x8000) >> 16) / 255;
    }
    return out;
  }
  // transparency: the ink is where the image is opaque; composite onto a contrasting background
  let weighted = 0, weight = 0;
  const lum = new Float32Array(w * h), alpha = new Float32Array(w * h);
  for (let p = 0, i = 0; p < w * h; p++, i += 4) {
    lum[p] = (data[i] / 255) * 0.299 + (data[i + 1] / 255) * 0.587 + (data[i + 2] / 255) * 0.114;
    alpha[p] = data[i + 3] / 255;
    weighted += lum[p] * alpha[p];
    weight += alpha[p];
  }
  const background = weight > 0 && weighted / weight < 0.5 ? 1 : 0;
  for (let p = 0; p < w * h; p++) out.a[p] = lum[p] * alpha[p] + background * (1 - alpha[p]);
  return out;
}

function borderLevel(g) {
  const { w, h, a } = g;
  const k = Math.max(1, Math.floor(Math.min(w, h) / 20));
  const ring = [];
  for (let y = 0; y < k; y++) for (let x = 0; x < w; x++) ring.push(a[y * w + x]);
  for (let y = h - k; y < h; y++) for (let x = 0; x < w; x++) ring.push(a[y * w + x]);
  for (let y = 0; y < h; y++) for (let x = 0; x < k; x++) ring.push(a[y * w + x]);
  for (let y = 0; y < h; y++) for (let x = w - k; x < w; x++) ring.push(a[y * w + x]);
  const sorted = Float32Array.from(ring).sort();
  return sorted[sorted.length >> 1];
}

export function isMnistForm(g) {
  return g.w === FRAME && g.h === FRAME && borderLevel(g) < 0.1;
}

function percentile(a, q) {
  const s = Float32Array.from(a).sort();
  const pos = (q / 100) * (s.length - 1);
  const lo = Math.floor(pos), t = pos - lo;
  if (lo + 1 >= s.length) return s[lo];
  return t >= 0.5 ? s[lo + 1] - (s[lo + 1] - s[lo]) * (1 - t) : s[lo] + (s[lo + 1] - s[lo]) * t;
}

// Pillow's RankFilter (MedianFilter, MaxFilter, MinFilter) with the border replicated.
function rankFilter(g, size, rank) {
  const { w, h, a } = g, m = size >> 1;
  const out = gray(w, h), win = new Float32Array(size * size);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let n = 0;
      for (let dy = -m; dy <= m; dy++) {
        const yy = Math.min(h - 1, Math.max(0, y + dy)) * w;
        for (let dx = -m; dx <= m; dx++) win[n++] = a[yy + Math.min(w - 1, Math.max(0, x + dx))];
      }
      if (rank === size * size - 1) { let v = win[0]; for (let i = 1; i < n; i++) v = Math.max(v, win[i]); out.a[y * w + x] = v; }
      else if (rank === 0) { let v = win[0]; for (let i = 1; i < n; i++) v = Math.min(v, win[i]); out.a[y * w + x] = v; }
      else out.a[y * w + x] = win.sort()[rank];
    }
  }
  return out;
}

export function normalizeInk(g) {
  let background = borderLevel(g);
  const x = gray(g.w, g.h);
  for (let i = 0; i < x.a.length; i++) x.a[i] = background > 0.5 ? 1 - g.a[i] : g.a[i];
  background = Math.min(background, 1 - background);
  const ink = percentile(x.a, 99.9);
  if (ink - background < 0.15) throw new PreprocessError("no digit found (blank or featureless image)");
  for (let i = 0; i < x.a.length; i++) x.a[i] = Math.min(1, Math.max(0, (x.a[i] - background) / (ink - background)));
  const y = Math.min(x.w, x.h) >= 56 ? rankFilter(x, 3, 4) : x;
  for (let i = 0; i < y.a.length; i++) if (y.a[i] < 0.25) y.a[i] = 0;
  return y;
}

function strokeWidth(g) {
  const { w, h, a } = g;
  let area = 0, inner = 0;
  const on = (x, y) => a[y * w + x] > 0.5;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!on(x, y)) continue;
      area++;
      if ((y === 0 || on(x, y - 1)) && (y === h - 1 || on(x, y + 1)) && (x === 0 || on(x - 1, y)) && (x === w - 1 || on(x + 1, y))) inner++;
    }
  }
  return area / Math.max((area - inner) / 2, 1);
}

function adjustStroke(g, scale) {
  const width = strokeWidth(g), target = MNIST_STROKE / scale;
  if (width < 0.7 * target) {
    const size = Math.min(pyRound(target - width) | 1, 9); // dilate: MaxFilter
    return rankFilter(g, size, size * size - 1);
  }
  if (width > 2.0 * target) return rankFilter(g, Math.min(pyRound((width - 1.5 * target) / 2) | 1, 9), 0); // erode: MinFilter
  return g;
}

// Pillow's LANCZOS resample of a float image: separable, horizontal pass then vertical.
function lanczos(x) {
  if (x <= -3 || x >= 3) return 0;
  const sinc = (t) => (t === 0 ? 1 : Math.sin(Math.PI * t) / (Math.PI * t));
  return sinc(x) * sinc(x / 3);
}

function coefficients(inSize, outSize) {
  const scale = inSize / outSize, filterscale = Math.max(scale, 1), support = 3 * filterscale;
  const rows = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5));
    const k = [];
    let total = 0;
    for (let x = xmin; x < xmax; x++) { const v = lanczos((x - center + 0.5) / filterscale); k.push(v); total += v; }
    rows.push({ xmin, k: total !== 0 ? k.map((v) => v / total) : k });
  }
  return rows;
}

export function resize(g, outW, outH) {
  let cur = g;
  if (outW !== g.w) {
    const c = coefficients(g.w, outW), out = gray(outW, g.h);
    for (let y = 0; y < g.h; y++) for (let xx = 0; xx < outW; xx++) {
      let s = 0;
      const { xmin, k } = c[xx];
      for (let i = 0; i < k.length; i++) s += g.a[y * g.w + xmin + i] * k[i];
      out.a[y * outW + xx] = s;
    }
    cur = out;
  }
  if (outH !== cur.h) {
    const c = coefficients(cur.h, outH), out = gray(cur.w, outH);
    for (let yy = 0; yy < outH; yy++) for (let x = 0; x < cur.w; x++) {
      let s = 0;
      const { xmin, k } = c[yy];
      for (let i = 0; i < k.length; i++) s += cur.a[(xmin + i) * cur.w + x] * k[i];
      out.a[yy * cur.w + x] = s;
    }
    cur = out;
  }
  return cur;
}

function crop(g, top, left, h, w) {
  const out = gray(w, h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out.a[y * w + x] = g.a[(top + y) * g.w + left + x];
  return out;
}

function pad(g, p) {
  const out = gray(g.w + 2 * p, g.h + 2 * p);
  for (let y = 0; y < g.h; y++) out.a.set(g.a.subarray(y * g.w, (y + 1) * g.w), (y + p) * out.w + p);
  return out;
}

// Grayscale -> MNIST form: Float32Array(784), light digit on dark.
export function toMnist(g) {
  if (isMnistForm(g)) return Float32Array.from(g.a);
  let x = normalizeInk(g);
  let top = x.h, bottom = -1, left = x.w, right = -1;
  for (let y = 0; y < x.h; y++) for (let c = 0; c < x.w; c++) {
    if (x.a[y * x.w + c] !== 0) { top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, c); right = Math.max(right, c); }
  }
  if (bottom < 0) throw new PreprocessError("no digit found (blank or featureless image)");
  x = crop(x, top, left, bottom - top + 1, right - left + 1);
  const { h, w } = x, scale = BOX / Math.max(h, w);
  const padded = adjustStroke(pad(x, 4), scale);
  x = crop(padded, 4, 4, h, w);
  const newH = Math.max(1, pyRound(h * scale)), newW = Math.max(1, pyRound(w * scale));
  const small = resize(x, newW, newH);
  let peak = 0;
  for (let i = 0; i < small.a.length; i++) { small.a[i] = Math.max(0, small.a[i]); peak = Math.max(peak, small.a[i]); }
  peak = Math.max(peak, 1e-6);
  let total = 0, my = 0, mx = 0;
  for (let y = 0; y < newH; y++) for (let c = 0; c < newW; c++) {
    const v = (small.a[y * newW + c] /= peak);
    total += v; my += v * y; mx += v * c;
  }
  const cy = my / total, cx = mx / total;
  const t = Math.min(FRAME - newH, Math.max(0, pyRound(FRAME / 2 - 0.5 - cy)));
  const l = Math.min(FRAME - newW, Math.max(0, pyRound(FRAME / 2 - 0.5 - cx)));
  const out = new Float32Array(FRAME * FRAME);
  for (let y = 0; y < newH; y++) for (let c = 0; c < newW; c++) out[(t + y) * FRAME + l + c] = small.a[y * newW + c];
  return out;
}

// ImageData -> Float32Array(784) in the polarity the model asks for.
export function preprocess(imageData, polarity = "light-on-dark") {
  const x = toMnist(toGray(imageData));
  if (polarity === "dark-on-light") for (let i = 0; i < x.length; i++) x[i] = 1 - x[i];
  return x;
}
