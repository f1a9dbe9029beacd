"""``parsing COMMAND``: the LightningCLI (fit, validate, test) over ParsingModule and ParsingDataModule, and the
other subcommands (``parsing.commands.help`` lists them all).

``parsing predict PHOTOS -o OUT`` is ``parsing-predict``; given LightningCLI options (``--config``,
``--ckpt_path``) it says what parses photos instead of writing a second, different set of outputs.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import torch
from pytorch_lightning.cli import LightningCLI

from parsing.commands.help import COMMANDS, overview
from parsing.data.datamodule import ParsingDataModule
from parsing.training.module import ParsingModule

# Inference options: with ``--ckpt_path``, the command line and config decide these, not the checkpoint.
INFERENCE_OPTIONS = ("decode", "decode_from", "presence_threshold", "min_fraction")


class ParsingCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001
        # The label set lives in the data config; the model is sized from it.
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.palette", "model.palette", apply_on="instantiate")

    def parse_arguments(self, parser, args) -> None:  # noqa: ANN001
        given = sys.argv[1:] if args is None else args  # a list, or a dict/Namespace of values
        self.argv = [str(arg) for arg in given] if isinstance(given, (list, tuple)) else []
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        """Lightning applies a checkpoint's hyperparameters over the parsed config, so that the model is rebuilt as
        it was trained — which also silently drops ``--model.decode false`` and the like. Keep those. ``validate``
        and ``test`` also fit photos into the checkpoint's inference box (``parsing pack --input-size``, what
        ``parsing-predict`` uses) unless ``--data.size`` is on the command line."""
        subcommand = self.config.get("subcommand")
        keys = [f"{subcommand}.model.{name}" for name in INFERENCE_OPTIONS] if subcommand else []
        given = {key: self.config.get(key) for key in keys if self.config.get(key) is not None}
        super()._parse_ckpt_path()
        for key, value in given.items():
            self.config[key] = value
        if subcommand in ("validate", "test"):
            self._use_inference_size(subcommand)

    def _use_inference_size(self, subcommand: str) -> None:
        ckpt_path = self.config[subcommand].get("ckpt_path")
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        if any(arg == "--data.size" or arg.startswith("--data.size=") for arg in getattr(self, "argv", [])):
            return
        size = torch.load(ckpt_path, map_location="cpu", weights_only=True).get("input_size")
        if size is not None:
            box = [-(-int(side) // 32) * 32 for side in size]  # the data module's sizes are multiples of 32
            self.config[f"{subcommand}.data.size"] = box
            note = "" if box == [int(side) for side in size] else f" (input_size {size[0]}×{size[1]} rounded up)"
            print(f"{subcommand}: photos fitted into {box[0]}×{box[1]} from {ckpt_path}{note}", file=sys.stderr)


def _predict_moved(argv: list[str]) -> int:
    """``parsing predict``: point to ``parsing-predict``, with the equivalent command when it can be read off."""

    def value(flag: str, default: str) -> str:
        for i, arg in enumerate(argv):
            if arg.startswith(f"{flag}="):
                return arg.split("=", 1)[1]
            if arg == flag and i + 1 < len(argv):
                return argv[i + 1]
        return default

    photos, checkpoint = value("--data.predict_dir", "PHOTOS/"), value("--ckpt_path", "")
    command = f"parsing-predict {photos} -o predictions/" + (f" --checkpoint {checkpoint}" if checkpoint else "")
    print(
        "parsing predict: photos are parsed by parsing-predict (masks, overlays, summary.jsonl, errors.jsonl, "
        f"resume; see README), e.g.\n  {command}",
        file=sys.stderr,
    )
    return 2


def main(args: list[str] | None = None) -> ParsingCLI | None:
    argv = sys.argv[1:] if args is None else args
    if argv[:1] in ([], ["-h"], ["--help"], ["help"]):
        if argv[:1] == ["help"] and len(argv) > 1:
            return main([argv[1], "--help"])
        print(overview())
        return None
    if argv[:1] == ["--version"]:
        from parsing import __version__

        print(f"clothing-parsing {__version__} (import parsing)")
        return None
    if argv[:1] and not argv[0].startswith("-") and argv[0] not in (*COMMANDS, "predict-folder"):
        close = difflib.get_close_matches(argv[0], list(COMMANDS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        print(f"parsing: unknown command {argv[0]!r}{hint}\n\n{overview()}", file=sys.stderr)
        sys.exit(2)
    if argv[:1] == ["rules"]:
        from parsing.commands.rules import main as rules

        rules(argv[1:])
        return None
    if argv[:1] == ["pack"]:
        from parsing.commands.pack import main as pack

        pack(argv[1:])
        return None
    if argv[:1] == ["export"]:
        from parsing.commands.export import main as export

        export(argv[1:])
        return None
    if argv[:1] == ["check-data"]:
        from parsing.data.check import main as check

        sys.exit(check(argv[1:]))
    if argv[:1] == ["serve"]:
        from parsing.commands.serve import main as serve

        sys.exit(serve(argv[1:]))
    if argv[:1] == ["pseudo-label"]:
        from parsing.commands.pseudo_label import main as pseudo_label

        sys.exit(pseudo_label(argv[1:]))
    if argv[:1] == ["predict"] and any(a.split("=")[0] in ("--config", "--ckpt_path", "-c") for a in argv):
        sys.exit(_predict_moved(argv[1:]))  # the LightningCLI way: say what parses photos instead
    if argv[:1] in (["predict"], ["predict-folder"]):
        from parsing.commands.predict import main as predict

        sys.exit(predict(argv[1:]))
    return ParsingCLI(
        ParsingModule,
        ParsingDataModule,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":
    main()
