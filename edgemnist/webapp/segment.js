// edgemnist/segment.py ported to the browser, step for step: a line of digits -> the pieces that may
// be digits (28x28 each, as the model takes them) and the best reading of the line from the model's
// scores of all of them. The parameters are preprocess.json's "segment" table, which Python reads too.
import { PreprocessError, components, edgeLines, frame, inkImage, bilinear, pyRound, toGray, workFactor,
  WORK_SIDE, MIN_SIDE, FRAME, MARGIN, PARAMS as ALL } from "./preprocess.js";

const P = new Proxy({}, { get: (_, key) => ALL.segment[key] }); // the table, once loadParams has filled it
export { P as PARAMS };
const SIDE = FRAME * FRAME;

// segment.is_line: several digits side by side, or one mark `maybe_touching` times as wide as tall.
export function isLine(digits, box) {
  if (digits > 1) return true;
  if (!box) return false;
  const [top, left, bottom, right] = box;
  return right - left + 1 >= P.maybe_touching * (bottom - top + 1);
}

// Per label, the least and greatest value (segment._extent).
function extent(labels, values, n) {
  const lo = new Array(n).fill(Infinity), hi = new Array(n).fill(-Infinity);
  for (let i = 0; i < labels.length; i++) {
    const k = labels[i];
    if (values[i] < lo[k]) lo[k] = values[i];
    if (values[i] > hi[k]) hi[k] = values[i];
  }
  return [lo, hi];
}

// segment._line_height: the upper median of the marks at least a third as tall as the tallest.
function lineHeight(heights) {
  const top = Math.max(...heights);
  const tall = heights.filter((v) => v >= top / 3).sort((a, b) => a - b);
  return tall[tall.length >> 1];
}

// segment._slant: columns per row, pooled over the tall components' centred second moments.
function slant(rows, cols, comp, tall) {
  const n = tall.length, count = new Float64Array(n), sr = new Float64Array(n), sc = new Float64Array(n);
  let any = false;
  for (let i = 0; i < rows.length; i++) if (tall[comp[i]]) { count[comp[i]]++; sr[comp[i]] += rows[i]; sc[comp[i]] += cols[i]; any = true; }
  if (!any) return 0;
  let vr = 0, cov = 0;
  for (let i = 0; i < rows.length; i++) {
    const k = comp[i];
    if (!tall[k]) continue;
    const dr = rows[i] - sr[k] / count[k], dc = cols[i] - sc[k] / count[k];
    vr += dr * dr; cov += dr * dc;
  }
  const s = vr > 0 ? cov / vr : 0;
  return Math.min(P.max_slant, Math.max(-P.max_slant, s));
}

// segment._groups: components sharing `same_digit` of the narrower one's columns are one group,
// numbered left to right (ties by their root).
function groups(left, right) {
  const n = left.length, parent = Array.from({ length: n }, (_, i) => i);
  const root = (i) => { while (parent[i] !== i) { parent[i] = parent[parent[i]]; i = parent[i]; } return i; };
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => left[a] - left[b]);
  for (let ai = 0; ai < n; ai++) {
    const a = order[ai];
    for (const b of order.slice(ai + 1)) {
      if (left[b] > right[a]) break;
      const shared = Math.min(right[a], right[b]) - left[b] + 1;
      if (shared >= P.same_digit * Math.min(right[a] - left[a] + 1, right[b] - left[b] + 1)) parent[root(b)] = root(a);
    }
  }
  const roots = Array.from({ length: n }, (_, i) => root(i)), firsts = new Map();
  roots.forEach((r, i) => firsts.set(r, Math.min(firsts.has(r) ? firsts.get(r) : left[i], left[i])));
  const ranked = [...firsts.keys()].sort((a, b) => firsts.get(a) - firsts.get(b) || a - b);
  const rank = new Map(ranked.map((r, i) => [r, i]));
  return roots.map((r) => rank.get(r));
}

