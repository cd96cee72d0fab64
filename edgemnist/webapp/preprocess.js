// edgemnist/preprocess.py ported to the browser, step for step: a drawing or a photo -> the 28x28
// float32 image the model takes (light digit on dark, MNIST's framing). Keep the two in step: the
// browser tests compare them pixel by pixel on the same bitmaps.

export const BOX = 20, FRAME = 28;
// The parameters this file and preprocess.py both read (edgemnist/webapp/preprocess.json, copied into
// the site; its "why" says what each is for). `ready` resolves once they are in: edgemnist.js waits for
// it before anything is read. The named ones below are live bindings, set then.
export const PARAMS = {};
export let MNIST_STROKE, MARGIN, WORK_SIDE, MIN_SIDE, FIELD_SIDE, MIN_PART, INK_LEVEL, MAX_PIXELS;
let P = {};
export const ready = (async () => {
  const response = await fetch(new URL("./preprocess.json", import.meta.url));
  if (!response.ok) throw new Error(`preprocess.json: HTTP ${response.status}`);
  Object.assign(PARAMS, await response.json());
  P = PARAMS.preprocess;
  ({ mnist_stroke: MNIST_STROKE, frame_margin: MARGIN, work_side: WORK_SIDE, min_side: MIN_SIDE, field_side: FIELD_SIDE,
    speck: MIN_PART, ink_level: INK_LEVEL, max_pixels: MAX_PIXELS } = P);
})();

export class PreprocessError extends Error {}

// A grayscale image: {w, h, a: Float32Array(w*h)} with values in [0, 1].
const gray = (w, h, a) => ({ w, h, a: a || new Float32Array(w * h) });

// Python's round(): halves go to the even neighbour.
export function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

// preprocess.work_factor: the integer reduction that brings the longer side to about WORK_SIDE.
export const workFactor = (w, h, side = WORK_SIDE) => Math.max(1, pyRound(Math.max(w, h) / side));

// Pillow's Image.reduce(f) of one channel of interleaved bytes (`channel` of `stride`; with `luma`,
// Pillow's "L" conversion of RGB first): the mean of each f x f block in Pillow's fixed point
// ((sum + count/2) * floor(2^24 / count) >> 24), partial blocks at the right and bottom edges averaged
// over the pixels they hold. One pass, block sums in integers.
function reduceChannel(data, w, h, stride, channel, f, luma) {
  const ow = Math.ceil(w / f), oh = Math.ceil(h / f), out = new Uint8ClampedArray(ow * oh), sums = new Int32Array(ow);
  const block = new Int32Array(w);
  for (let x = 0; x < w; x++) block[x] = Math.floor(x / f);
  for (let oy = 0; oy < oh; oy++) {
    sums.fill(0);
    const y0 = oy * f, y1 = Math.min(h, y0 + f);
    for (let y = y0; y < y1; y++) {
      if (luma) for (let x = 0, i = y * w * stride; x < w; x++, i += stride) sums[block[x]] += (data[i] * 19595 + data[i + 1] * 38470 + data[i + 2] * 7471 + 0x8000) >> 16;
      else for (let x = 0, i = y * w * stride + channel; x < w; x++, i += stride) sums[block[x]] += data[i];
    }
    for (let ox = 0; ox < ow; ox++) {
      const count = (y1 - y0) * (Math.min(w, ox * f + f) - ox * f);
      out[oy * ow + ox] = Math.floor(((sums[ox] + (count >> 1)) * Math.floor(16777216 / count)) / 16777216);
    }
  }
  return out;
}

