"""Where a photo's time goes in ``parsing-predict``'s default pipeline, stage by stage, against one network pass.

On CCP validation photos (original size), in one process, batches of ``--batch-size`` as the command runs them:
read + decode, fit into the network box, the network (batched), widen, decoding + CRF, refocus, specks,
confidence, labels to full size (``Parser.timings``), then writing the mask PNG, rendering + writing the overlay
JPEG, and the summary record. Against: one eager batch-1 forward pass per photo (the yardstick of issue 28), the
network's GFLOP per photo (``torch.utils.flop_counter``) and GFLOP/s, and this machine's sgemm rate (2048² fp32
matmul) measured in the same run. Loader workers, output writing and the network's overlap with the steps after
it are not modelled: the stages are serial here.
Writes ``bench/results/stages.{json,md}``.

    python bench/stages.py                 # 40 photos
    python bench/stages.py --photos 10 --batch-size 1
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
from common import ROOT, machine, shown, validation_photos, write_results
import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from parsing import Parser
from parsing.data.io import read_photo, write_mask_png
from parsing.inference.photo import MAX_PIXELS, fitted
from parsing.labels import flat_palette
from parsing.model import SHIPPED, Backend, TorchBackend
from parsing.model.load import BACKENDS, PRECISIONS
from parsing.tuning import tune_process


def sgemm_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def forward_seconds(backend: Backend, xs: list[torch.Tensor], repeats: int = 2) -> float:
    """Seconds per photo of one batch-1 forward pass on ``backend`` (the network only), after a warm-up."""
    with torch.inference_mode():
        backend.infer(xs[0][None])
        start = time.perf_counter()
        for _ in range(repeats):
            for x in xs:
                backend.infer(x[None])
    return (time.perf_counter() - start) / (repeats * len(xs))


def gflop_per_photo(backend: Backend, x: torch.Tensor) -> float:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        backend.infer(x[None])
    return counter.get_total_flops() / 1e9


def run(args: argparse.Namespace) -> dict:
    photos = [p for p, _ in validation_photos(args.data_root, args.photos)]
    parser = Parser.load(args.checkpoint, device="cpu", backend=args.backend, precision=args.precision)
    parser(photos[0])  # warm-up
    parser.overlap = False  # one stage at a time: the network of the next photo would run beside this one's steps
    torch_net = TorchBackend(parser.model)  # the yardstick is torch's eager pass
    yard = [fitted(*read_photo(path, MAX_PIXELS), parser.size, str(path)).x for path in photos[: args.forward_photos]]
    plain = forward_seconds(torch_net, yard)  # with glibc's default allocator settings
    tune_process()  # as parsing-predict does once its model is loaded; the yardstick too is measured under it
    before = forward_seconds(torch_net, yard)  # and again after the stages: the machine drifts
    parser.timings = {}
    own = dict.fromkeys(("read + decode", "fit"), 0.0)
    writes = dict.fromkeys(("write mask PNG", "overlay: render + write JPEG", "summary record"), 0.0)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for first in range(0, len(photos), args.batch_size):
            prepared = []
            for path in photos[first : first + args.batch_size]:
                t0 = time.perf_counter()
                image, size = read_photo(path, MAX_PIXELS)
                t1 = time.perf_counter()
                prepared.append(fitted(image, size, parser.size, str(path)))
                own["read + decode"] += t1 - t0
                own["fit"] += time.perf_counter() - t1
            for parse in parser.parse_stream((photo, None) for photo in prepared):
                stem = Path(parse.source).stem
                t0 = time.perf_counter()
                write_mask_png(Path(tmp) / f"{stem}.png", parse.labels, flat_palette(parse.palette))
                t1 = time.perf_counter()
                parse.overlay().save(Path(tmp) / f"{stem}.jpg", format="JPEG", quality=90)
                t2 = time.perf_counter()
                json.dumps(parse.to_dict())
                writes["write mask PNG"] += t1 - t0
                writes["overlay: render + write JPEG"] += t2 - t1
                writes["summary record"] += time.perf_counter() - t2
    total = time.perf_counter() - start
    n = len(photos)
    after = forward_seconds(torch_net, yard)
    forward = (before + after) / 2
    gflop = gflop_per_photo(torch_net, yard[0])
    stages = {**own, **parser.timings, **writes}
    return {
        "meta": {
            "checkpoint": shown(args.checkpoint),
            "photos": n,
            "batch_size": args.batch_size,
            "network_input": list(parser.size),
            "network_batch": parser.network_batch,
            "backend": " ".join([parser.backend.name, getattr(parser.backend, "precision", "")]).strip(),
            **machine(),
        },
        "stages_s_per_photo": {k: round(v / n, 4) for k, v in stages.items()},
        "total_s_per_photo": round(total / n, 4),
        "forward_s_per_photo": round(forward, 4),
        "forward_s_before_after": [round(before, 4), round(after, 4)],
        "forward_s_default_allocator": round(plain, 4),
        "gflop_per_photo": round(gflop, 2),
        "network_gflops": round(gflop / forward, 1),
        "sgemm_gflops": round(sgemm_gflops(), 1),
    }


def spread(result: dict) -> str:
    """ " (the mean of 0.190 s before and 0.200 s after the stages)" when both were measured."""
    if "forward_s_before_after" not in result:
        return ""
    before, after = result["forward_s_before_after"]
    plain = result.get("forward_s_default_allocator")
    tuned = f"; under the commands' allocator settings (`parsing.tuning`), {plain:.3f} s under glibc's" if plain else ""
    return f" (the mean of {before:.3f} s before and {after:.3f} s after the stages{tuned})"


def markdown(result: dict) -> str:
    meta, forward = result["meta"], result["forward_s_per_photo"]
    lines = [
        "# Where a photo's time goes — the default `parsing-predict` pipeline, stage by stage",
        "",
        f"{meta['photos']} CCP validation photos at their original size, `{meta['checkpoint']}` at "
        f"{meta['network_input'][0]}×{meta['network_input'][1]}, batches of {meta['batch_size']} (the network takes "
        f"them {meta.get('network_batch') or 'all'} at a time, on {meta.get('backend', 'torch')}), one process, "
        f"stages serial ({meta['cpu']}, torch {meta['torch']}). `python bench/stages.py`.",
        "",
        "| stage | s / photo | × one forward pass |",
        "|---|---|---|",
    ]
    for stage, seconds in result["stages_s_per_photo"].items():
        lines.append(f"| {stage} | {seconds:.3f} | {seconds / forward:.2f} |")
    total = result["total_s_per_photo"]
    lines += [
        f"| **all** | **{total:.3f}** | **{total / forward:.2f}** |",
        "",
        f"One eager batch-1 forward pass: {forward:.3f} s per photo{spread(result)}; the network costs "
        f"{result['gflop_per_photo']:.1f} GFLOP per photo: {result['network_gflops']:.0f} GFLOP/s, "
        f"{100 * result['network_gflops'] / result['sgemm_gflops']:.0f} % of this machine's sgemm rate "
        f"({result['sgemm_gflops']:.0f} GFLOP/s, 2048² fp32, measured in the same run).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED)
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "ccp"))
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--forward-photos", type=int, default=10, help="photos the forward-pass yardstick uses")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend", choices=("auto", *BACKENDS), default="auto")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="auto, fp32, mixed, bf16 or int8")
    parser.add_argument("--name", default="stages", help="file stem of the results")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    write_results(args.out, args.name, run(args), markdown)


if __name__ == "__main__":
    main()