// segment._attach_short: a short group is part of the tall one holding `same_digit` of its columns, else no digit (-1).
function attachShort(group, top, bottom, left, right, line) {
  const k = Math.max(...group) + 1;
  const [gTop] = extent(group, top, k), [, gBottom] = extent(group, bottom, k);
  const [gLeft] = extent(group, left, k), [, gRight] = extent(group, right, k);
  const tall = gTop.map((t, i) => gBottom[i] - t + 1 > P.mark_height * line);
  const target = tall.map((t, i) => (t ? i : -1));
  const anyTall = tall.some(Boolean);
  for (let s = 0; s < k; s++) {
    if (tall[s]) continue;
    let best = 0, bestShared = -Infinity;
    for (let t = 0; t < k; t++) {
      const shared = tall[t] ? Math.min(gRight[t], gRight[s]) - Math.max(gLeft[t], gLeft[s]) + 1 : 0;
      if (shared > bestShared) { bestShared = shared; best = t; }
    }
    if (anyTall && bestShared >= P.same_digit * (gRight[s] - gLeft[s] + 1)) target[s] = best;
  }
  const renumber = new Array(k).fill(-1);
  let next = 0;
  for (let i = 0; i < k; i++) if (tall[i]) renumber[i] = next++;
  return group.map((g) => (target[g] >= 0 ? renumber[target[g]] : -1));
}

// segment._cuts: local minima of the ink across, a narrow digit's width from the ends and each other.
function cuts(profile, height, most) {
  const w = profile.length, least = Math.max(1, pyRound(P.min_piece * height));
  if (w < 2 * least) return [];
  const at = (c) => (c < 0 || c >= w ? Infinity : profile[c]);
  const minima = [];
  for (let c = least; c <= w - least; c++) if (at(c) <= at(c - 1) && at(c) <= at(c + 1)) minima.push(c);
  minima.sort((a, b) => profile[a] - profile[b] || a - b);
  const chosen = [];
  for (const c of minima) {
    if (chosen.every((o) => Math.abs(c - o) >= least)) chosen.push(c);
    if (chosen.length === most) break;
  }
  return chosen.sort((a, b) => a - b);
}

// segment.lattice: ink (preprocess.inkImage, box lines off) -> the pieces, their spans, boxes, aspects.
export function lattice(x, scale = [1, 1], cutEvery = false) {
  const w = x.w, { labels } = components(x);
  const rows = [], cols = [], comp = [];
  for (let p = 0; p < labels.length; p++) if (labels[p] >= 0) { rows.push(Math.floor(p / w)); cols.push(p % w); comp.push(labels[p]); }
  if (!rows.length) throw new PreprocessError("no digit found (blank or featureless image)");
  const n = Math.max(...comp) + 1, ink = new Float64Array(n);
  for (let i = 0; i < rows.length; i++) ink[comp[i]] += x.a[rows[i] * w + cols[i]];
  const [top, bottom] = extent(comp, rows, n);
  const height = top.map((t, k) => bottom[k] - t + 1);
  const inkMax = Math.max(...ink);
  const keep = Array.from(ink, (v) => v >= P.speck * inkMax);
  const line = lineHeight(height.filter((_, k) => keep[k]));
  const [cLeft, cRight] = extent(comp, cols, n); // a mark wider than cut_from lines may be digits side by side:
  const narrow = cLeft.map((l, k) => cRight[k] - l + 1 <= P.cut_from * line); // its moments measure their layout
  const tall = keep.map((k, i) => k && height[i] >= 0.5 * line);
  const lat = readAt(x, rows, cols, comp, keep, top, bottom, line, slant(rows, cols, comp, tall.map((t, i) => t && narrow[i])), scale, cutEvery);
  if (!tall.some((t, i) => t && narrow[i]) && Math.max(...cLeft.map((l, k) => (tall[k] ? cRight[k] - l + 1 : -Infinity))) >= P.wide * line) {
    lat.lean = readAt(x, rows, cols, comp, keep, top, bottom, line, P.lean, scale, cutEvery); // touching digits
  }
  return lat;
}

// segment.readings: the line upright (or at its measured slant), then at the usual slant if read so.
export const readings = (lat) => (lat.lean ? [lat, lat.lean] : [lat]);

