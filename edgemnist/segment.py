"""A line of digits -> the pieces that may be digits, and the ways to read the line from them.  [runtime side]

The ink (preprocess.ink_image) is split into connected components. Specks and flat marks (a ruled
line, an underline, a dash) go; so do marks much shorter than the line (a decimal point, a comma).
The slant of the writing is measured from the components' own second moments and columns are
taken along it, so slanted neighbours do not share columns. Components that share most of their
columns are one digit (a 5's flag, a 7's crossbar, a pen lift). A mark wider than a digit may be
several touching digits: it gets candidate cuts where little ink crosses a column. So does a
narrower mark, unless it is as narrow as a 1: thick narrow digits pressed together (an 11, a 14) make
one mark narrower than a digit; a parse that cuts such a narrow mark where the best does not is a
weaker runner-up (`narrow_cut_doubt`), so whole digits keep their "sure". A line of such
marks alone (touching digits) has no slant to measure: it is read upright and again at the lean of
most writers, and the model's scores choose between the two readings. A cut costs less in a mark so
wide (`broad`) that it surely holds several digits.

What lies between two neighbouring cuts (or mark edges) is an atom; a piece is a run of one to
MAX_SPAN atoms: part of a mark, a whole mark, or neighbouring whole marks (a digit broken in two
side by side). Each piece becomes a 28x28 picture; the model scores all of them as one batch, and
`read` keeps the parse, a path of pieces across the line, with the best joint score: each piece's
log-probability, a prior on its aspect for the digit read, a cost per piece and a cost for the
model's doubt about it (the entropy of its probabilities: the model was taught to spread them over
the ten digits for two touching digits framed as one). Its runner-up tells how close another parse
came. The numbers live in webapp/preprocess.json, read by the page's port too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgemnist import preprocess as pp

PARAMS = pp.TABLE["segment"]
# A JPEG is decoded again for a line only when its first decode holds fewer pixels than this across the
# line's height: a decode costs nearly as much at any reduced scale, and the line is enlarged to
# PARAMS["line_height"] for the cuts all the same, as a small picture's is. (Python's alone: the page
# reads a picture the browser has decoded whole.)
LINE_DETAIL = 24


@dataclass
class Lattice:
    """The pieces of one picture and where they lie on the line of atoms."""

    pieces: np.ndarray  # [P, 28, 28] MNIST form, light on dark
    spans: list[tuple[int, int]]  # each piece's atoms, [first, last + 1)
    boxes: list[tuple[int, int, int, int]]  # each piece's ink box in the input picture's pixels: x, y, w, h
    aspects: list[float]  # each piece's width / height (for the prior)
    cuts: list[int]  # how many of each piece's two ends are cuts through ink (0: a mark's own edges)
    broad: list[bool]  # each piece's (last) mark is at least `broad` lines wide: several digits, surely
    narrow: list[bool]  # each piece's (last) mark is at most `cut_from` lines wide: one digit, or narrow ones pressed together
    marks: list[int]  # how many marks each piece joins (more than 1: a digit written in parts side by side)
    atoms: int
    single: np.ndarray | None = None  # one wide mark: the 28x28 of the single-digit path, its answer if read as one digit
    lean: Lattice | None = None  # the line read again at the writers' usual slant (no mark narrow enough to measure it)

    def readings(self) -> list[Lattice]:
        """This reading and the one at the usual slant, if any: their pieces go to the model in this order."""
        return [self] if self.lean is None else [self, self.lean]


@dataclass
class Parse:
    """A reading of the line: which pieces, which digit each, and how it scored against the runner-up."""

    pieces: list[int]
    labels: list[int]
    score: float
    margin: float  # by how much the model's evidence favours it over the best parse of other pieces (inf: none)
    own: float = 0.0  # the model's evidence for it alone, without the costs of cuts and joins
    reading: Lattice | None = None  # the Lattice of its pieces (the line upright, or at the usual slant)
    first: int = 0  # where that Lattice's pieces start in the model's batch


def _pixels(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ink pixels of a mask and their component: (rows, columns, component), raster order."""
    ys, starts, ends, comp, _ = pp.components(mask)
    lengths = ends - starts
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    cols = np.arange(int(lengths.sum())) - offsets + np.repeat(starts, lengths)
    return np.repeat(ys, lengths), cols, np.repeat(comp, lengths)