// ImageData (RGBA bytes) -> gray at the working resolution, as preprocess.work_gray does for a Pillow
// RGB image (luma, then the box reduction) or an RGBA one (reduction, then compositing); `factor`:
// the reduction, `crop`: [left, top, right, bottom] of the picture to take (Pillow's Image.crop).
export function toGray(imageData, factor = null, crop = null) {
  if (crop) imageData = cropped(imageData, crop);
  const { width: w, height: h, data } = imageData;
  const f = factor ?? workFactor(w, h), ow = Math.ceil(w / f), oh = Math.ceil(h / f), n = ow * oh;
  let minAlpha = 255;
  for (let i = 3; i < data.length; i += 4) if (data[i] < minAlpha) minAlpha = data[i];
  if (minAlpha / 255 >= 0.99) { // Pillow's "L" conversion of RGB (ITU-R 601-2 luma, fixed point), then the reduction
    const luma = reduceChannel(data, w, h, 4, 0, f, true), out = gray(ow, oh);
    for (let p = 0; p < n; p++) out.a[p] = luma[p] / 255;
    return out;
  }
  const [r, g, b, alphas] = [0, 1, 2, 3].map((c) => reduceChannel(data, w, h, 4, c, f, false));
  // transparency: the ink is where the image is opaque; composite onto a contrasting background
  const lum = new Float32Array(n), alpha = new Float32Array(n);
  let weighted = 0, weight = 0, lowest = 1;
  for (let p = 0; p < n; p++) {
    lum[p] = (r[p] / 255) * 0.299 + (g[p] / 255) * 0.587 + (b[p] / 255) * 0.114;
    alpha[p] = alphas[p] / 255;
    weighted += lum[p] * alpha[p];
    weight += alpha[p];
    lowest = Math.min(lowest, alpha[p]);
  }
  const out = gray(ow, oh);
  if (lowest >= 0.99) { out.a.set(lum); return out; }
  const background = weight > 0 && weighted / weight < 0.5 ? 1 : 0;
  for (let p = 0; p < n; p++) out.a[p] = lum[p] * alpha[p] + background * (1 - alpha[p]);
  return out;
}

function cropped({ width, data }, [left, top, right, bottom]) {
  const w = right - left, h = bottom - top, out = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) out.set(data.subarray(((top + y) * width + left) * 4, ((top + y) * width + right) * 4), y * w * 4);
  return { width: w, height: h, data: out };
}

// The k-th smallest value (0-based) of a copy of `values`: Hoare's selection, O(n).
function kth(values, k) {
  const a = ArrayBuffer.isView(values) ? values.slice() : Float64Array.from(values);
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
const median = (values) => kth(values, values.length >> 1); // preprocess._median: the upper median

// preprocess._ring: the outer ring, `share` of the shorter side wide (at least one pixel).
function ring(g, share) {
  const { w, h, a } = g, k = Math.max(1, Math.trunc(Math.min(w, h) * share)), out = [];
  for (let y = 0; y < Math.min(k, h); y++) for (let x = 0; x < w; x++) out.push(a[y * w + x]);
  for (let y = Math.max(0, h - k); y < h; y++) for (let x = 0; x < w; x++) out.push(a[y * w + x]);
  for (let y = k; y < h - k; y++) for (let x = 0; x < Math.min(k, w); x++) out.push(a[y * w + x]);
  for (let y = k; y < h - k; y++) for (let x = Math.max(0, w - k); x < w; x++) out.push(a[y * w + x]);
  return out;
}

export function isMnistForm(g) {
  return g.w === FRAME && g.h === FRAME && median(ring(g, P.mnist_form_ring)) < P.mnist_form_paper;
}

// Bilinear resize, pixel centres aligned, edges clamped (preprocess.bilinear).
export function bilinear(g, h, w) {
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
      const left = g.a[y0 * g.w + x0] * (1 - ty) + g.a[y1 * g.w + x0] * ty;
      const right = g.a[y0 * g.w + x1] * (1 - ty) + g.a[y1 * g.w + x1] * ty;
      out.a[y * w + x] = left * (1 - tx) + right * tx;
    }
  }
  return out;
}

// preprocess._enlarge_tiny: a crop under MIN_SIDE px -> MIN_SIDE px on its longer side.
function enlargeTiny(g) {
  if (Math.max(g.h, g.w) >= MIN_SIDE) return g;
  const scale = MIN_SIDE / Math.max(g.h, g.w);
  return bilinear(g, Math.max(1, Math.round(g.h * scale)), Math.max(1, Math.round(g.w * scale)));
}

// preprocess.ink_is_dark: the outer 15%'s median against the middle of the 0.1st and 99.9th percentiles.
export function inkIsDark(g) {
  const n = g.a.length, k = Math.floor(n / P.tail_divisor);
  const lo = kth(g.a, k), hi = kth(g.a, n - 1 - k);
  return median(ring(g, P.polarity_ring)) > (lo + hi) / 2;
}