// segment._read_at: the line's marks grouped, cut and framed along columns at slant `s`.
function readAt(x, rows, cols, comp, keep, top, bottom, line, s, scale, cutEvery) {
  const n = keep.length;
  let centre = 0, kept = 0;
  for (let i = 0; i < rows.length; i++) if (keep[comp[i]]) { centre += rows[i]; kept++; }
  centre /= kept;
  let sheared = cols.map((c, i) => c - pyRound(s * (rows[i] - centre)));
  const low = Math.min(...sheared);
  sheared = sheared.map((v) => v - low);
  const [left, right] = extent(comp, sheared, n);
  const keptIdx = keep.flatMap((k, i) => (k ? [i] : []));
  if (keptIdx.length > P.max_marks) {
    throw new PreprocessError(`${keptIdx.length} marks in one line: too many to read as a number (at most ${P.max_marks})`);
  }
  const pick = (a) => keptIdx.map((i) => a[i]);
  const groupOf = new Array(n).fill(-1);
  const attached = attachShort(groups(pick(left), pick(right)), pick(top), pick(bottom), pick(left), pick(right), line);
  keptIdx.forEach((i, j) => { groupOf[i] = attached[j]; });
  const R = [], C = [], S = [], G = [];
  for (let i = 0; i < rows.length; i++) if (groupOf[comp[i]] >= 0) { R.push(rows[i]); C.push(cols[i]); S.push(sheared[i]); G.push(groupOf[comp[i]]); }
  if (!R.length) throw new PreprocessError("no digit found (blank or featureless image)");
  return pieces(x, R, C, S, G, atoms(S, G, line, cutEvery), line, scale);
}

// segment._atoms: (group, first sheared column, one past the last) of each atom, left to right.
function atoms(sheared, g, line, cutEvery) {
  const out = [], k = Math.max(...g) + 1;
  for (let grp = 0; grp < k; grp++) {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < g.length; i++) if (g[i] === grp) { lo = Math.min(lo, sheared[i]); hi = Math.max(hi, sheared[i] + 1); }
    let found = [];
    if (cutEvery || hi - lo > P.cut_marks_from * line) {
      const profile = new Float64Array(hi - lo);
      for (let i = 0; i < g.length; i++) if (g[i] === grp) profile[sheared[i] - lo]++;
      const narrow = !cutEvery && hi - lo <= P.cut_from * line; // at most two digits fit in it
      found = cuts(profile, line, narrow ? P.narrow_cuts : P.max_cuts).map((b) => lo + b);
    }
    const edges = [lo, ...found, hi];
    for (let e = 0; e + 1 < edges.length; e++) out.push([grp, edges[e], edges[e + 1]]);
  }
  return out;
}

// segment._pieces: each admissible run of atoms -> its 28x28, box, aspect, cuts, broad, narrow and marks.
function pieces(x, rows, cols, sheared, g, runs, line, [sy, sx]) {
  const first = new Map(), last = new Map(), n = runs.length;
  runs.forEach(([k], i) => { if (!first.has(k)) first.set(k, i); last.set(k, i); });
  const of = new Int32Array(rows.length); // each pixel's atom
  for (let p = 0; p < rows.length; p++) {
    let a = first.get(g[p]);
    while (a < last.get(g[p]) && sheared[p] >= runs[a + 1][1]) a++;
    of[p] = a;
  }
  const start = new Int32Array(n + 1); // atom a's pixels: order[start[a]..start[a + 1]), raster order within
  for (const a of of) start[a + 1]++;
  for (let a = 0; a < n; a++) start[a + 1] += start[a];
  const order = new Int32Array(rows.length), next = start.slice(0, n);
  for (let p = 0; p < rows.length; p++) order[next[of[p]]++] = p;
  const [top, bottom] = extent(of, rows, n), [left, right] = extent(of, cols, n);
  const lat = { spans: [], boxes: [], aspects: [], cuts: [], broad: [], narrow: [], marks: [], atoms: n, pictures: [] };
  for (let i = 0; i < n; i++) {
    const groups = new Set();
    let lo = Infinity, hi = -Infinity, t = Infinity, b = -Infinity, l = Infinity, r = -Infinity;
    for (let j = i + 1; j <= n; j++) {
      const [k, aLo, aHi] = runs[j - 1];
      groups.add(k);
      lo = Math.min(lo, aLo); hi = Math.max(hi, aHi);
      t = Math.min(t, top[j - 1]); b = Math.max(b, bottom[j - 1]); l = Math.min(l, left[j - 1]); r = Math.max(r, right[j - 1]);
      const wholeMarks = first.get(runs[i][0]) === i && last.get(k) === j - 1;
      if (groups.size > 1 && !wholeMarks) break; // part of a mark with part of another: never one digit
      const oneMark = groups.size === 1 && wholeMarks;
      if (!oneMark && ((groups.size > 1 && j - i > P.max_span) || hi - lo > P.max_piece * line)) {
        if (groups.size > 1 || last.get(runs[i][0]) < j) break;
        continue; // a whole mark is always a piece, however wide
      }
      const h = b - t + 1, w = r - l + 1;
      if (!oneMark && h <= P.mark_height * line) continue; // a cut-off end of a stroke (a 7's bar): no digit alone
      if (start[i] === start[j]) continue; // atoms without ink
      const padded = { w: w + 2 * MARGIN, h: h + 2 * MARGIN, a: new Float32Array((w + 2 * MARGIN) * (h + 2 * MARGIN)) };
      for (let q = start[i]; q < start[j]; q++) {
        const p = order[q];
        padded.a[(rows[p] - t + MARGIN) * padded.w + cols[p] - l + MARGIN] = x.a[rows[p] * x.w + cols[p]];
      }
      lat.pictures.push(frame(padded));
      lat.spans.push([i, j]);
      lat.boxes.push([Math.trunc(l * sx), Math.trunc(t * sy), Math.max(1, pyRound(w * sx)), Math.max(1, pyRound(h * sy))]);
      lat.aspects.push(w / h);
      lat.cuts.push(Number(first.get(runs[i][0]) !== i) + Number(last.get(k) !== j - 1));
      const mark = runs[last.get(k)][2] - runs[first.get(k)][1]; // the (last) mark's width
      lat.broad.push(mark >= P.broad * line);
      lat.narrow.push(mark <= P.cut_from * line);
      lat.marks.push(groups.size);
    }
  }
  lat.pieces = new Float32Array(lat.pictures.length * SIDE);
  lat.pictures.forEach((p, i) => lat.pieces.set(p, i * SIDE));
  delete lat.pictures;
  lat.count = lat.spans.length;
  return lat;
}

