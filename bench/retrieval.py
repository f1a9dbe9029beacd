"""Retrieval benchmark: a catalogue of CCP photos searched by outfit, garment and colour, against two baselines.

Gallery: every pixel-annotated CCP photo here (904), parsed once by the shipped model with ``embed=True`` and added
to a ``Catalogue``. Queries: the 90 validation photos (each excluded from its own results). Measured:

- **R@1, re-framed copies**: each query mirrored, cropped to 80 %, darkened and saved as JPEG 60 → is its
  original the first hit?
- **outfit NDCG@10**: relevance = Jaccard of the annotated garment sets of the query and the hit;
- **garment P@10**: a search for the query's main garment (its largest annotated one) → the share of the 10 hits
  whose photo truly holds it; **colour@10**: the share whose annotated region of it has a mean colour within
  CIEDE2000 20 of the query's.

Baselines: a global colour histogram of the photo (8×8×8 RGB bins, sqrt, cosine; no parse), and the predicted
garment sets (Jaccard of the shipped model's outfits; garment searches rank the photos predicted to hold it by the
predicted region's colour). Also: catalogue build photos/s, query p50 / p95 over 1k, 100k and 1M synthetic
garment vectors (and memory), bytes per photo on disk. Writes ``bench/results/retrieval.{json,md}``.

    python bench/retrieval.py
    python bench/retrieval.py --gallery 120 --queries 20      # a quick look
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
from common import ROOT, machine, validation_photos, write_results
import argparse
import io
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from parsing import Parser
from parsing.data.datamodule import ParsingDataModule
from parsing.data.datasets import read_raw_mask
from parsing.data.io import read_image
from parsing.labels import NON_GARMENTS
from parsing.search import Catalogue
from parsing.search.colours import rgb_to_lab
from parsing.search.vectors import VectorIndex

K = 10


def reframed(image: np.ndarray) -> np.ndarray:
    """Mirrored, the central 80 % cropped, 30 % darker, through JPEG quality 60."""
    h, w = image.shape[:2]
    crop = image[int(0.1 * h) : int(0.9 * h), int(0.1 * w) : int(0.9 * w), :][:, ::-1]
    dark = (crop.astype(np.float32) * 0.7).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(dark).save(buffer, format="JPEG", quality=60)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def truth_of(image: np.ndarray, mask: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Annotated garment → the mean CIELAB of its region."""
    lab = rgb_to_lab(image)
    found = [i for i in np.unique(mask) if i < len(names) and names[i] not in NON_GARMENTS]
    return {names[i]: lab[mask == i].mean(0) for i in found}


def histogram(image: np.ndarray) -> np.ndarray:
    hist = cv2.calcHist([image], [0, 1, 2], None, [8, 8, 8], [0, 256] * 3).ravel()
    hist = np.sqrt(hist / hist.sum())
    return hist / np.linalg.norm(hist)


def ciede2000(a: np.ndarray, b: np.ndarray) -> float:
    from parsing.outputs.describe import _colour

    return float(_colour().delta_E(np.asarray(a, float), np.asarray(b, float), method="CIE 2000"))


def ndcg(relevances: list[float], ideal: list[float]) -> float:
    gains = lambda r: sum(x / np.log2(i + 2) for i, x in enumerate(r))  # noqa: E731
    best = gains(sorted(ideal, reverse=True)[:K])
    return gains(relevances[:K]) / best if best > 0 else 0.0


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def scores_for(ranked: list[str], query: str, main: str, gallery: dict, truth: dict) -> dict[str, float]:
    """One query's garment P@10 and colour@10 for a ranking of gallery photos (the query itself left out)."""
    hits = [p for p in ranked if p != query][:K]
    holds = [main in truth[p] for p in hits]
    agree = [main in truth[p] and ciede2000(truth[p][main], truth[query][main]) < 20 for p in hits]
    return {"p@10": float(np.mean(holds)) if hits else 0.0, "colour@10": float(np.mean(agree)) if hits else 0.0}