// preprocess._otsu: Otsu's threshold of values in [0, 1], 64 bins.
function otsu(values) {
  const hist = new Float64Array(64);
  for (const v of values) hist[Math.min(63, Math.max(0, Math.trunc(v * 64)))]++;
  let w0 = 0, m0 = 0, total = 0, mean = 0;
  for (let i = 0; i < 64; i++) { total += hist[i]; mean += hist[i] * (i + 0.5) / 64; }
  let best = -1, at = 0;
  for (let i = 0; i < 63; i++) {
    w0 += hist[i];
    m0 += hist[i] * (i + 0.5) / 64;
    const between = (mean * w0 - m0 * total) ** 2 / Math.max(w0 * (total - w0), 1e-12);
    if (between > best) { best = between; at = i; }
  }
  return (at + 1) / 64;
}

const linspace = (n) => Array.from({ length: n }, (_, i) => (n === 1 ? -1 : -1 + (2 * i) / (n - 1)));

// Solve A x = b (n x n) by Gaussian elimination with partial pivoting; null where |det A| <= 1e-9,
// the test preprocess.background_field makes (the product of the pivots is the determinant).
function solve(A, b, n) {
  const m = A.map((row, i) => [...row, b[i]]);
  let det = 1;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    det *= m[p][c];
    if (m[p][c] === 0) return null;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = c + 1; r < n; r++) {
      const f = m[r][c] / m[c][c];
      for (let k = c; k <= n; k++) m[r][k] -= f * m[c][k];
    }
  }
  if (Math.abs(det) <= 1e-9) return null;
  const x = new Array(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n];
    for (let k = r + 1; k < n; k++) s -= m[r][k] * x[k];
    x[r] = s / m[r][r];
  }
  return x;
}

// preprocess.background_field: a quadratic surface fitted to the paper alone on a block-mean
// reduction to about FIELD_SIDE px (Otsu's lower class, then what lies within field_paper_sigmas noise deviations
// above the first fit); a plane or a constant where little paper is left.
function backgroundField(x) {
  const { w, h } = x;
  const f = Math.max(1, Math.min(Math.floor(Math.max(h, w) / FIELD_SIDE), h, w));
  const sh = Math.floor(h / f), sw = Math.floor(w / f), z = new Float64Array(sh * sw);
  for (let y = 0; y < sh; y++) for (let c = 0; c < sw; c++) {
    let s = 0;
    for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) s += x.a[(y * f + dy) * w + c * f + dx];
    z[y * sw + c] = s / (f * f);
  }
  const us = linspace(sw), vs = linspace(sh), design = new Float64Array(z.length * 6); // rows of 1, u, v, u^2, uv, v^2
  for (let i = 0; i < z.length; i++) {
    const u = us[i % sw], v = vs[Math.floor(i / sw)];
    design.set([1, u, v, u * u, u * v, v * v], i * 6);
  }
  const t = otsu(z), paper = new Uint8Array(z.length), resid = new Float64Array(z.length);
  for (let i = 0; i < z.length; i++) paper[i] = z[i] <= t ? 1 : 0;
  let coef = [0, 0, 0, 0, 0, 0];
  for (let iter = 0; iter < 2; iter++) {
    let n = 0;
    for (let i = 0; i < z.length; i++) n += paper[i];
    const terms = n >= Math.max(P.field_terms_6_at, Math.floor(z.length / P.field_terms_6_divisor)) ? 6 : n >= P.field_terms_3_at ? 3 : 0;
    let solved = null;
    if (terms) {
      const A = Array.from({ length: terms }, () => new Array(terms).fill(0)), b = new Array(terms).fill(0);
      for (let i = 0; i < z.length; i++) {
        if (!paper[i]) continue;
        for (let r = 0; r < terms; r++) {
          const dr = design[i * 6 + r];
          b[r] += dr * z[i];
          for (let c = 0; c < terms; c++) A[r][c] += dr * design[i * 6 + c];
        }
      }
      solved = solve(A, b, terms);
    }
    if (!solved) {
      coef = [n ? median(z.filter((_, i) => paper[i])) : median(z), 0, 0, 0, 0, 0];
      break;
    }
    coef = [...solved, 0, 0, 0, 0, 0, 0].slice(0, 6);
    let dev = 0;
    for (let i = 0; i < z.length; i++) {
      let fit = 0;
      for (let k = 0; k < 6; k++) fit += design[i * 6 + k] * coef[k];
      resid[i] = z[i] - fit;
      if (paper[i]) dev += Math.abs(resid[i]);
    }
    const noise = (P.field_mad_to_sigma * dev) / n + P.field_noise_floor;
    for (let i = 0; i < z.length; i++) paper[i] = resid[i] <= P.field_paper_sigmas * noise ? 1 : 0;
  }
  const [c0, cu, cv, cuu, cuv, cvv] = coef, fu = linspace(w), fv = linspace(h), out = gray(w, h);
  for (let y = 0; y < h; y++) {
    const v = fv[y];
    for (let c = 0; c < w; c++) {
      const u = fu[c];
      out.a[y * w + c] = c0 + cu * u + cuu * u * u + v * (cv + cuv * u) + cvv * v * v;
    }
  }
  return out;
}

