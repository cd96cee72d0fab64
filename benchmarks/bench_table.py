"""The speed table of docs/benchmarks.md: one `edgemnist bench` run, every backend side by side.

    python -m benchmarks.bench_table [--duration 6] [--json out.json]

Runs `edgemnist bench --json` (reference models in exported/, PyTorch eager on exported/mlp.pt) and
prints a Markdown table of medians and ratios from that single run, plus the roofline note.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from edgemnist.cpu import describe

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", default="6")
    parser.add_argument("--batch-sizes", default="1,64,1024")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cmd = ["edgemnist", "bench", "--duration", args.duration, "--batch-sizes", args.batch_sizes, "--json"]
    proc = subprocess.run([sys.executable, "-m", "edgemnist", *cmd[1:]], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr)
    r = json.loads(proc.stdout)
    if args.json:
        args.json.write_text(json.dumps(r, indent=1))
    print(f"`{' '.join(cmd)}` — {describe(r['cpu'])}; threads tried {r['threads']}\n")
    print("| backend | batch | threads | p50 µs | p90 µs | p99 µs | images/s | vs PyTorch eager | int8 vs fp32 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    def ratio(row: dict, key: str) -> str:
        return f"{row[key]:.2f}×" if key in row else ""

    for row in r["rows"]:
        print(f"| {row['backend']} | {row['batch_size']} | {row['threads']} | {row['p50_us']:.1f} | {row['p90_us']:.1f} | {row['p99_us']:.1f} | "
              f"{row['images_per_s']:,.0f} | {ratio(row, 'vs_torch')} | {ratio(row, 'int8_vs_fp32')} |")
    c = r["ceiling"]
    fp32 = next(x for x in r["rows"] if x["backend"] == "ort-fp32" and x["batch_size"] == c["batch_size"])
    print(f"\nRoofline: {r['macs_per_image']:,} multiply-adds per image. The ceiling — the same shapes as a plain "
          f"MatMul chain through the same engine, batch {c['batch_size']} — runs {c['images_per_s']:,.0f} images/s "
          f"({c['gflops']:.0f} GFLOP/s); ONNX fp32 reaches {fp32['images_per_s']:,.0f} images/s = "
          f"{fp32['vs_ceiling']:.2f}× the ceiling.")
    for note in r["notes"]:
        print(f"\nNote: {note}")


if __name__ == "__main__":
    main()
