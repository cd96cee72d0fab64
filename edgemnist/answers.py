"""Preprocessed pictures -> answers: the model call, calibrated probabilities, the "not sure" rule.  [runtime side]

One place for what `infer`, the Python API and the Ray reader say about a picture, so the three give
the same answer to the same file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from edgemnist import runtime, segment
from edgemnist.preprocess import Picture, PreprocessError, read_picture


def answer(model: runtime.Model, pixels: np.ndarray, digits: list[int], top_k: int = 3,
           logits: np.ndarray | None = None) -> list[dict]:
    """The model's answers for preprocessed pictures [N, 28, 28]: label, confidence, sure, probabilities,
    top_k, the same as a one-digit number and its one digit (and a note when a picture held several
    digits side by side: `digits`, per image). `sure` is False below the model's "not sure" confidence
    and for several digits. The softmax and the ranking run on Python floats: for one picture (the
    API's case) a dozen numpy calls on ten values cost more than the model call's own overhead
    (measured: 20-40 µs of ~100 µs after a preprocessing). `logits`: the model's, already run."""
    not_sure_below = model.not_sure_below
    out = []
    rows = (model.logits(pixels[:, None]) if logits is None else logits).tolist()
    for row, n in zip(rows, digits):
        p = softmax_row(row)
        one = _digit(p, top_k, not_sure_below)
        one["sure"] = one["sure"] and n <= 1
        result = one | {"probabilities": p, "number": str(one["label"]), "digits": [dict(one)]}
        if n > 1:
            result["note"] = f"{n} digits side by side: crop to one"
        out.append(result)
    return out


def _digit(p: list[float], top_k: int, not_sure_below: float, label: int | None = None) -> dict:
    """A digit's answer from its probabilities: `label` (the most probable unless given), its
    confidence, sure, and the top_k."""
    top = sorted(range(len(p)), key=p.__getitem__, reverse=True)[:top_k]  # stable: ties keep digit order
    label = top[0] if label is None else label
    return {"label": label, "confidence": p[label], "sure": _sure(p, label, not_sure_below), "top_k": [[d, p[d]] for d in top]}


def _sure(p: list[float], label: int, not_sure_below: float) -> bool:
    """The digit's probability is at least the "not sure" confidence and the model's doubt at most
    `max_doubt`: two touching digits taken for one spread the probability over several digits, a
    digit read with a rival keeps it on that rival."""
    return p[label] >= not_sure_below and doubt(p) <= segment.PARAMS["max_doubt"]


def doubt(p: list[float]) -> float:
    """The model's doubt about a picture: the entropy of its probabilities, in nats (0 to ln 10)."""
    h = 0.0
    for v in p:  # in order, as the page sums it
        if v > 0:
            h -= v * math.log(v)
    return h


def read_line(model: runtime.Model, lat: segment.Lattice, logits: np.ndarray, top_k: int = 3,
              count: tuple[int, int] | None = None) -> dict:
    """A line's answer from the model's logits for its pieces: "number", "digits" (label, confidence,
    sure, top_k, box each), the number's confidence (the product of its digits') and `sure` (every
    digit sure, each a whole mark of a digit's width, the product at least `number_sure` for several digits,
    and no parse of other pieces close); a number of
    one digit also has today's label, probabilities and top_k. {"error"} when no parse has `count` digits."""
    logp = np.log(np.maximum(runtime.softmax(logits.astype(np.float64)), 1e-300))  # every piece's at once: dozens of pieces
    parse = segment.read(lat, logp, count)
    if parse is None:
        least, most = count
        return {"error": f"no reading with {least if least == most else f'{least}-{most}'} digits"}
    not_sure_below = model.not_sure_below
    digits = []
    lat = parse.reading
    probs = {piece: softmax_row(logits[parse.first + piece].tolist()) for piece in parse.pieces}  # what is reported: as for one digit
    for piece, label in zip(parse.pieces, parse.labels):
        p = probs[piece]
        one = _digit(p, top_k, not_sure_below, label) | {"box": list(lat.boxes[piece])}
        one["sure"] = one["sure"] and segment.plain(lat, piece)
        digits.append(one)
    confidence = math.prod(d["confidence"] for d in digits)
    least = not_sure_below if len(digits) == 1 else max(not_sure_below, segment.PARAMS["number_sure"])
    result = {"label": digits[0]["label"] if len(digits) == 1 else None, "confidence": confidence,
              "sure": all(d["sure"] for d in digits) and confidence >= least and parse.margin >= segment.PARAMS["margin"],
              "number": "".join(str(d["label"]) for d in digits), "digits": digits}
    if len(digits) == 1:
        result |= {"probabilities": probs[parse.pieces[0]], "top_k": digits[0]["top_k"]}
    return result | {"pixels": lat.pieces[parse.pieces], "margin": parse.margin}


def softmax_row(logits: list[float]) -> list[float]:
    """runtime.softmax of one row, in float64, on Python floats."""
    top = max(logits)
    e = [math.exp(v - top) for v in logits]
    total = sum(e)
    return [v / total for v in e]


def for_prepared(model: runtime.Model, names: Sequence[str], prepared: Sequence[Picture | None], top_k: int = 3,
                 count: tuple[int, int] | None = None) -> Iterator[dict]:
    """`preprocess.prepare`'s Pictures for one chunk -> one result per picture, in order, the model run
    once on the chunk (single digits and every line's pieces in one batch), and once more on the few
    narrow marks read again as lines: {"path", "label",
    "confidence", "sure", "number", "digits", ...} or {"path", "error"}; items skipped as no image
    (None) get none. "pixels" carries what the model saw (a line: each digit's 28x28)."""
    good = [j for j, p in enumerate(prepared) if p is not None and p.error is None]
    answers = _answers(model, {j: prepared[j] for j in good}, top_k, count)
    again = {}
    for j in good:
        if reads_again(prepared[j], answers[j]):
            try:
                again[j] = read_picture(prepared[j].again, model.polarity, count, as_line=True)
            except PreprocessError:  # read once already: keep that answer
                continue
    answers |= _answers(model, again, top_k, count)
    for j, (name, p) in enumerate(zip(names, prepared)):
        if p is None:
            continue
        yield {"path": name, "error": p.error} if p.error is not None else {"path": name} | answers[j]


def reads_again(picture: Picture, answer: dict) -> bool:
    """One narrow mark in which the model finds no digit (its doubt near the ten digits' uniform
    spread): perhaps digits pressed so close together that they make one narrow mark (an 18, a 71).
    It is read again as a line, with cuts however narrow, and that line keeps the one-digit answer
    unless several digits read clearly better (segment.read)."""
    return picture.again is not None and doubt(answer["probabilities"]) > segment.PARAMS["no_digit_doubt"]


def _answers(model: runtime.Model, pictures: dict[int, Picture], top_k: int, count: tuple[int, int] | None) -> dict[int, dict]:
    """Readable Pictures by their place -> their answers by place, the model run once on all of them."""
    parts = [p.pixels[None] if p.line is None else
             np.concatenate(_shifted(p.line) + ([] if p.line.single is None else [p.line.single[None]]))
             for p in pictures.values()]
    if not parts:
        return {}
    logits = model.logits(np.concatenate(parts)[:, None])
    answers, at = {}, 0
    for (j, picture), part in zip(pictures.items(), parts):
        answers[j] = _read_one(model, picture, logits[at : at + len(part)], top_k, count)
        at += len(part)
    return answers


SHIFTS = [tuple(v) for v in segment.PARAMS["piece_shifts"]]


def _moved(lat: segment.Lattice) -> np.ndarray:
    """The places, among every reading's pieces in order, of those in a mark at least `broad` lines wide:
    cut from touching digits, framed less surely than a whole digit, they are read at each of SHIFTS."""
    return np.flatnonzero(np.concatenate([np.array(r.broad, bool) for r in lat.readings()]))


def _shifted(lat: segment.Lattice) -> list[np.ndarray]:
    """A line's part of the model's batch: every reading's pieces as framed, then the `_moved` ones
    moved by each of SHIFTS (rows, columns), paper filling in (the frame's corner: 0 in MNIST form,
    1 in the other polarity)."""
    pieces = np.concatenate([r.pieces for r in lat.readings()])
    out = [pieces]
    pieces = pieces[_moved(lat)]
    h, w = pieces.shape[1:]
    for dy, dx in SHIFTS:
        moved = np.empty_like(pieces)
        moved[...] = pieces[:, :1, :1]
        moved[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = \
            pieces[:, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
        out.append(moved)
    return out


def _pooled(lat: segment.Lattice, rows: np.ndarray) -> np.ndarray:
    """The model's logits for a line's `_shifted` part (and whatever follows) -> one row per piece: its
    log-probabilities, for a moved piece their mean over its framings (their normalised geometric mean)."""
    pieces, moved = sum(len(r.pieces) for r in lat.readings()), _moved(lat)
    used = pieces + len(moved) * len(SHIFTS)
    z = rows[:used].astype(np.float64)
    z -= z.max(1, keepdims=True)
    z -= np.log(np.exp(z).sum(1, keepdims=True))
    out = z[:pieces]
    if len(moved):
        out[moved] = (out[moved] + z[pieces:].reshape(len(SHIFTS), len(moved), -1).sum(0)) / (1 + len(SHIFTS))
    return out


def _read_one(model: runtime.Model, picture: Picture, rows: np.ndarray, top_k: int, count: tuple[int, int] | None) -> dict:
    """One picture's answer from the logits of its part of the batch."""
    if picture.line is None:
        one = answer(model, picture.pixels[None], [picture.digits], top_k, rows)[0] | {"pixels": picture.pixels}
        if picture.box is not None:
            one["digits"][0]["box"] = picture.box
        return one
    lat = picture.line
    read = read_line(model, lat, _pooled(lat, rows), top_k, count)
    margin = read.pop("margin", math.inf)
    if lat.single is None or len(read.get("digits", ())) != 1:
        return read
    # one mark read as one digit: the one-digit answer. Sure for a mark no wider than a digit (the line's
    # reading of it is sure: a plain piece) only if it beats every reading as several digits before their
    # cost per piece (a 1 written against a digit reads as that digit, and as two digits almost as well);
    # a wider one only if no reading as several comes close
    box, plain = read["digits"][0]["box"], read["digits"][0]["sure"]
    one = answer(model, lat.single[None], [picture.digits], top_k, rows[-1:])[0] | {"pixels": lat.single}
    one["digits"][0]["box"] = box
    one["sure"] = one["digits"][0]["sure"] = one["sure"] and margin >= (-segment.PARAMS["piece_cost"] if plain else segment.PARAMS["margin"])
    return one