export function normalizeInk(g, seen = {}) {
  seen.dark = inkIsDark(g);
  return keepDigit(inkImage(g, seen.dark), seen);
}

// preprocess.ink_image: ink in (0, 1] on 0; `dark`: whether the ink is darker than the paper.
export function inkImage(g, dark) {
  const x = gray(g.w, g.h), invert = dark;
  for (let i = 0; i < x.a.length; i++) x.a[i] = invert ? 1 - g.a[i] : g.a[i];
  const field = backgroundField(x);
  for (let i = 0; i < x.a.length; i++) x.a[i] -= field.a[i];
  const n = x.a.length, ink = kth(x.a, n - 1 - Math.floor(n / P.tail_divisor)); // the 99.9th percentile
  if (ink < P.min_contrast) throw new PreprocessError("no digit found (blank or featureless image)");
  const gain = 1 / ink;
  for (let i = 0; i < n; i++) x.a[i] = Math.min(1, Math.max(0, x.a[i] * gain));
  const k = Math.floor(x.w / P.rule_row_divisor);
  for (let y = 0; y < x.h; y++) { // a ruled line crosses the whole width: it lifts even a row's 10th percentile
    const row = x.a.subarray(y * x.w, (y + 1) * x.w);
    let rule = kth(row, k);
    if (rule >= P.rule_is_ink) rule = 0; // a digit filling the width is ink, not a faint line
    for (let i = 0; i < row.length; i++) row[i] = Math.max(row[i] - rule, 0);
  }
  for (let i = 0; i < n; i++) if (x.a[i] < INK_LEVEL) x.a[i] = 0; // paper texture, JPEG ringing, faint shadows
  return x;
}

// 8-connected components of x > 0 (preprocess.components): labels 0..n-1 in raster order of their
// first pixel (-1 for paper), each component's ink and bounding box [top, left, bottom, right].
export function components(x) {
  const { w, h, a } = x, labels = new Int32Array(w * h).fill(-1), boxes = [], ink = [];
  for (let start = 0; start < w * h; start++) {
    if (!(a[start] > 0) || labels[start] >= 0) continue;
    const n = boxes.length, stack = [start], box = [h, w, -1, -1];
    let total = 0;
    labels[start] = n;
    while (stack.length) {
      const p = stack.pop(), cy = Math.floor(p / w), cx = p % w;
      box[0] = Math.min(box[0], cy); box[1] = Math.min(box[1], cx); box[2] = Math.max(box[2], cy); box[3] = Math.max(box[3], cx);
      total += a[p];
      for (let ny = Math.max(cy - 1, 0); ny < Math.min(cy + 2, h); ny++) for (let nx = Math.max(cx - 1, 0); nx < Math.min(cx + 2, w); nx++) {
        const q = ny * w + nx;
        if (a[q] > 0 && labels[q] < 0) { labels[q] = n; stack.push(q); }
      }
    }
    boxes.push(box);
    ink.push(total);
  }
  return { labels, boxes, ink };
}

