"""Contact sheet of garment cut-outs with their named colours, from ``parsing-predict --cutouts --describe``.

Parses the first N CCP validation photos and lays out, per photo, the cut-out of its biggest garment with the
colour names and swatches from ``summary.jsonl`` — to check by eye that the names fit. Writes
``docs/cutouts.jpg`` and prints one line per photo.

    python bench/cutouts.py --photos 20
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
from common import ROOT

import argparse
import json
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from parsing.data.datamodule import ParsingDataModule
from parsing.commands.predict import main as predict
from parsing.model.checkpoint import SHIPPED as DEFAULT_CHECKPOINT


def sheet(out: Path, records: list[dict], tile: tuple[int, int] = (150, 200), columns: int = 5) -> Image.Image:
    """Tiles: the biggest garment's cut-out on light grey, its name, and its colours (swatch, name, share)."""
    font = ImageFont.load_default()
    width, height = tile
    rows = (len(records) + columns - 1) // columns
    canvas = Image.new("RGB", (columns * width, rows * (height + 52)), "white")
    draw = ImageDraw.Draw(canvas)
    for n, record in enumerate(records):
        x, y = (n % columns) * width, (n // columns) * (height + 52)
        garments = [lab for lab in record["labels"] if "colours" in lab]
        if not garments:
            continue
        biggest = max(garments, key=lambda lab: lab["share"])
        picture = Image.open(out / record["cutouts"] / f"{biggest['label']}.png")
        picture.thumbnail((width - 8, height - 8))
        backdrop = Image.new("RGB", picture.size, (235, 235, 235))
        backdrop.paste(picture, mask=picture.getchannel("A"))
        canvas.paste(backdrop, (x + (width - picture.width) // 2, y + 4))
        draw.text((x + 4, y + height), f"{Path(record['file']).stem}: {biggest['label']}", fill="black", font=font)
        for m, colour in enumerate(biggest["colours"]):
            top = y + height + 12 + 12 * m
            draw.rectangle((x + 4, top, x + 14, top + 10), fill=colour["hex"], outline="black")
            draw.text((x + 18, top), f"{colour['name']} {100 * colour['share']:.0f}%", fill="black", font=font)
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "ccp"))
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--sheet", type=Path, default=ROOT / "docs" / "cutouts.jpg")
    args = parser.parse_args()
    data = ParsingDataModule(root=args.data_root)
    photos = [str(photo) for photo, _ in data.split(data.items())[1][: args.photos]]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        command = [*photos, "-o", str(out), "--cutouts", "--describe", "--no-progress", "--checkpoint"]
        if predict([*command, str(args.checkpoint)]) != 0:
            raise SystemExit("parsing-predict failed")
        records = [json.loads(line) for line in (out / "summary.jsonl").read_text().splitlines()]
        records.sort(key=lambda r: r["file"])
        for record in records:
            garments = sorted((lab for lab in record["labels"] if "colours" in lab), key=lambda lab: -lab["share"])
            if garments:
                names = ", ".join(c["name"] for c in garments[0]["colours"])
                print(f"{Path(record['file']).name}: {garments[0]['label']}: {names}")
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        sheet(out, records).save(args.sheet, quality=88)
    print(f"→ {args.sheet}")


if __name__ == "__main__":
    main()
