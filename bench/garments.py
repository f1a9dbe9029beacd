"""Garment-naming benchmark: does the parser name the garments of a photo right, and what do tags and merges give?

On the CCP validation photos (full resolution, the ``parsing-predict`` path with its default fast CRF), per model:

* **garment sets** from each source — the outfit encoder (presence > 0.5), the segmentation's pooled label
  probabilities (> 0.5, ``ParsingModule.pooled_presence``), the garments of the label map (≥ 0.1 % of the
  photo) and the decoded ``outfit`` that ``summary.jsonl`` reports, for each ``decode_from`` (pixels, pooled,
  presence) — against the garments of the mask (≥ 0.1 %): micro precision / recall / F1, exact-set rate, mean set
  size, and presence mAP for the probabilistic sources;
* **parses**: decoded from each source (the model's own ``decode_from`` is what it ships with); with each photo's
  garments given (``--tags`` from the mask: the upper bound of knowing the
  outfit); ``ccp-coarse`` with probabilities summed per group (``--merge``) against the fine argmax mapped to
  the groups;
* the most frequent garment confusions (pixels of one garment labelled as another).

Writes ``bench/results/garments.{json,md}``.

    python bench/garments.py                                            # the shipped model
    python bench/garments.py --checkpoints old.ckpt new.ckpt --names old new --limit 10
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
from common import (
    checkpoint_names,
    load_parser,
    machine,
    model_arguments,
    previous_models,
    shown,
    validation_photos,
    write_results,
)
import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from parsing.inference.decode import decoding_source, parse_photo, pooled_presence
from parsing.inference.confidence import label_confidence
from parsing.data.datasets import read_raw_mask
from parsing.data.io import read_image
from parsing.labels import LabelSet
from parsing.training.metrics import PresenceScores, confusion_matrix, scores
from parsing.data.datasets import presence_targets
from parsing.labels import NON_GARMENTS, garments_in
from parsing.data.fit import fit_photo

SOURCES = ("outfit encoder", "pooled segmentation", "label map")
PARSER_OUTFIT = "outfit (Parser: widen, refocus, specks removed; summary.jsonl)"
DECODERS = ("pixels", "pooled", "presence")  # model.decode_from: where the exclusive-pair decoding reads the outfit


class SetScores:
    """Micro precision / recall / F1 of predicted garment sets, exact-set rate and mean set size."""

    def __init__(self) -> None:
        self.hits = self.predicted = self.true = self.exact = self.photos = 0

    def update(self, predicted: set[int], truth: set[int]) -> None:
        self.hits += len(predicted & truth)
        self.predicted += len(predicted)
        self.true += len(truth)
        self.exact += int(predicted == truth)
        self.photos += 1

    def compute(self) -> dict[str, float]:
        p = self.hits / max(self.predicted, 1)
        r = self.hits / max(self.true, 1)
        return {
            "precision": round(p, 3),
            "recall": round(r, 3),
            "f1": round(2 * p * r / max(p + r, 1e-9), 3),
            "exact": round(self.exact / max(self.photos, 1), 3),
            "size": round(self.predicted / max(self.photos, 1), 2),
        }


class ConfidenceScores:
    """How well a garment's ``confidence`` (``inference.confidence``) tells right names from wrong ones: the garments
    of the label map (≥ 0.1 % of the photo), each right when the mask holds it too."""

    BINS = (0.0, 0.4, 0.6, 0.8, 1.01)

    def __init__(self) -> None:
        self.confidence: list[float] = []
        self.right: list[bool] = []
        self.alternative_right: list[bool] = []

    def update(self, shown: set[int], truth: set[int], sure: dict[int, dict], names: list[str]) -> None:
        for label in sorted(shown & sure.keys()):
            self.confidence.append(sure[label]["confidence"])
            self.right.append(label in truth)
            self.alternative_right.append(label not in truth and names.index(sure[label]["alternative"]) in truth)

    def compute(self) -> dict:
        from torchmetrics.functional.classification import binary_auroc

        conf, right = torch.tensor(self.confidence), torch.tensor(self.right)
        wrong = int((~right).sum())
        bins = []
        for lo, hi in zip(self.BINS, self.BINS[1:], strict=False):
            inside = (conf >= lo) & (conf < hi)
            bins.append(
                {
                    "from": lo,
                    "to": min(hi, 1.0),
                    "garments": int(inside.sum()),
                    "right": round(float(right[inside].float().mean()), 3) if inside.any() else None,
                }
            )
        flagged = conf < 0.5
        return {
            "garments": len(conf),
            "auroc": round(float(binary_auroc(conf, right.long())), 3),
            "bins": bins,
            "wrong_flagged_below_0.5": round(float(flagged[~right].float().mean()), 3),
            "right_flagged_below_0.5": round(float(flagged[right].float().mean()), 3),
            "wrong_with_right_alternative": round(sum(self.alternative_right) / max(wrong, 1), 3),
        }


def run_model(
    checkpoint: Path, photos: list[tuple[Path, Path]], crf: str, input_size: list[int] | None = None, **network: str
) -> dict:
    parser = load_parser(checkpoint, input_size, crf=crf, **network)
    model, backend, size = parser.spec, parser.backend, parser.size
    k, names = model.num_classes, model.class_names
    garments = torch.from_numpy(LabelSet.identity(names).garments)
    coarse = LabelSet.ccp("ccp-coarse")
    lut = torch.from_numpy(coarse.lut.astype(np.int64))
    merged_view = parser.replace(merge="ccp-coarse").view(None)
    mf = model.decoding.min_fraction
    outfit = model.config["outfit"] != "none"
    decoders = [d for d in DECODERS if d != "presence" or outfit]
    default = decoding_source(model.decoding.decode_from, torch.zeros(k) if outfit else None)
    settings = model.decoding
    sets = {source: SetScores() for source in (*SOURCES, *(f"decoded outfit ({d})" for d in decoders))}
    sets[PARSER_OUTFIT] = SetScores()
    maps = {"outfit encoder": PresenceScores(k), "pooled segmentation": PresenceScores(k)}
    cms = {f"decoded from {d}": confusion_matrix(k) for d in decoders}
    cms["tags from the mask"] = confusion_matrix(k)
    coarse_cms = {
        "fine argmax → groups": confusion_matrix(len(coarse)),
        "summed per group": confusion_matrix(len(coarse)),
    }
    confidence = ConfidenceScores()
    for n, (photo, mask_path) in enumerate(photos):
        image, truth = read_image(photo), torch.from_numpy(read_raw_mask(mask_path)).long()
        h, w = truth.shape
        truth_set = presence_targets(truth[None], k, mf)[0].bool() & garments
        with torch.inference_mode():
            logits, presence = backend.forward(fit_photo(image, size)[None])
            z, p = logits[0], None if presence is None else presence[0]
            pooled = pooled_presence(logits, mf)[0]
            decoded_maps = {}
            for decoder in decoders:
                model.decoding = dataclasses.replace(settings, decode_from=decoder)
                decoded_maps[decoder] = parse_photo(model, z, p, (h, w), torch.from_numpy(image), crf)
            model.decoding = dataclasses.replace(settings, decode_from=default)
            labels, chosen = decoded_maps[default]
            told = parser.view(garments_in(truth, names))
            told_labels, _ = parse_photo(model, z, p, (h, w), torch.from_numpy(image), crf, told)
            merged, _ = parse_photo(model, z, p, (h, w), torch.from_numpy(image), crf, merged_view)
            sure = label_confidence(labels, z, names)
        in_map = presence_targets(labels[None].long(), k, mf)[0].bool() & garments
        truth_ids = set(truth_set.nonzero().flatten().tolist())
        found = {"label map": in_map, "pooled segmentation": (pooled > 0.5) & garments}
        if p is not None:
            found["outfit encoder"] = (torch.sigmoid(p) > 0.5) & garments
            maps["outfit encoder"].update(torch.sigmoid(p)[None], truth_set[None].long())
        maps["pooled segmentation"].update(pooled[None], truth_set[None].long())
        confidence.update(set(in_map.nonzero().flatten().tolist()), truth_ids, sure, names)
        for source, chosen_set in found.items():
            sets[source].update(set(chosen_set.nonzero().flatten().tolist()), truth_ids)
        for decoder, (decoded_labels, decoded_set) in decoded_maps.items():
            shown_set = presence_targets(decoded_labels[None].long(), k, mf)[0].bool() & garments
            counts = np.bincount(decoded_labels.flatten().numpy(), minlength=k)
            outfit = {i for i in range(k) if names[i] not in NON_GARMENTS and decoded_set[i] and counts[i] > 0}
            sets[f"decoded outfit ({decoder})"].update(outfit & set(shown_set.nonzero().flatten().tolist()), truth_ids)
            cms[f"decoded from {decoder}"].update(decoded_labels.flatten(), truth.flatten())
        cms["tags from the mask"].update(told_labels.flatten(), truth.flatten())
        parse = parser(image)  # the whole pipeline: its outfit is what summary.jsonl reports
        sets[PARSER_OUTFIT].update({names.index(g) for g in parse.garments}, truth_ids)
        coarse_cms["fine argmax → groups"].update(lut[labels].flatten(), lut[truth].flatten())
        coarse_cms["summed per group"].update(merged.flatten(), lut[truth].flatten())
        print(f"{checkpoint.name} {n + 1}/{len(photos)} {photo.name}", flush=True)
    set_rows = {}
    for source in sets:
        if sets[source].photos == 0:
            continue
        row = sets[source].compute()
        if source in maps and maps[source].update_count:
            row["map"] = round(float(maps[source].compute()["map"]), 3)
        set_rows[source] = row
    parse_rows = {}
    for name, cm in [*cms.items(), *coarse_cms.items()]:
        s = scores(cm.compute())
        parse_rows[name] = {key: round(100.0 * float(s[key]), 2) for key in ("pixel_acc", "fg_acc", "miou", "f1")}
    cm = cms[f"decoded from {default}"].compute()
    off = cm.clone()
    off.fill_diagonal_(0)
    off[:, ~garments] = 0
    off[~garments] = 0
    top = torch.argsort(off.flatten(), descending=True)[:12]
    confusions = [
        {
            "truth": names[int(i) // k],
            "predicted": names[int(i) % k],
            "share": round(float(off.flatten()[i] / cm.sum()), 5),
        }
        for i in top
        if off.flatten()[i] > 0
    ]
    scored = {
        "sets": set_rows,
        "parses": parse_rows,
        "confusions": confusions,
        "confidence": confidence.compute(),
        "default_decoding": default,
    }
    return {"input_size": list(size), "network": repr(backend), **scored}


def markdown(result: dict) -> str:
    meta, models = result["meta"], result["models"]
    lines = [
        f"# Garment-naming benchmark — {meta['photos']} CCP validation photos, full resolution, CRF `{meta['crf']}`",
        "",
        *[
            f"- **{m['name']}**: `{m['checkpoint']}`, network input {'×'.join(map(str, m['input_size']))}"
            + (f", network `{m['network']}`" if "network" in m else "")
            for m in models
        ],
        "",
        "## Garment sets (garments covering ≥ 0.1 % of the photo; micro-averaged over photos)",
        "",
        "| model | source | precision | recall | F1 | exact sets | garments/photo | presence mAP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in models:
        for source, r in m["sets"].items():
            ap = f"{r['map']:.3f}" if "map" in r else "–"
            lines.append(
                f"| {m['name']} | {source} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | "
                f"{100 * r['exact']:.1f} % | {r['size']:.2f} | {ap} |"
            )
    lines.append(f"\nThe masks hold {meta['true_per_photo']:.2f} garments per photo.\n")
    lines += [
        "## Parses",
        "",
        "| model | parse | pixel acc | fg acc | mIoU | F1 |",
        "|---|---|---|---|---|---|",
    ]
    for m in models:
        for name, r in m["parses"].items():
            label = name if "group" not in name else f"ccp-coarse, {name}"
            cells = " | ".join(f"{r[key]:.1f}" for key in ("pixel_acc", "fg_acc", "miou", "f1"))
            lines.append(f"| {m['name']} | {label} | {cells} |")
    lines += [
        "",
        "## Confidence: can a garment's `confidence` tell a right name from a wrong one?",
        "",
        "Each garment of the label map (default decoding, ≥ 0.1 % of the photo) with its `confidence` (its mean",
        "probability over its own pixels, `inference.confidence`, as `summary.jsonl` reports it); right = the mask",
        "holds that garment. AUROC: how well confidence ranks right names above wrong ones (0.5: not at all).",
        "",
        "| model | garments | AUROC | right at < 0.4 | 0.4–0.6 | 0.6–0.8 | ≥ 0.8 | wrong ones < 0.5 | right ones < 0.5 "
        "| wrong ones whose `alternative` is right |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in models:
        c = m.get("confidence")
        if c is None:
            continue
        bins = " | ".join(
            "–" if b["right"] is None else f"{100 * b['right']:.0f} % of {b['garments']}" for b in c["bins"]
        )
        lines.append(
            f"| {m['name']} | {c['garments']} | {c['auroc']:.3f} | {bins} | {100 * c['wrong_flagged_below_0.5']:.0f} % "
            f"| {100 * c['right_flagged_below_0.5']:.0f} % | {100 * c['wrong_with_right_alternative']:.0f} % |"
        )
    lines += ["", "## Top garment confusions (share of all pixels)", ""]
    for m in models:
        pairs = ", ".join(f"{c['truth']}→{c['predicted']} {100 * c['share']:.2f} %" for c in m["confusions"])
        lines.append(f"- **{m['name']}**: {pairs}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model_arguments(parser, "garments")
    parser.add_argument(
        "--previous", type=Path, default=None, help="an earlier result JSON whose other-named models to keep"
    )
    args = parser.parse_args()
    names = checkpoint_names(parser, args)
    torch.set_num_threads(args.threads)
    photos = validation_photos(args.data_root, args.limit)
    kept = previous_models(parser, args.previous, {"photos": len(photos), "crf": args.crf}, names)
    network = {"backend": args.backend, "precision": args.precision}
    models = kept + [
        {"name": name, "checkpoint": shown(c), **run_model(c, photos, args.crf, args.input_size, **network)}
        for name, c in zip(names, args.checkpoints, strict=True)
    ]
    truth = SetScores()
    garments = torch.from_numpy(LabelSet.ccp().garments)
    for _, mask in photos:
        present = presence_targets(torch.from_numpy(read_raw_mask(mask)).long()[None], len(garments))[0].bool()
        truth.update(set(), set((present & garments).nonzero().flatten().tolist()))
    meta = {
        "photos": len(photos),
        "split": "CCP validation split (seed 0, 10 %)",
        "crf": args.crf,
        "true_per_photo": truth.true / max(len(photos), 1),
        **machine(),
    }
    write_results(args.out, args.name, {"meta": meta, "models": models}, markdown)


if __name__ == "__main__":
    main()