// segment._paths: the two best paths of pieces across the line with least..most pieces; a state is
// the atom alone when the count holds nothing back.
function paths(lat, score, least, most) {
  const held = least > 1 || most < lat.atoms;
  const table = new Map([["0,0", { atom: 0, k: 0, entries: [[0, []]] }]]);
  for (let end = 1; end <= lat.atoms; end++) {
    lat.spans.forEach(([i, j], p) => {
      if (j !== end) return;
      for (const { atom, k, entries } of [...table.values()]) {
        if (atom !== i || k >= most) continue;
        const next = held ? k + 1 : 1, key = `${end},${next}`;
        if (!table.has(key)) table.set(key, { atom: end, k: next, entries: [] });
        const bucket = table.get(key).entries;
        for (const [s, path] of entries) bucket.push([s + score[p], [...path, p]]);
        bucket.sort((a, b) => b[0] - a[0]);
        bucket.length = Math.min(bucket.length, 2);
      }
    });
  }
  if (!held) return table.get(`${lat.atoms},1`)?.entries ?? [];
  const finals = [];
  for (let k = least; k <= most; k++) finals.push(...(table.get(`${lat.atoms},${k}`)?.entries ?? []));
  return finals.sort((a, b) => b[0] - a[0]).slice(0, 2);
}

// segment.read: the best parse of the line's readings for their pieces' log-probabilities ([P*10],
// readings(lat) in order), the slanted reading at lean_cost; the other reading's parse, if it spells
// another number, is a runner-up for the margin. One mark alone (lat.single) is read as several
// digits only if that beats its best reading as one digit by split_lead. null when none has `count` digits.
export function read(lat, logprobs, count = null) {
  const parses = [];
  let at = 0;
  readings(lat).forEach((r, k) => {
    const parse = readOne(r, logprobs.subarray(at * 10, (at + r.count) * 10), count);
    if (parse) parses.push({ ...parse, score: parse.score + k * P.lean_cost, first: at, reading: r });
    at += r.count;
  });
  if (!parses.length) return null;
  let best = parses[0];
  for (const q of parses) if (q.score > best.score) best = q; // ties: the upright reading
  for (const q of parses) {
    const same = q.labels.length === best.labels.length && q.labels.every((v, i) => v === best.labels[i]);
    if (q !== best && !same) best.margin = Math.min(best.margin, best.own - q.own);
  }
  if (lat.single && best.pieces.length > 1 && (count ?? [1, 1])[0] === 1) {
    const one = read(lat, logprobs, [1, 1]); // one mark alone: several digits only with a lead
    if (one && best.score - one.score < P.split_lead) {
      one.margin = Math.min(one.margin, one.own - best.own);
      return one;
    }
  }
  return best;
}