def speed(dim: int, sizes: list[int], queries: int = 200) -> list[dict]:
    """Query p50 / p95 (ms) over ``sizes`` synthetic unit vectors, the index's kind and memory."""
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        vectors = rng.standard_normal((n, dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        index = VectorIndex(dim)
        index.add(np.arange(n), vectors)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            index.save(Path(tmp) / "v.faiss")  # past 100k: rebuilt as IVF here
            build = time.perf_counter() - start
            size = (Path(tmp) / "v.faiss").stat().st_size
        times = []
        for q in vectors[rng.choice(n, queries)] + 0.05 * rng.standard_normal((queries, dim), dtype=np.float32):
            start = time.perf_counter()
            index.search(q, K)
            times.append(time.perf_counter() - start)
        rows.append({"vectors": n, "kind": index.kind, "p50_ms": 1000 * float(np.median(times)),
                     "p95_ms": 1000 * float(np.percentile(times, 95)), "index_mb": size / 2**20,
                     "save_s": build})  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def embed_cost(photos: list, repeats: int = 2) -> dict:
    """Seconds per photo parsed with and without the search vectors, the same torch network, interleaved."""
    plain = Parser.load(device="cpu", backend="torch")
    embed = Parser.load(device="cpu", embed=True)
    images = [read_image(p) for p, _ in photos]
    plain(images[0]), embed(images[0])  # warm
    took = {"plain": 0.0, "embed": 0.0}
    for _ in range(repeats):
        for name, parser in (("plain", plain), ("embed", embed)):
            start = time.perf_counter()
            for image in images:
                parser(image)
            took[name] += time.perf_counter() - start
    n = repeats * len(images)
    return {"plain_s": took["plain"] / n, "embed_s": took["embed"] / n, "ratio": took["embed"] / took["plain"]}


def run(args: argparse.Namespace) -> dict:
    dm = ParsingDataModule(root=args.data_root, num_workers=0)
    queries = validation_photos(args.data_root, args.queries)
    rest = [item for item in dm.items() if item not in queries]
    gallery = queries + rest[: None if args.gallery is None else max(args.gallery - len(queries), 0)]
    parser = Parser.load(device="cpu", embed=True)
    names = parser.names
    truth, predicted, colours, hists, parses = {}, {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        catalogue = Catalogue.build([], Path(tmp) / "catalogue", parser)
        start = time.perf_counter()
        for n, (photo, mask) in enumerate(gallery):
            key, image = str(photo), read_image(photo)
            parse = parser(image)
            catalogue.add_parses([(key, parse)])
            truth[key] = truth_of(image, read_raw_mask(mask), names)
            predicted[key] = set(parse.garments)
            colours[key] = {g: v.lab for g, v in parse.embedding.garments.items()}
            hists[key] = histogram(image)
            if key in {str(q[0]) for q in queries}:
                parses[key] = parse
            if n % 100 == 0:
                print(f"gallery {n}/{len(gallery)}", flush=True)
        build_s = time.perf_counter() - start
        disk = sum(p.stat().st_size for p in (Path(tmp) / "catalogue").iterdir())
        keys = list(truth)
        matrix = np.stack([hists[k] for k in keys])

        def by_histogram(h: np.ndarray) -> list[str]:
            return [keys[i] for i in np.argsort(-(matrix @ h), kind="stable")]

        def by_sets(garments: set, lab: dict, main: str | None = None) -> list[str]:
            def score(k: str) -> float:
                common = [g for g in garments & predicted[k] if g in lab and g in colours[k]]
                spread = np.mean([np.linalg.norm(lab[g] - colours[k][g]) for g in common]) if common else 100.0
                if main is not None:  # a garment search: photos predicted to hold it, nearest its colour
                    held = main in predicted[k]
                    known = held and main in lab and main in colours[k]
                    near = np.linalg.norm(lab[main] - colours[k][main]) if known else 100.0
                    return float(held) - near / 1000 + jaccard(garments, predicted[k]) / 1e6
                return jaccard(garments, predicted[k]) - spread / 10000

            return sorted(keys, key=lambda k: -score(k))

        rows = {name: {"r@1": [], "ndcg@10": [], "p@10": [], "colour@10": []} for name in ("histogram", "sets", "ours")}
        latencies = []
        for photo, mask in queries:
            key = str(photo)
            image, parse = read_image(photo), parses[key]
            copy = reframed(image)
            rows["histogram"]["r@1"].append(by_histogram(histogram(copy))[0] == key)
            q = parser(copy)
            rows["sets"]["r@1"].append(by_sets(set(q.garments), colours_of(q))[0] == key)
            start = time.perf_counter()
            rows["ours"]["r@1"].append(catalogue.search(q, k=1)[0].photo == key)
            latencies.append(time.perf_counter() - start)
            ideal = [jaccard(set(truth[key]), set(truth[k])) for k in keys if k != key]

            def relevance(ranked: list[str], key: str = key) -> list[float]:
                return [jaccard(set(truth[key]), set(truth[k])) for k in ranked if k != key]

            outfit = [h.photo for h in catalogue.search(parse, k=K + 1)]
            rows["ours"]["ndcg@10"].append(ndcg(relevance(outfit), ideal))
            rows["histogram"]["ndcg@10"].append(ndcg(relevance(by_histogram(hists[key])), ideal))
            rows["sets"]["ndcg@10"].append(ndcg(relevance(by_sets(predicted[key], colours[key])), ideal))
            if not truth[key]:
                continue
            main = max(truth[key], key=lambda g: (read_raw_mask(mask) == names.index(g)).sum())
            try:
                found = [h.photo for h in catalogue.search(parse, garment=main, k=K + 1)]
            except ValueError:  # the network finds no such garment anywhere in the query: no hits
                found = []
            for name, ranked in (
                ("ours", found),
                ("histogram", by_histogram(hists[key])),
                ("sets", by_sets(predicted[key], colours[key], main)),
            ):
                result = scores_for(ranked, key, main, keys, truth)
                rows[name]["p@10"].append(result["p@10"])
                rows[name]["colour@10"].append(result["colour@10"])
    summary = {name: {m: float(np.mean(v)) for m, v in r.items()} for name, r in rows.items()}
    for name, r in summary.items():
        print(name, r, flush=True)
    timing = {
        "build_photos_per_s": len(gallery) / build_s,
        "query_p50_ms": 1000 * float(np.median(latencies)),
        "query_p95_ms": 1000 * float(np.percentile(latencies, 95)),
        "bytes_per_photo": disk / len(gallery),
    }
    dim = len(next(iter(c.vector for p in parses.values() for c in p.embedding.garments.values())))
    meta = {**machine(), "gallery": len(gallery), "queries": len(queries)}
    timing["embed"] = embed_cost(queries[:20])
    print(timing, flush=True)
    return {"meta": meta, "scores": summary, "timing": timing, "speed": speed(dim, args.sizes), "dim": dim}


def colours_of(parse) -> dict:  # noqa: ANN001
    return {g: v.lab for g, v in parse.embedding.garments.items()}


def markdown(result: dict) -> str:
    meta, s, t = result["meta"], result["scores"], result["timing"]
    lines = [
        "# Retrieval: outfit, garment and colour search over CCP",
        "",
        f"Gallery: {meta['gallery']} pixel-annotated CCP photos; queries: {meta['queries']} validation photos (each "
        f"left out of its own results). CPU: {meta['cpu']}. `python bench/retrieval.py`",
        "",
        "| search | R@1 re-framed copy | outfit NDCG@10 | garment P@10 | colour@10 |",
        "|---|---|---|---|---|",
    ]
    titles = {"histogram": "global colour histogram (no parse)", "sets": "predicted garment sets + colour",
              "ours": "**catalogue** (outfit / garment vectors)"}  # fmt: skip
    for name, row in s.items():
        lines.append(
            f"| {titles[name]} | {row['r@1']:.3f} | {row['ndcg@10']:.3f} | {row['p@10']:.3f} | {row['colour@10']:.3f} |"
        )
    lines += [
        "",
        f"Build (parse with vectors + add): {t['build_photos_per_s']:.2f} photos/s; a search (query parsed): "
        f"p50 {t['query_p50_ms']:.0f} ms, p95 {t['query_p95_ms']:.0f} ms; {t['bytes_per_photo'] / 1024:.1f} KiB per "
        "photo on disk (SQLite + both indexes). A parse with the search vectors costs "
        f"{t['embed']['ratio']:.2f}× one without ({t['embed']['embed_s']:.3f} vs {t['embed']['plain_s']:.3f} s per "
        "photo, torch network, 20 photos × 2, interleaved).",
        "",
        f"Vector search alone, synthetic unit vectors of {result['dim']} dimensions (the garment vectors' size), "
        "200 queries, k = 10:",
        "",
        "| vectors | index | p50 ms | p95 ms | index MB | save s |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["speed"]:
        lines.append(
            f"| {row['vectors']:,} | {row['kind']} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | "
            f"{row['index_mb']:.0f} | {row['save_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "ccp"))
    ap.add_argument("--gallery", type=int, default=None, help="at most this many gallery photos (queries included)")
    ap.add_argument("--queries", type=int, default=None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    write_results(args.out, "retrieval", run(args), markdown)


if __name__ == "__main__":
    main()
