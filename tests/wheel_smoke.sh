#!/usr/bin/env bash
# The wheel as users get it: build it, install it without -e into a clean venv with the core
# dependencies only (no torch, no onnx, no ray), then run infer on the packaged model, verify and web build
# from a directory with no exported/ models. README.md ("Test") describes it; its test command runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" . >/dev/null
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$work"/dist/edgemnist-*.whl
py="$work/venv/bin/python"
for heavy in torch onnx ray pyarrow; do  # the training side and the Ray engine are extras, never the core's
  if "$py" -c "import $heavy" 2>/dev/null; then
    echo "wheel smoke: the core install pulled in $heavy" >&2; exit 1
  fi
done

cd "$work"  # no exported/ here: infer takes the model inside the package
"$py" - <<'PY'
from PIL import Image, ImageDraw
im = Image.new("L", (120, 120), 255)
ImageDraw.Draw(im).line([(60, 15), (60, 105)], fill=0, width=12)
im.save("one.png")
PY
model="$("$py" -c 'from importlib.resources import files; print(files("edgemnist.pretrained") / "mlp.int8.onnx")')"
"$work/venv/bin/edgemnist" infer one.png --json | "$py" -c 'import json,sys; r=json.loads(sys.stdin.readline()); assert r["label"] == 1, r; print("wheel smoke: infer", r["label"], round(r["confidence"], 3))'
"$work/venv/bin/edgemnist" verify "$model" >/dev/null
"$work/venv/bin/edgemnist" web build site --model "$model" >/dev/null
test -s site/model.onnx && test -s site/index.html
echo "wheel smoke: infer, verify and web build passed from the wheel ($(ls "$work"/dist))"
