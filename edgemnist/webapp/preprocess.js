// edgemnist/preprocess.py ported to the browser, step for step: a drawing or a photo -> the 28x28
// float32 image the model takes (light digit on dark, MNIST's framing). Keep the two in step: the
// browser tests compare them pixel by pixel on the same bitmaps.

export const BOX = 20, FRAME = 28;
export const MNIST_STROKE = 2.2;
export const WORK_SIDE = 512;
export const BACKGROUND_SIDE = 64, COMPONENT_SIDE = 128, MIN_PART = 0.08;
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

// The k-th smallest value (0-based) of a copy of `values`: Hoare's selection, O(n).
function kth(values, k) {
  const a = Float32Array.from(values);
  let lo = 0, hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1];
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) { const t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

function borderLevel(g) {
  const { w, h, a } = g;
  const k = Math.max(1, Math.floor(Math.min(w, h) / 20));
  const ring = [];
  for (let y = 0; y < k; y++) for (let x = 0; x < w; x++) ring.push(a[y * w + x]);
  for (let y = h - k; y < h; y++) for (let x = 0; x < w; x++) ring.push(a[y * w + x]);
  for (let y = 0; y < h; y++) for (let x = 0; x < k; x++) ring.push(a[y * w + x]);
  for (let y = 0; y < h; y++) for (let x = w - k; x < w; x++) ring.push(a[y * w + x]);
  return kth(ring, ring.length >> 1);
}

export function isMnistForm(g) {
  return g.w === FRAME && g.h === FRAME && borderLevel(g) < 0.1;
}

function percentile(a, q) { // numpy's default (linear) method
  const pos = (q / 100) * (a.length - 1);
  const lo = Math.floor(pos), t = pos - lo;
  const below = kth(a, lo);
  if (lo + 1 >= a.length) return below;
  const above = kth(a, lo + 1);
  return t >= 0.5 ? above - (above - below) * (1 - t) : below + (above - below) * t;
}

// Pillow's MaxFilter / MinFilter (a size x size window, the border replicated), done as a row pass
// then a column pass: the same result, O(size) instead of O(size^2) per pixel.
function extremeFilter(g, size, isMax) {
  const { w, h } = g, m = size >> 1, rows = new Float32Array(w * h), out = gray(w, h);
  for (let y = 0; y < h; y++) {
    const o = y * w;
    for (let x = 0; x < w; x++) {
      let v = g.a[o + Math.max(0, x - m)];
      for (let d = -m + 1; d <= m; d++) {
        const u = g.a[o + Math.min(w - 1, Math.max(0, x + d))];
        v = isMax ? (u > v ? u : v) : (u < v ? u : v);
      }
      rows[o + x] = v;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = rows[Math.max(0, y - m) * w + x];
      for (let d = -m + 1; d <= m; d++) {
        const u = rows[Math.min(h - 1, Math.max(0, y + d)) * w + x];
        v = isMax ? (u > v ? u : v) : (u < v ? u : v);
      }
      out.a[y * w + x] = v;
    }
  }
  return out;
}
const maxFilter = (g, size) => extremeFilter(g, size, true);
const minFilter = (g, size) => extremeFilter(g, size, false);

// The slowly varying background under light ink (preprocess.background_field): a grey-level opening
// on a block-mean reduction to about 64 px, brought back with bilinear interpolation.
function backgroundField(x) {
  const { w, h } = x, f = Math.max(1, Math.floor(Math.max(h, w) / BACKGROUND_SIDE));
  const sw = Math.floor(w / f), sh = Math.floor(h / f), small = gray(sw, sh);
  for (let y = 0; y < sh; y++) for (let c = 0; c < sw; c++) {
    let s = 0;
    for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) s += x.a[(y * f + dy) * w + c * f + dx];
    small.a[y * sw + c] = s / (f * f);
  }
  const k = Math.max(3, Math.floor(Math.min(sh, sw) / 4) | 1);
  const opened = maxFilter(minFilter(small, k), k);
  return upsample(opened, h, w);
}