// segment._read: the best parse for the pieces' log-probabilities ([P*10]) and its margin over the
// best parse of other pieces, scored without the costs of cuts and joins (a cut in a narrow mark pays
// narrow_cut_doubt per end); null when none has `count` digits.
function readOne(lat, logprobs, count = null) {
  const labels = [], plain = [], withCut = [], rival = [];
  for (let p = 0; p < lat.count; p++) {
    let best = -Infinity, label = 0, doubt = 0; // doubt: the entropy, high for what reads as no digit
    for (let d = 0; d < 10; d++) doubt -= Math.exp(logprobs[p * 10 + d]) * logprobs[p * 10 + d];
    const la = Math.log(lat.aspects[p]);
    for (let d = 0; d < 10; d++) {
      const z = (la - P.aspect_log_mean[d]) / P.aspect_log_sd[d];
      const e = logprobs[p * 10 + d] + P.aspect_weight * (-0.5 * (z * z)) + P.piece_cost + P.doubt_cost * doubt;
      if (e > best) { best = e; label = d; }
    }
    const cut = lat.broad[p] ? P.broad_cut_cost : P.cut_cost;
    labels.push(label); plain.push(best); withCut.push(best + 0.5 * cut * lat.cuts[p] + P.join_cost * (lat.marks[p] - 1));
    rival.push(best + (lat.narrow[p] ? P.narrow_cut_doubt * lat.cuts[p] : 0));
  }
  const [least, most] = count ?? [1, lat.atoms];
  const best = paths(lat, withCut, least, most);
  if (!best.length) return null;
  const path = best[0][1];
  let own = 0;
  for (const p of path) own += plain[p];
  const others = paths(lat, rival, least, most).filter(([, q]) => q.length !== path.length || q.some((v, i) => v !== path[i]));
  return { pieces: path, labels: path.map((p) => labels[p]), score: best[0][0], margin: others.length ? own - others[0][0] : Infinity, own };
}

// segment.plain: one whole mark no wider than a digit.
export const plainPiece = (lat, p) => lat.cuts[p] === 0 && lat.marks[p] === 1 && lat.aspects[p] < P.wide;

// segment.line_of for a decoded picture: read again around the ink at the size that makes the line
// about line_height px tall. `first`: the first look's gray; `seen`: what it saw (preprocess.Seen: box, extent, dark).
export function lineOf(imageData, first, seen, cutEvery = false) {
  const tiny = Math.min(1, Math.max(first.w, first.h) / MIN_SIDE);
  const height = (seen.box[2] - seen.box[0] + 1) * tiny, target = P.line_height;
  const side = Math.min(Math.max(WORK_SIDE, Math.trunc(Math.max(first.w, first.h) * target / height)), P.max_side);
  const { width: W, height: H } = imageData, factor = workFactor(W, H, side);
  const [top, left, bottom, right] = seen.extent.map((v) => v * tiny);
  const fy = H / first.h, fx = W / first.w;
  const pad = seen.digits > 1 ? height : P.one_mark_margin_px;
  const crop = [Math.max(0, Math.trunc((left - pad) * fx)), Math.max(0, Math.trunc((top - pad) * fy)),
    Math.min(W, Math.trunc((right + 1 + pad) * fx + 1)), Math.min(H, Math.trunc((bottom + 1 + pad) * fy + 1))];
  let g = toGray(imageData, factor, crop);
  const regionH = crop[3] - crop[1], regionW = crop[2] - crop[0];
  const grow = Math.min(target / (height * fy / (regionH / g.h)), 4);
  if (grow > 1.2) g = bilinear(g, pyRound(g.h * grow), pyRound(g.w * grow));
  const x = inkImage(g, seen.dark);
  edgeLines(x);
  const lat = lattice(x, [regionH / x.h, regionW / x.w], cutEvery);
  for (const r of readings(lat)) r.boxes = r.boxes.map(([x0, y0, w, h]) => [pyRound(x0 + crop[0]), pyRound(y0 + crop[1]), w, h]);
  return lat;
}