// preprocess.keep_digit: erase specks, ruled lines, box lines at the edges and neighbours' pieces;
// seen.digits: how many digit-sized marks stand side by side (preprocess.Seen).
function keepDigit(x, seen) {
  edgeLines(x);
  const { w, h } = x, { labels, boxes, ink } = components(x), n = boxes.length;
  seen.digits = n > 0 ? 1 : 0;
  if (n === 1) seen.box = seen.extent = boxes[0];
  if (n <= 1) return x;
  let main = 0;
  for (let i = 1; i < n; i++) if (ink[i] > ink[main]) main = i;
  const keep = ink.map((v) => v >= MIN_PART * ink[main]);
  const flat = boxes.map(([top, left, bottom, right]) => right - left + 1 >= P.ruled_line_width * w && bottom - top + 1 <= Math.max(1, Math.floor(h / P.ruled_line_height_divisor)));
  if (keep.filter(Boolean).length > 1) flat.forEach((f, i) => { if (f && i !== main) keep[i] = false; }); // a ruled line
  const [mainTop, mainLeft, mainBottom, mainRight] = boxes[main];
  let digits = 1;
  boxes.forEach(([top, left, bottom, right], i) => {
    const apart = right < mainLeft || left > mainRight; // no column in common with the digit
    if (apart && (left === 0 || right === w - 1) && ink[i] < P.neighbour_ink * ink[main]) keep[i] = false; // a neighbour's piece at the edge
    // another digit beside this one: half its height or more, a fifth of its ink or more, a quarter of
    // the narrower one's columns in common at most
    const shared = Math.min(right, mainRight) - Math.max(left, mainLeft) + 1;
    const sideBySide = shared <= P.side_by_side_shared * Math.min(right - left + 1, mainRight - mainLeft + 1);
    const tall = bottom - top + 1 >= P.side_by_side_height * (mainBottom - mainTop + 1);
    if (keep[i] && i !== main && sideBySide && tall && ink[i] >= P.side_by_side_ink * ink[main]) digits++;
  });
  seen.digits = digits;
  seen.box = boxes[main];
  const kept = boxes.filter((_, i) => keep[i]);
  seen.extent = [Math.min(...kept.map((b) => b[0])), Math.min(...kept.map((b) => b[1])),
    Math.max(...kept.map((b) => b[2])), Math.max(...kept.map((b) => b[3]))];
  if (keep.every(Boolean)) return x;
  for (let p = 0; p < w * h; p++) if (labels[p] >= 0 && !keep[labels[p]]) x.a[p] = 0;
  return x;
}

// preprocess.edge_lines: a form's box lines along the edges (in place).
export function edgeLines(x) {
  const { w, h, a } = x, rows = new Float64Array(h), cols = new Float64Array(w);
  for (let y = 0; y < h; y++) for (let c = 0; c < w; c++) if (a[y * w + c] > 0) { rows[y]++; cols[c]++; }
  for (let y = 0; y < h; y++) rows[y] /= w;
  for (let c = 0; c < w; c++) cols[c] /= h;
  if (Math.max(...rows, ...cols) < P.edge_line_cover) return;
  const halfWidth = Math.max(1, strokeWidth(x, 0) / 2);
  for (const [isRows, cover] of [[true, rows], [false, cols]]) {
    const n = cover.length, edge = Math.max(1, Math.trunc(n * P.edge_band)), line = [];
    cover.forEach((v, i) => { if (v >= P.edge_line_cover) line.push(i); });
    for (const [band, inside] of [[line.filter((i) => i < edge), 1], [line.filter((i) => i >= n - edge), -1]]) {
      if (!(band.length > 0 && band.length <= halfWidth)) continue;
      const after = inside === 1 ? band[band.length - 1] + 1 : band[0] - 1;
      if (after >= 0 && after < n && cover[after] > P.edge_line_inside * Math.min(...band.map((i) => cover[i]))) continue;
      for (const i of band) {
        if (isRows) a.fill(0, i * w, (i + 1) * w);
        else for (let y = 0; y < h; y++) a[y * w + i] = 0;
      }
    }
  }
}

