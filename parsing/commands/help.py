"""``parsing --help`` / ``parsing help [COMMAND]``: every subcommand with one line, and help texts as plain text."""

from __future__ import annotations

import argparse
import difflib
import re
from typing import Any

# name → one line; the order is the order of a project: data, training, deployment, parsing
COMMANDS = {
    "check-data": "list every problem in a dataset (CCP, an images/ + masks/ folder, or COCO) before training",
    "fit": "train a model from a YAML config (LightningCLI: parsing fit --config configs/ccp.yaml)",
    "validate": "score a checkpoint on the validation split (--config …, --ckpt_path …)",
    "test": "score a checkpoint at full resolution, with the CRF (--config …, --ckpt_path …)",
    "rules": "the exclusive garment pairs of a checkpoint or learned from data, as YAML",
    "pack": "a deployable checkpoint: weights, labels, rules, input size (optionally averaged with another)",
    "export": "export a checkpoint to ONNX (and TorchScript), with a parity check",
    "pseudo-label": "label tag-only photos with a teacher model, restricted to their tags",
    "predict": "parse photos, folders or globs → masks, overlays, summary.jsonl (same as parsing-predict)",
    "serve": "an HTTP service (POST /parse) and a web studio to label photos, on 127.0.0.1:8000",
    "index": "a searchable catalogue of photos: each parsed once, with its outfit and garment vectors",
    "search": "search a catalogue by a photo's outfit, one of its garments, a colour (JSON lines, a contact sheet)",
}
LIGHTNING = ("fit", "validate", "test")


def plain(doc: str | None) -> str:
    """A docstring as terminal text: ``code`` marks and RST roles dropped."""
    text = re.sub(r":\w+:`([^`]+)`", r"\1", doc or "")
    return re.sub(r"``([^`]+)``", r"\1", text).strip()


def overview() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: parsing COMMAND [options]        (parsing help COMMAND, or parsing COMMAND --help, for its options)",
        "",
        "Clothing parsing: label every pixel of a fashion photo with the garment it shows.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {line}" for name, line in COMMANDS.items()),
        "",
        "Python: from parsing import Parser; parse = Parser.load()('photo.jpg')",
    ]
    return "\n".join(lines)


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that keeps its description's lines as written (examples one per line) and answers
    an unknown option with the closest known one (``--overwirte``: did you mean --overwrite?)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        match = re.search(r"unrecognized arguments: (.+)", message)
        if match:
            known = [option for action in self._actions for option in action.option_strings]
            for word in match.group(1).split():
                close = difflib.get_close_matches(word.split("=")[0], known, n=1) if word.startswith("-") else []
                if close:
                    message += f" ({word}: did you mean {close[0]}?)"
        super().error(message)