function upsample(g, h, w) {
  const axis = (nOut, nIn) => Array.from({ length: nOut }, (_, i) => {
    const pos = Math.min(nIn - 1, Math.max(0, (i + 0.5) * (nIn / nOut) - 0.5));
    const lo = Math.floor(pos);
    return [lo, Math.min(lo + 1, nIn - 1), pos - lo];
  });
  const ys = axis(h, g.h), xs = axis(w, g.w), out = gray(w, h);
  for (let y = 0; y < h; y++) {
    const [y0, y1, ty] = ys[y];
    for (let x = 0; x < w; x++) {
      const [x0, x1, tx] = xs[x];
      const top = g.a[y0 * g.w + x0] * (1 - ty) + g.a[y1 * g.w + x0] * ty;
      const bottom = g.a[y0 * g.w + x1] * (1 - ty) + g.a[y1 * g.w + x1] * ty;
      out.a[y * w + x] = top * (1 - tx) + bottom * tx;
    }
  }
  return out;
}

export function normalizeInk(g) {
  const x = gray(g.w, g.h), invert = borderLevel(g) > 0.5;
  for (let i = 0; i < x.a.length; i++) x.a[i] = invert ? 1 - g.a[i] : g.a[i];
  const field = backgroundField(x);
  for (let i = 0; i < x.a.length; i++) x.a[i] -= field.a[i];
  const background = Math.max(borderLevel(x), 0);
  const ink = percentile(x.a, 99.9); // thin strokes on a large canvas cover well under 1% of it
  if (ink - background < 0.15) throw new PreprocessError("no digit found (blank or featureless image)");
  for (let i = 0; i < x.a.length; i++) x.a[i] = Math.min(1, Math.max(0, (x.a[i] - background) / (ink - background)));
  for (let y = 0; y < x.h; y++) { // a ruled line crosses the whole page: take each row's median off
    const row = x.a.subarray(y * x.w, (y + 1) * x.w);
    let rule = kth(row, x.w >> 1);
    if (rule >= 0.5) rule = 0; // a digit filling the width is ink, not a faint line
    for (let i = 0; i < row.length; i++) row[i] = Math.max(row[i] - rule, 0);
  }
  for (let i = 0; i < x.a.length; i++) if (x.a[i] < 0.25) x.a[i] = 0; // paper texture, JPEG ringing, faint shadows
  return keepDigit(x);
}

// Erase specks and ruled lines (preprocess.keep_digit), found on a max-pooled mask.
function keepDigit(x) {
  const { w, h } = x, f = Math.ceil(Math.max(h, w) / COMPONENT_SIDE);
  const pw = Math.ceil(w / f), ph = Math.ceil(h / f), mass = new Float32Array(pw * ph);
  for (let y = 0; y < h; y++) for (let c = 0; c < w; c++) mass[Math.floor(y / f) * pw + Math.floor(c / f)] += x.a[y * w + c];
  const labels = new Int32Array(pw * ph), boxes = [], ink = [];
  for (let start = 0; start < pw * ph; start++) {
    if (!(mass[start] > 0) || labels[start]) continue;
    const n = boxes.length + 1, stack = [start], box = [ph, pw, -1, -1];
    let total = 0;
    labels[start] = n;
    while (stack.length) {
      const p = stack.pop(), cy = Math.floor(p / pw), cx = p % pw;
      box[0] = Math.min(box[0], cy); box[1] = Math.min(box[1], cx); box[2] = Math.max(box[2], cy); box[3] = Math.max(box[3], cx);
      total += mass[p];
      for (let ny = Math.max(cy - 1, 0); ny < Math.min(cy + 2, ph); ny++) for (let nx = Math.max(cx - 1, 0); nx < Math.min(cx + 2, pw); nx++) {
        const q = ny * pw + nx;
        if (mass[q] > 0 && !labels[q]) { labels[q] = n; stack.push(q); }
      }
    }
    boxes.push(box);
    ink.push(total);
  }
  if (boxes.length <= 1) return x;
  const most = Math.max(...ink), keep = ink.map((v) => v >= MIN_PART * most);
  boxes.forEach(([top, left, bottom, right], i) => {
    if (right - left + 1 >= pw / 2 && bottom - top + 1 <= Math.max(1, Math.floor(ph / 25)) && keep.filter(Boolean).length > 1) keep[i] = false;
  });
  if (keep.every(Boolean)) return x;
  for (let y = 0; y < h; y++) for (let c = 0; c < w; c++) {
    if (!keep[labels[Math.floor(y / f) * pw + Math.floor(c / f)] - 1]) x.a[y * w + c] = 0;
  }
  return x;
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
  if (width < 0.7 * target) return maxFilter(g, Math.min(pyRound(target - width) | 1, 9)); // dilate
  if (width > 2.0 * target) return minFilter(g, Math.min(pyRound((width - 1.5 * target) / 2) | 1, 9)); // erode
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