// Area / half the boundary length of the pixels above `level`: the width of a long stroke.
function strokeWidth(g, level) {
  const { w, h, a } = g;
  let area = 0, inner = 0;
  const on = (x, y) => a[y * w + x] > level;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!on(x, y)) continue;
      area++;
      if ((y === 0 || on(x, y - 1)) && (y === h - 1 || on(x, y + 1)) && (x === 0 || on(x - 1, y)) && (x === w - 1 || on(x + 1, y))) inner++;
    }
  }
  return area / Math.max((area - inner) / 2, 1);
}

// Pillow's MaxFilter / MinFilter (a size x size window, the border replicated), done as a row pass
// then a column pass (preprocess.extreme_filter).
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

function adjustStroke(g, scale) {
  const width = strokeWidth(g, 0.5), target = MNIST_STROKE / scale;
  if (width < P.stroke_thin * target) return extremeFilter(g, Math.min(pyRound(target - width) | 1, P.stroke_filter_max), true); // dilate
  if (width > P.stroke_thick * target) return extremeFilter(g, Math.min(pyRound((width - P.stroke_thick_to * target) / 2) | 1, P.stroke_filter_max), false); // erode
  return g;
}

// Pillow's LANCZOS resample of a float image (preprocess.lanczos_matrix): separable, horizontal pass then vertical.
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
  for (let y = 0; y < h; y++) out.a.set(g.a.subarray((top + y) * g.w + left, (top + y) * g.w + left + w), y * w);
  return out;
}

function pad(g, p) {
  const out = gray(g.w + 2 * p, g.h + 2 * p);
  for (let y = 0; y < g.h; y++) out.a.set(g.a.subarray(y * g.w, (y + 1) * g.w), (y + p) * out.w + p);
  return out;
}

// preprocess.picture_box: the ink the first look kept (seen.extent, in the enlarged working picture's
// pixels; none: a picture already in MNIST form, all of it) -> [x, y, w, h] in the picture's pixels
// (W x H); `first`: the working picture.
export function pictureBox(W, H, first, seen) {
  if (!seen.extent) return [0, 0, W, H];
  const tiny = Math.min(1, Math.max(first.w, first.h) / MIN_SIDE); // seen's boxes are in the enlarged tiny picture's pixels
  const [top, left, bottom, right] = seen.extent.map((v) => v * tiny);
  const fy = H / first.h, fx = W / first.w;
  return [Math.trunc(left * fx), Math.trunc(top * fy), Math.max(1, pyRound((right + 1 - left) * fx)), Math.max(1, pyRound((bottom + 1 - top) * fy))];
}

// Grayscale (at the working resolution) -> MNIST form: Float32Array(784), light digit on dark;
// `seen` (preprocess.Seen) receives what the look found on the way (digits: how many side by side).
export function toMnist(g, seen = {}) {
  if (isMnistForm(g)) return Float32Array.from(g.a);
  return fitFrame(normalizeInk(enlargeTiny(g), seen));
}

// preprocess.fit_frame: one digit's ink alone -> MNIST form: cropped to the ink, then `frame`.
function fitFrame(x) {
  let top = x.h, bottom = -1, left = x.w, right = -1;
  for (let y = 0; y < x.h; y++) for (let c = 0; c < x.w; c++) {
    if (x.a[y * x.w + c] !== 0) { top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, c); right = Math.max(right, c); }
  }
  if (bottom < 0) throw new PreprocessError("no digit found (blank or featureless image)");
  return frame(pad(crop(x, top, left, bottom - top + 1, right - left + 1), MARGIN));
}

// preprocess.frame: one digit's ink cropped tight, in a border of MARGIN px of 0 -> MNIST form
// (stroke adjusted, 20x20, centred by mass).
export function frame(padded) {
  const h = padded.h - 2 * MARGIN, w = padded.w - 2 * MARGIN, scale = BOX / Math.max(h, w);
  const x = crop(adjustStroke(padded, scale), MARGIN, MARGIN, h, w);
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

// ImageData -> Float32Array(784) in the polarity the model asks for (`seen`: see toMnist).
export function preprocess(imageData, polarity = "light-on-dark", seen = {}) {
  const x = toMnist(toGray(imageData), seen);
  if (polarity === "dark-on-light") for (let i = 0; i < x.length; i++) x[i] = 1 - x[i];
  return x;
}
