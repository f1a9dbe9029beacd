"""The LightningCLI over ``ParsingModule`` and ``ParsingDataModule``: ``parsing fit|validate|test``."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch
from pytorch_lightning.cli import LightningCLI

from parsing.model.spec import DecodeSettings

# Inference options: with ``--ckpt_path``, the command line and config decide these, not the checkpoint.
INFERENCE_OPTIONS = tuple(field.name for field in dataclasses.fields(DecodeSettings))


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


def run(args: list[str] | None = None) -> ParsingCLI:
    from parsing.data.datamodule import ParsingDataModule
    from parsing.training.module import ParsingModule

    return ParsingCLI(ParsingModule, ParsingDataModule, save_config_kwargs={"overwrite": True}, args=args)
