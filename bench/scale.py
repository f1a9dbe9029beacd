"""Scale-out on one machine: photos/s of ``parsing-predict`` as one process, on a local Ray instance with 1 and 2
actors, and as 2 shards run at once — each the whole command, start-up included (Ray's own start shows).

On CCP validation photos at their original size, default options, each variant into a fresh output folder.
Writes ``bench/results/scale.{json,md}``.

    python bench/scale.py                 # 40 photos
    python bench/scale.py --photos 10
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
from common import ROOT, machine, validation_photos, write_results
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "one process": [[]],
    "Ray, 1 actor": [["--ray", "local", "--ray-actors", "1"]],
    "Ray, 2 actors": [["--ray", "local", "--ray-actors", "2"]],
    "2 shards at once": [["--shard", "0/2", "--workers", "1"], ["--shard", "1/2", "--workers", "1"]],
}


def run(photos: list[Path], out: Path, commands: list[list[str]]) -> float:
    """Seconds from starting the processes (one per entry of ``commands``) until the last one exits."""
    base = [sys.executable, "-m", "parsing.commands.predict", *map(str, photos), "-o", str(out), "--no-progress"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    start = time.perf_counter()
    processes = [subprocess.Popen([*base, *extra], stderr=subprocess.PIPE, text=True, env=env) for extra in commands]
    for p in processes:
        _, err = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise SystemExit(f"parsing-predict {' '.join(commands[processes.index(p)])} failed:\n{err[-2000:]}")
    seconds = time.perf_counter() - start
    lines = (out / "summary.jsonl").read_text().splitlines()
    if len(lines) != len(photos):
        raise SystemExit(f"{len(lines)} summary lines for {len(photos)} photos")
    return seconds


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# Scale-out on one machine — `parsing-predict` as one process, on Ray, in shards",
        "",
        f"{meta['photos']} CCP validation photos (original size), default options; {meta['cpu']}, "
        f"{meta['cores']} cores. Each row is the whole command from start to exit, start-up included "
        "(model loading; for Ray also starting the instance and its actors). `python bench/scale.py`.",
        "",
        "| variant | options | seconds | photos/s | vs one process |",
        "|---|---|---|---|---|",
    ]
    first = result["rows"][0]["seconds"]
    for r in result["rows"]:
        options = " + ".join(" ".join(c) or "(defaults)" for c in r["commands"])
        lines.append(
            f"| {r['variant']} | `{options}` | {r['seconds']:.1f} | {r['photos_per_s']:.2f} | "
            f"{first / r['seconds']:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "ccp"))
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    photos = [p for p, _ in validation_photos(args.data_root, args.photos)]
    rows = []
    for name in args.variants:
        with tempfile.TemporaryDirectory() as tmp:
            seconds = run(photos, Path(tmp), VARIANTS[name])
        rows.append(
            {
                "variant": name,
                "commands": VARIANTS[name],
                "seconds": round(seconds, 1),
                "photos_per_s": round(len(photos) / seconds, 3),
            }
        )
        print(rows[-1], flush=True)
    meta = {"photos": len(photos), "cores": os.cpu_count(), **machine()}
    write_results(args.out, "scale", {"meta": meta, "rows": rows}, markdown)


if __name__ == "__main__":
    main()