def _slant(rows: np.ndarray, cols: np.ndarray, comp: np.ndarray, tall: np.ndarray) -> float:
    """Columns per row of the writing's slant, pooled over the tall components' centred second moments."""
    keep = tall[comp]
    if not keep.any():
        return 0.0
    r, c, k = rows[keep].astype(np.float64), cols[keep].astype(np.float64), comp[keep]
    n = np.bincount(k)
    nz = np.maximum(n, 1)
    dr = r - (np.bincount(k, r) / nz)[k]
    dc = c - (np.bincount(k, c) / nz)[k]
    vr = float(dr @ dr)
    s = float(dr @ dc) / vr if vr > 0 else 0.0
    return float(np.clip(s, -PARAMS["max_slant"], PARAMS["max_slant"]))


def _groups(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Components sharing at least `same_digit` of the narrower one's columns -> one group: a group
    number per component, groups numbered left to right."""
    n = len(left)
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = np.argsort(left, kind="stable")
    for a_i, a in enumerate(order):
        for b in order[a_i + 1 :]:
            if left[b] > right[a]:
                break
            shared = min(right[a], right[b]) - left[b] + 1
            if shared >= PARAMS["same_digit"] * min(right[a] - left[a] + 1, right[b] - left[b] + 1):
                parent[root(int(b))] = root(int(a))
    roots = [root(i) for i in range(n)]
    firsts: dict[int, int] = {}
    for i, r in enumerate(roots):
        firsts[r] = min(firsts.get(r, int(left[i])), int(left[i]))
    rank = {r: i for i, r in enumerate(sorted(firsts, key=lambda r: (firsts[r], r)))}  # left to right, ties by root
    return np.array([rank[r] for r in roots], np.int64)


def _attach_short(group: np.ndarray, top, bottom, left, right, line: float) -> np.ndarray:
    """Groups shorter than `mark_height` of the line: part of the tall group whose columns hold at least
    `same_digit` of theirs (a 5's flag, a 7's crossbar, the top of a broken 9), else not a digit at all
    (a decimal point, a comma, a dash, an underline: -1). -> each component's group, the tall ones
    renumbered 0.. left to right."""
    k = int(group.max()) + 1
    g_top, g_bottom = _extent(group, top, k)[0], _extent(group, bottom, k)[1]
    g_left, g_right = _extent(group, left, k)[0], _extent(group, right, k)[1]
    tall = g_bottom - g_top + 1 > PARAMS["mark_height"] * line
    target = np.where(tall, np.arange(k), -1)
    for s in np.flatnonzero(~tall):
        shared = np.minimum(g_right, g_right[s]) - np.maximum(g_left, g_left[s]) + 1
        shared[~tall] = 0
        best = int(shared.argmax())
        if tall.any() and shared[best] >= PARAMS["same_digit"] * (g_right[s] - g_left[s] + 1):
            target[s] = best
    renumber = np.full(k, -1)
    renumber[tall] = np.arange(int(tall.sum()))  # _groups numbers left to right
    out = target[group]
    return np.where(out >= 0, renumber[np.maximum(out, 0)], -1)


def _cuts(profile: np.ndarray, height: float, most: int) -> list[int]:
    """Candidate cuts in a group: columns where the ink across is a local minimum, at least a narrow
    digit's width from the ends and from each other, fewest ink first, at most `most`."""
    w = len(profile)
    least = max(1, int(round(PARAMS["min_piece"] * height)))
    if w < 2 * least:
        return []
    p = np.concatenate([[np.inf], profile, [np.inf]])
    minima = [c for c in range(least, w - least + 1) if p[c + 1] <= p[c] and p[c + 1] <= p[c + 2]]
    chosen: list[int] = []
    for c in sorted(minima, key=lambda c: (profile[c], c)):
        if all(abs(c - o) >= least for o in chosen):
            chosen.append(c)
        if len(chosen) == most:
            break
    return sorted(chosen)


def lattice(x: np.ndarray, scale: tuple[float, float] = (1.0, 1.0), cut_every: bool = False) -> Lattice:
    """Ink in (0, 1] on 0 (preprocess.ink_image, box lines already off) -> the pieces and their spans.
    `scale`: input-picture pixels per pixel of `x`, down and across, for the boxes. `cut_every`: every
    mark gets candidate cuts, however narrow (the line is known to hold several digits)."""
    rows, cols, comp = _pixels(x > 0)
    if len(rows) == 0:
        raise pp.PreprocessError("no digit found (blank or featureless image)")
    n = int(comp.max()) + 1
    ink = np.bincount(comp, x[rows, cols], minlength=n)
    top, bottom = _extent(comp, rows, n)
    height = bottom - top + 1
    keep = ink >= PARAMS["speck"] * ink.max()
    line = _line_height(height[keep])
    c_left, c_right = _extent(comp, cols, n)
    narrow = c_right - c_left + 1 <= PARAMS["cut_from"] * line  # a mark wider may be digits side by side: its
    tall = keep & (height >= 0.5 * line)  # moments measure their layout, not a slant
    lat = _read_at(x, rows, cols, comp, keep, top, bottom, line, _slant(rows, cols, comp, tall & narrow), scale, cut_every)
    if not (tall & narrow).any() and (c_right - c_left + 1)[tall].max() >= PARAMS["wide"] * line:
        lat.lean = _read_at(x, rows, cols, comp, keep, top, bottom, line, PARAMS["lean"], scale, cut_every)  # touching digits
    return lat


def _read_at(x, rows, cols, comp, keep, top, bottom, line, slant, scale, cut_every) -> Lattice:
    """The line's marks (pixels: rows, cols, component; each component kept or not, its top and
    bottom) grouped, cut and framed along columns at `slant`."""
    n = len(keep)
    centre = float(rows[keep[comp]].mean())
    sheared = cols - np.round(slant * (rows - centre)).astype(np.int64)
    sheared -= sheared.min()
    left, right = _extent(comp, sheared, n)
    kept = np.flatnonzero(keep)
    if len(kept) > PARAMS["max_marks"]:
        raise pp.PreprocessError(f"{len(kept)} marks in one line: too many to read as a number (at most {PARAMS['max_marks']})")
    group_of = np.full(n, -1)
    group_of[kept] = _attach_short(_groups(left[kept], right[kept]), top[kept], bottom[kept], left[kept], right[kept], line)
    pix = group_of[comp] >= 0
    if not pix.any():
        raise pp.PreprocessError("no digit found (blank or featureless image)")
    rows, cols, sheared, g = rows[pix], cols[pix], sheared[pix], group_of[comp[pix]]
    atoms = _atoms(sheared, g, line, cut_every)
    return _pieces(x, rows, cols, sheared, g, atoms, line, scale)


def _extent(labels: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per label, the least and greatest value."""
    lo = np.full(n, np.iinfo(np.int64).max)
    hi = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(lo, labels, values)
    np.maximum.at(hi, labels, values)
    return lo, hi


def _line_height(heights: np.ndarray) -> float:
    """The line's height: the upper median of the marks at least a third as tall as the tallest."""
    tall = np.sort(heights[heights >= heights.max() / 3])
    return float(tall[len(tall) // 2])


def _atoms(sheared: np.ndarray, g: np.ndarray, line: float, cut_every: bool) -> list[tuple[int, int, int]]:
    """(group, first sheared column, one past the last) of each atom, left to right. A group wider than
    `cut_marks_from` lines (or any, `cut_every`) gets candidate cuts: `narrow_cuts` in a narrow one (at
    most two digits fit in it), else up to `max_cuts`."""
    out = []
    for k in range(int(g.max()) + 1):
        sel = g == k
        c = sheared[sel]
        lo, hi = int(c.min()), int(c.max()) + 1
        cuts: list[int] = []
        if cut_every or hi - lo > PARAMS["cut_marks_from"] * line:
            profile = np.bincount(c - lo, np.ones(len(c)), minlength=hi - lo)
            narrow = not cut_every and hi - lo <= PARAMS["cut_from"] * line
            cuts = [lo + b for b in _cuts(profile, line, PARAMS["narrow_cuts" if narrow else "max_cuts"])]
        edges = [lo, *cuts, hi]
        out += [(k, a, b) for a, b in zip(edges[:-1], edges[1:])]
    return out


def _pieces(x, rows, cols, sheared, g, atoms, line, scale) -> Lattice:
    """Each admissible run of atoms -> its 28x28 picture, box and aspect."""
    spans, places, sizes, boxes, aspects, cuts, marks, broad, narrow = [], [], [], [], [], [], [], [], []
    n = len(atoms)
    first, last = {}, {}
    for i, (k, _, _) in enumerate(atoms):
        first.setdefault(k, i)
        last[k] = i
    of = np.empty(len(rows), np.int64)  # each pixel's atom
    for k in first:
        sel = np.flatnonzero(g == k)
        inner = [a for _, a, _ in atoms[first[k] + 1 : last[k] + 1]]  # the group's cuts
        of[sel] = first[k] + np.searchsorted(inner, sheared[sel], side="right")
    order = np.argsort(of, kind="stable")  # atom by atom, raster order within each
    rows, cols, ink, of = rows[order], cols[order], x[rows[order], cols[order]], of[order]
    start = np.searchsorted(of, np.arange(n + 1)).tolist()  # atom i's pixels: start[i]:start[i + 1]
    top, bottom = (v.tolist() for v in _extent(of, rows, n))  # each atom's ink box
    lefts, rights = (v.tolist() for v in _extent(of, cols, n))
    sy, sx = scale
    for i in range(n):
        groups: set[int] = set()
        lo, hi = math.inf, -math.inf
        t, b, lft, rgt = math.inf, -math.inf, math.inf, -math.inf
        for j in range(i + 1, n + 1):
            k, a_lo, a_hi = atoms[j - 1]
            groups.add(k)
            lo, hi = min(lo, a_lo), max(hi, a_hi)
            t, b = min(t, top[j - 1]), max(b, bottom[j - 1])
            lft, rgt = min(lft, lefts[j - 1]), max(rgt, rights[j - 1])
            whole_marks = first[atoms[i][0]] == i and last[k] == j - 1
            if len(groups) > 1 and not whole_marks:
                break  # part of a mark with part of another: never one digit
            one_mark = len(groups) == 1 and whole_marks
            if not one_mark and ((len(groups) > 1 and j - i > PARAMS["max_span"]) or hi - lo > PARAMS["max_piece"] * line):
                if len(groups) > 1 or last[atoms[i][0]] < j:
                    break
                continue  # a whole mark is always a piece, however wide
            h, w = b - t + 1, rgt - lft + 1
            if not one_mark and h <= PARAMS["mark_height"] * line:
                continue  # a cut-off end of a stroke (a 7's bar): as short as a dash, no digit alone
            if start[i] == start[j]:
                continue  # atoms without ink
            places.append((start[i], start[j], t, lft))
            sizes.append((h, w))
            spans.append((i, j))
            boxes.append((int(lft * sx), int(t * sy), max(1, round(w * sx)), max(1, round(h * sy))))
            aspects.append(w / h)
            cuts.append(int(first[atoms[i][0]] != i) + int(last[k] != j - 1))
            mark = atoms[last[k]][2] - atoms[first[k]][1]  # the (last) mark's width
            broad.append(mark >= PARAMS["broad"] * line)
            narrow.append(mark <= PARAMS["cut_from"] * line)
            marks.append(len(groups))
    pictures = np.empty((len(sizes), pp.FRAME, pp.FRAME), np.float32)
    for group in _batches(sizes):
        some = [sizes[p] for p in group]
        pictures[group] = pp.frame_all(_stack([places[p] for p in group], some, rows, cols, ink), some)
    return Lattice(pictures, spans, boxes, aspects, cuts, broad, narrow, marks, n)


def _batches(sizes: list[tuple[int, int]], most: int = 1 << 20) -> list[list[int]]:
    """The pieces in batches for pp.frame_all, narrowest first, each stack of at most `most` pixels (it
    is as big as its tallest and widest piece): one batch for a line of a few digits."""
    order = sorted(range(len(sizes)), key=lambda p: sizes[p][1])
    out: list[list[int]] = [[]]
    tallest = 0
    for p in order:
        h, w = sizes[p]
        tallest = max(tallest, h)
        if out[-1] and (len(out[-1]) + 1) * (tallest + 2 * pp.MARGIN) * (w + 2 * pp.MARGIN) > most:
            out.append([])
            tallest = h
        out[-1].append(p)
    return out


def _stack(places, sizes, rows, cols, ink) -> np.ndarray:
    """Pieces' ink, each in a border of pp.MARGIN px of 0, in one stack [P, H, W] (pp.frame_all's
    input). places: each piece's pixels, rows[s:e] (cols, ink), and the top left (t, lft) of its box."""
    height, width = (max(v) + 2 * pp.MARGIN for v in zip(*sizes))
    at = rows * width + cols  # a pixel's place in a piece's picture, but for the piece's own offset
    out = np.zeros((len(places), height, width), np.float32)
    offsets = [(p * height + pp.MARGIN - t) * width + pp.MARGIN - lft for p, (_, _, t, lft) in enumerate(places)]
    out.ravel()[np.concatenate([at[s:e] + o for (s, e, _, _), o in zip(places, offsets)])] = \
        np.concatenate([ink[s:e] for s, e, _, _ in places])
    return out


def _read(lat: Lattice, logprobs: np.ndarray, count: tuple[int, int] | None = None) -> Parse | None:
    """The best parse of the line for the model's log-probabilities of every piece ([P, 10]); `count`
    (least, most) holds the number of digits. None: no parse fits `count`. The runner-up is scored
    without the costs of cuts and joins: a cut or a join that the model alone finds as good makes the
    parse doubtful, whichever way the costs tipped it; a cut in a narrow mark only with a lead of
    `narrow_cut_doubt` per end (nearly any digit cut in two reads as two narrow digits)."""
    mean, sd = np.array(PARAMS["aspect_log_mean"]), np.array(PARAMS["aspect_log_sd"])
    prior = -0.5 * ((np.log(np.array(lat.aspects))[:, None] - mean) / sd) ** 2
    doubt = -(np.exp(logprobs) * logprobs).sum(1, keepdims=True)  # entropy: high for what reads as no digit
    evidence = logprobs + PARAMS["aspect_weight"] * prior + PARAMS["piece_cost"] + PARAMS["doubt_cost"] * doubt
    cost = np.where(lat.broad, PARAMS["broad_cut_cost"], PARAMS["cut_cost"])
    cut = 0.5 * cost * np.array(lat.cuts, np.float64)  # each cut has two ends
    join = PARAMS["join_cost"] * (np.array(lat.marks, np.float64) - 1)
    labels = evidence.argmax(1)
    plain = evidence.max(1)
    least, most = count or (1, lat.atoms)
    best = _paths(lat, (plain + cut + join).tolist(), least, most)
    if not best:
        return None
    path = best[0][1]
    own = float(sum(plain[p] for p in path))
    rival = plain + PARAMS["narrow_cut_doubt"] * (np.array(lat.narrow) * np.array(lat.cuts, np.float64))
    others = [s for s, q in _paths(lat, rival.tolist(), least, most) if q != path]
    return Parse(list(path), [int(labels[p]) for p in path], best[0][0], own - others[0] if others else math.inf, own, lat)


def read(lat: Lattice, logprobs: np.ndarray, count: tuple[int, int] | None = None) -> Parse | None:
    """The best parse of the line for the model's log-probabilities of every piece of its readings
    ([P, 10], lat.readings() in order); `count` (least, most) holds the number of digits. None: no
    parse fits `count`. The reading at the usual slant costs `lean_cost`; the other reading's parse,
    if it spells another number, is a runner-up too. One mark alone (`lat.single`) is read as several
    digits only if that beats its best reading as one digit by `split_lead`."""
    parses, at = [], 0
    for k, r in enumerate(lat.readings()):
        parse = _read(r, logprobs[at : at + len(r.pieces)], count)
        if parse is not None:
            parse.first = at
            parse.score += k * PARAMS["lean_cost"]
            parses.append(parse)
        at += len(r.pieces)
    if not parses:
        return None
    best = max(parses, key=lambda q: q.score)  # ties: the upright reading
    for q in parses:
        if q is not best and q.labels != best.labels:
            best.margin = min(best.margin, best.own - q.own)
    if lat.single is not None and len(best.pieces) > 1 and (count or (1, 1))[0] == 1:
        one = read(lat, logprobs, (1, 1))  # one mark alone: several digits only with a lead
        if one is not None and best.score - one.score < PARAMS["split_lead"]:
            one.margin = min(one.margin, one.own - best.own)
            return one
    return best


def _paths(lat: Lattice, score: list[float], least: int, most: int) -> list[tuple[float, tuple[int, ...]]]:
    """The two best paths of pieces across the line with `least` to `most` pieces: (score, pieces).
    States (atom reached, pieces so far) keep their two best paths; ties keep the order found. When the
    count holds nothing back (every path has 1 to `atoms` pieces), a state is the atom alone: the two
    best paths to an atom are among the two best of each of its pieces' starting atoms."""
    held = least > 1 or most < lat.atoms
    table: list[dict[int, list[tuple[float, tuple[int, ...]]]]] = [{} for _ in range(lat.atoms + 1)]
    table[0][0] = [(0.0, ())]
    for p, (i, j) in sorted(enumerate(lat.spans), key=lambda e: e[1][1]):  # by end, stable: as found
        for k, entries in table[i].items():
            if k >= most:
                continue
            bucket = table[j].setdefault(k + 1 if held else 1, [])
            for s, path in entries:
                s += score[p]
                at = len(bucket)
                while at and bucket[at - 1][0] < s:  # after every entry at least as good: a stable sort's order
                    at -= 1
                if at < 2:
                    bucket.insert(at, (s, path + (p,)))
                    del bucket[2:]
    if not held:
        return table[lat.atoms].get(1, [])
    return sorted((e for k in range(least, most + 1) for e in table[lat.atoms].get(k, [])), key=lambda e: -e[0])[:2]


def is_line(digits: int, box: list[int] | None) -> bool:
    """The first look (preprocess.Seen) saw several digits side by side, or one mark at
    least `maybe_touching` times as wide as tall (touching digits, perhaps): read the picture as a line."""
    if digits > 1:
        return True
    if box is None:
        return False
    top, left, bottom, right = box
    return right - left + 1 >= PARAMS["maybe_touching"] * (bottom - top + 1)


def line_of(source, first: np.ndarray, seen: pp.Seen, decoded, cut_every: bool = False) -> Lattice:
    """A picture whose first look (`first`, at preprocess's working size, from `decoded`, the PIL image
    decoded for it; `seen`: the main mark's box, the extent of the ink, the polarity) says it holds a
    line -> its Lattice. It is read again at the size that makes the line about `line_height` px tall,
    only around the ink (a line height of margin; around one mark, `one_mark_margin_px` of the first
    look's pixels): from `decoded` if that serves (pp.serves) for a line LINE_DETAIL px tall, else
    from `source` (a path or bytes) decoded again. `cut_every`: as for `lattice`."""
    tiny = min(1.0, max(first.shape) / pp.MIN_SIDE)  # seen's boxes are in the enlarged tiny picture's pixels
    height = (seen.box[2] - seen.box[0] + 1) * tiny
    target = PARAMS["line_height"]

    def side_for(line: float) -> int:  # the working picture's longer side that makes the line `line` px tall
        return min(max(pp.WORK_SIDE, int(max(first.shape) * line / height)), PARAMS["max_side"])

    side = side_for(target)
    want = pp.longer_side(decoded, side_for(LINE_DETAIL))
    im = decoded if pp.serves(decoded, want) else pp.open_image(source, want)
    factor = pp.work_factor(*im.size, side)
    top, left, bottom, right = (v * tiny for v in seen.extent)
    fy, fx = im.height / first.shape[0], im.width / first.shape[1]  # im's pixels per first-look pixel
    pad = height if seen.digits > 1 else PARAMS["one_mark_margin_px"]  # one mark: what the first look dropped beside it stays out
    crop = (max(0, int((left - pad) * fx)), max(0, int((top - pad) * fy)),
            min(im.width, int((right + 1 + pad) * fx + 1)), min(im.height, int((bottom + 1 + pad) * fy + 1)))
    region = im.crop(crop)
    gray = pp.work_gray(region, factor=factor)
    grow = min(target / (height * fy / (region.height / gray.shape[0])), 4.0)
    if grow > 1.2:  # a small picture: strokes need pixels for cuts between them
        gray = pp.bilinear(gray, round(gray.shape[0] * grow), round(gray.shape[1] * grow))
    x = pp.ink_image(gray, seen.dark)
    pp.edge_lines(x, x > 0)
    s = im.info.get(pp.DECODED_SCALE, 1.0)  # the file's pixels per pixel of im
    lat = lattice(x, (s * region.height / gray.shape[0], s * region.width / gray.shape[1]), cut_every)
    for reading in lat.readings():
        reading.boxes = [(round(x0 + crop[0] * s), round(y0 + crop[1] * s), w, h) for x0, y0, w, h in reading.boxes]
    return lat


def plain(lat: Lattice, piece: int) -> bool:
    """A piece that is one whole mark no wider than a digit: its reading needs no cut and no join."""
    return lat.cuts[piece] == 0 and lat.marks[piece] == 1 and lat.aspects[piece] < PARAMS["wide"]


def count_range(text: str) -> tuple[int, int]:
    """"5" or "2-6" (how many digits a picture holds) -> (least, most); UserError otherwise."""
    from edgemnist import UserError

    least, dash, most = text.strip().partition("-")
    if not (least.isdigit() and (most.isdigit() or not dash)):
        raise UserError(f"--digits {text!r}: give a count N or a range N-M (5, or 2-6)")
    low, high = int(least), int(most or least)
    if not 1 <= low <= high <= PARAMS["max_marks"]:
        raise UserError(f"--digits {text!r}: give counts from 1 to {PARAMS['max_marks']}, the smaller first")
    return low, high
