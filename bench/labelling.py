"""Labelling benchmark: how many clicks fix a parse, by the standard interactive-segmentation protocol.

Each validation photo (and, with ``--framings``, its re-framed versions from ``bench/robustness.py``) is parsed by
the shipped model (``editable=True``); then, click after click, a simulated user clicks the interior of the
largest wrong region (the pixel farthest from its edge) with its true label. After each click: foreground accuracy
(the share of the person's pixels, mask ≠ null, with the right label). Reported per tool:

- ``click``: ``Parse.click`` (segment + the network's ranking + superpixels, ``parsing.outputs.edit``);
- ``superpixel``: the plain tool — the clicked SLIC superpixel (400 segments) cut along the parse's edges.

NoC@80 / NoC@85: clicks until the person is 80 / 85 % right (``--max-clicks`` when never; 0 when it starts
there); accuracy after 0, 5 and 10 clicks; seconds per ``Parse.click`` (the superpixels made before the first click,
as the service does right after a parse, timed apart). Writes ``bench/results/labelling.{json,md}``.

    python bench/labelling.py                          # 90 validation photos, original framing
    python bench/labelling.py --limit 10 --framings original zoom-in
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
from common import load_parser, machine, shown, validation_photos, write_results
import argparse
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from parsing.data.datasets import read_raw_mask
from parsing.data.io import read_image
from parsing.outputs.edit import EditBase, resize_nearest
from parsing.outputs.parse import Parse

TOOLS = ("click", "superpixel")
AT = (0, 5, 10)


def next_click(labels: np.ndarray, truth: np.ndarray) -> tuple[int, int, int] | None:
    """The protocol's click: (x, y, true label) at the interior of the largest wrong region, or None."""
    wrong = labels != truth
    if not wrong.any():
        return None
    pieces, n = ndimage.label(wrong, structure=np.ones((3, 3), bool))
    largest = int(np.argmax(np.bincount(pieces.ravel())[1:])) + 1
    inside = np.pad(pieces == largest, 1)
    depth = ndimage.distance_transform_edt(inside)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(x), int(y), int(truth[y, x])


def plain_click(parse: Parse, x: int, y: int, label: int, base: EditBase) -> Parse:
    """The plain tool: the superpixel under the click, cut along the parse's edges, takes the label."""
    h, w = parse.labels.shape
    gh, gw = base.shape
    gy, gx = min(int(y * gh / h), gh - 1), min(int(x * gw / w), gw - 1)
    grid = resize_nearest(parse.work_labels, base.shape)
    spot = (base.superpixels == base.superpixels[gy, gx]) & (grid == grid[gy, gx])
    full = resize_nearest(spot.view(np.uint8), parse.labels.shape).view(bool) & (parse.labels == grid[gy, gx])
    if not full[y, x]:
        full[y, x] = True
    return parse.paint(full, label)


def fg_accuracy(labels: np.ndarray, truth: np.ndarray) -> float:
    person = truth != 0
    return float((labels[person] == truth[person]).mean()) if person.any() else 1.0


def session(parse: Parse, truth: np.ndarray, tool: str, max_clicks: int) -> tuple[list[float], list[float], float]:
    """One photo's clicks → foreground accuracy after 0..max_clicks clicks, each click's seconds, and the seconds
    of the superpixels made before the first click (the service makes them right after the parse)."""
    base = EditBase.of(parse.image, None)
    start = time.perf_counter()
    if tool == "superpixel":
        from skimage.segmentation import slic

        base._superpixels = slic(base.image, n_segments=400, compactness=10, start_label=0)
    else:
        parse.edit.prepare()
    prepare = time.perf_counter() - start
    accuracy, seconds = [fg_accuracy(parse.labels, truth)], []
    for _ in range(max_clicks):
        click = next_click(parse.labels, truth)
        if click is None:
            accuracy.append(accuracy[-1])
            continue
        start = time.perf_counter()
        parse = parse.click(*click) if tool == "click" else plain_click(parse, *click, base)
        seconds.append(time.perf_counter() - start)
        accuracy.append(fg_accuracy(parse.labels, truth))
    return accuracy, seconds, prepare


def noc(accuracy: list[float], target: float, max_clicks: int) -> int:
    return next((i for i, a in enumerate(accuracy) if a >= target), max_clicks)


def run(args: argparse.Namespace) -> dict:
    from robustness import FRAMINGS  # the same seeded re-framings

    parser = load_parser(args.checkpoint, editable=True)
    items = validation_photos(args.data_root, args.limit)
    out: dict = {"meta": {**machine(), "photos": len(items), "max_clicks": args.max_clicks}, "framings": {}}
    for framing in args.framings:
        rows = {tool: {"acc": [], "noc80": [], "noc85": [], "sec": [], "prepare": []} for tool in TOOLS}
        for i, (photo, mask) in enumerate(items):
            image, truth = FRAMINGS[framing](read_image(photo), read_raw_mask(mask), np.random.default_rng([0, i]))
            parse = parser(np.ascontiguousarray(image))
            for tool in TOOLS:
                acc, sec, prepare = session(parse, truth, tool, args.max_clicks)
                row = rows[tool]
                row["prepare"].append(prepare)
                row["acc"].append(acc)
                row["noc80"].append(noc(acc, 0.80, args.max_clicks))
                row["noc85"].append(noc(acc, 0.85, args.max_clicks))
                row["sec"].extend(sec)
        out["framings"][framing] = {
            tool: {
                "noc80": float(np.mean(r["noc80"])),
                "noc85": float(np.mean(r["noc85"])),
                **{f"acc@{k}": float(np.mean([a[k] for a in r["acc"]])) for k in AT if k <= args.max_clicks},
                "seconds_per_click": float(np.mean(r["sec"])) if r["sec"] else None,
                "seconds_p95": float(np.percentile(r["sec"], 95)) if r["sec"] else None,
                "prepare_seconds": float(np.mean(r["prepare"])),
                "curve": np.mean(r["acc"], axis=0).round(4).tolist(),
            }
            for tool, r in rows.items()
        }
        print(framing, {t: {k: v for k, v in d.items() if k != "curve"} for t, d in out["framings"][framing].items()})
    return out


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# Labelling: clicks to fix a parse",
        "",
        f"{meta['photos']} CCP validation photos, shipped model, at most {meta['max_clicks']} clicks; CPU: "
        f"{meta.get('cpu', '?')}. `python bench/labelling.py`",
        "",
        "| framing | tool | NoC@80 | NoC@85 | fg acc @0 | @5 | @10 | s / click (p95) | superpixels s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for framing, tools in result["framings"].items():
        for tool, r in tools.items():
            sec = "–" if r["seconds_per_click"] is None else f"{r['seconds_per_click']:.3f} ({r['seconds_p95']:.3f})"
            acc = " | ".join("–" if f"acc@{k}" not in r else f"{r[f'acc@{k}']:.3f}" for k in AT)
            cells = f"| {framing} | {tool} | {r['noc80']:.1f} | {r['noc85']:.1f} | {acc} | {sec} "
            lines.append(cells + f"| {r['prepare_seconds']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    from robustness import FRAMINGS

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", default="../shared/data/ccp")
    ap.add_argument("--checkpoint", default="shipped")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--max-clicks", type=int, default=20)
    ap.add_argument("--framings", nargs="+", default=["original"], choices=list(FRAMINGS))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    result = run(args)
    write_results(args.out, "labelling", result, markdown)
    print(f"wrote {shown(args.out / 'labelling.md')}")


if __name__ == "__main__":
    main()
