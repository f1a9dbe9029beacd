"""Start-up: whole fresh processes, each timed against ``python -c "import torch"`` run beside it in turn.

The yardstick and each command alternate (yardstick, command, yardstick, command …) and the ratio is taken pair by
pair, so a machine that drifts moves both. Commands: ``Parser.load()`` + one parse (the shipped model, default
options), ``parsing --help``, ``parsing-predict --help`` and a 1-photo ``parsing-predict`` run. Writes
``bench/results/startup.{json,md}``.

    python bench/startup.py              # 5 pairs each
    python bench/startup.py --runs 3
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
from common import ROOT, machine, validation_photos, write_results
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

YARDSTICK = [sys.executable, "-c", "import torch"]


def commands(photo: Path, out: Path) -> dict[str, list[str]]:
    bin_dir = Path(sys.executable).parent
    parse = f"from parsing import Parser; Parser.load()({str(photo)!r})"
    return {
        "Parser.load() + one parse": [sys.executable, "-c", parse],
        "parsing --help": [str(bin_dir / "parsing"), "--help"],
        "parsing-predict --help": [str(bin_dir / "parsing-predict"), "--help"],
        "parsing-predict, 1 photo": [
            str(bin_dir / "parsing-predict"),
            str(photo),
            "-o",
            str(out),
            "--overwrite",
            "--no-progress",
            "--workers",
            "0",
        ],  # fmt: skip
    }


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-1000:]}")
    return elapsed


def run(args: argparse.Namespace) -> dict:
    photo = validation_photos(args.data_root, 1)[0][0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, command in commands(Path(photo), Path(tmp) / "out").items():
            seconds(command)  # warm-up: the file cache, the ONNX export cache
            pairs = [(seconds(YARDSTICK), seconds(command)) for _ in range(args.runs)]
            ratios = [b / a for a, b in pairs]
            rows.append(
                {
                    "command": name,
                    "seconds": round(statistics.median(b for _, b in pairs), 3),
                    "import_torch_seconds": round(statistics.median(a for a, _ in pairs), 3),
                    "ratio": round(statistics.median(ratios), 2),
                    "ratio_min": round(min(ratios), 2),
                    "ratio_max": round(max(ratios), 2),
                }
            )
            print(rows[-1], flush=True)
    return {"meta": {"runs": args.runs, "photo": Path(photo).name, **machine()}, "rows": rows}


HEADER = """# Start-up

Fresh processes, median of {runs} pairs, each against `python -c "import torch"` run just before it ({cpu}, torch
{torch}; `python bench/startup.py`).

| command | seconds | `import torch` | × `import torch` (min–max) |
|---|---:|---:|---:|
"""


def markdown(result: dict) -> str:
    rows = (
        f"| {row['command']} | {row['seconds']:.2f} | {row['import_torch_seconds']:.2f} | "
        f"{row['ratio']:.2f} ({row['ratio_min']:.2f}–{row['ratio_max']:.2f}) |\n"
        for row in result["rows"]
    )
    return HEADER.format(**result["meta"]) + "".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "ccp"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    write_results(args.out, "startup", run(args), markdown)


if __name__ == "__main__":
    main()
