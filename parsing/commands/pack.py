"""``parsing pack CKPT OUT``: a deployable checkpoint — weights, label set, rules and input size, no optimiser.

The packed file loads with ``ParsingModel.from_checkpoint``, ``Parser.load`` and ``parsing-predict --checkpoint``
(and ``ParsingModule.load_from_checkpoint``); it never asks for encoder weights or ``init_from`` again. The
shipped model (``parsing/assets``) is made this way.

``--average-with OTHER`` packs the mean of two fine-tuning runs' weights (a "soup"; ``--average-weight`` is
OTHER's share, 0.5 by default): e.g. a model and the model it was fine-tuned from, which keeps what each does
better (the shipped model: the pseudo-label student and its teacher, docs/model-card.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import get_args

import torch

from parsing.commands.help import plain
from parsing.inference.exclusions import exclusion_matrix

KEEP = (
    "state_dict",
    "hyper_parameters",
    "datamodule_hyper_parameters",
    "input_size",
    "pytorch-lightning_version",
    "epoch",
)


def average_weights(state: dict, other: dict, weight: float = 0.5) -> dict:
    """(1 - weight) × ``state`` + weight × ``other`` for floating-point tensors (counters and masks from ``state``);
    the two must hold the same tensors (names and shapes), else a ValueError says which differ."""
    if set(state) != set(other):
        raise ValueError(f"different tensors: {sorted(set(state) ^ set(other))[:5]}")
    out = {}
    for key, value in state.items():
        if value.shape != other[key].shape:
            raise ValueError(f"{key}: shapes {tuple(value.shape)} and {tuple(other[key].shape)} differ")
        out[key] = torch.lerp(value, other[key].to(value.dtype), weight) if value.is_floating_point() else value
    return out


def pack(
    source: str | Path,
    target: str | Path,
    rules_from: str | Path | None = None,
    average_with: str | Path | None = None,
    average_weight: float = 0.5,
    input_size: tuple[int, int] | None = None,
    decode_from: str | None = None,
) -> dict:
    """Write the packed checkpoint; returns it. ``rules_from``: a checkpoint or a rules YAML (``parsing rules``)
    whose exclusive pairs replace the source's; ``average_with``: a checkpoint of the same model (labels, network)
    whose weights are averaged in, with share ``average_weight``; ``input_size``: the network input (H, W) that
    inference uses (``parsing.model.checkpoint.input_size``; default: the training size, or what ``source`` records);
    ``decode_from``: where inference reads the garment set from (``pixels``, ``pooled``, ``presence``, ``auto``)."""
    from parsing.model import ParsingModel, read_checkpoint
    from parsing.model.checkpoint import model_state
    from parsing.model.parsing_model import DecodeFrom

    checkpoint = read_checkpoint(source)
    checkpoint["state_dict"] = model_state(checkpoint["state_dict"])  # the model's tensors, named as it names them
    if average_with is not None:
        other = read_checkpoint(average_with)
        other["state_dict"] = model_state(other["state_dict"])
        mine, theirs = checkpoint["hyper_parameters"], other["hyper_parameters"]
        for key in ("class_names", "arch", "encoder", "outfit", "context"):
            default = "none" if key == "context" else None  # checkpoints from before the context option
            if mine.get(key, default) != theirs.get(key, default):
                raise ValueError(f"{average_with}: another model than {source} ({key} differs)")
        try:
            checkpoint["state_dict"] = average_weights(checkpoint["state_dict"], other["state_dict"], average_weight)
        except ValueError as err:
            raise ValueError(f"{average_with}: cannot average with {source}: {err}") from None
    packed = {key: checkpoint[key] for key in KEEP if key in checkpoint}
    if input_size is not None:
        from parsing.inference.options import MIN_SIDE

        if len(input_size) != 2 or min(input_size) < MIN_SIDE:
            raise ValueError(f"input size {input_size}: give (H, W), each at least {MIN_SIDE}")
        packed["input_size"] = [int(input_size[0]), int(input_size[1])]
    hparams = dict(packed["hyper_parameters"])
    hparams.update(encoder_weights=None, init_from=None)  # every weight is in the state_dict
    if decode_from is not None:
        if decode_from not in get_args(DecodeFrom):
            raise ValueError(f"decode_from {decode_from!r}: choose one of {', '.join(get_args(DecodeFrom))}")
        hparams["decode_from"] = decode_from
    for option in (
        "crf",
        "crf_params",
        "tta",
        "tags_from_masks",
        "_instantiator",
    ):  # inference options are chosen at inference
        hparams.pop(option, None)
    packed["hyper_parameters"] = hparams
    state = packed["state_dict"]
    if rules_from is not None:
        from parsing.commands.rules import rule_pairs

        state["exclusive"] = exclusion_matrix(rule_pairs(str(rules_from)), hparams["class_names"])
    # No exclusive pairs (a label set of your own, ``exclusions: []``): it packs, and decoding skips the pair step.
    model = ParsingModel.from_checkpoint(packed)  # the current model: drops what it no longer has
    packed["state_dict"] = model.checkpoint()["state_dict"]
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    torch.save(packed, target)
    return packed


def main(argv: list[str] | None = None) -> None:
    from parsing.commands.inputs import add_input_size
    from parsing.model.checkpoint import input_size
    from parsing.model.parsing_model import DecodeFrom

    parser = argparse.ArgumentParser(
        prog="parsing pack", description=plain(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", help="a training checkpoint (e.g. runs/ccp/checkpoints/last.ckpt)")
    parser.add_argument("output", help="the packed .ckpt to write")
    parser.add_argument("--rules-from", help="take the exclusive pairs from this checkpoint or rules YAML")
    parser.add_argument("--decode-from", choices=get_args(DecodeFrom), help="the garment set's source at inference")
    parser.add_argument("--average-with", help="average the weights with this checkpoint of the same model")
    parser.add_argument("--average-weight", type=float, default=0.5, help="--average-with's share (default 0.5)")
    add_input_size(parser, "the network input box inference uses (default: the training size)")
    args = parser.parse_args(argv)
    try:
        packed = pack(
            args.checkpoint,
            args.output,
            args.rules_from,
            args.average_with,
            args.average_weight,
            args.input_size,
            args.decode_from,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"parsing pack: {err}", file=sys.stderr)
        sys.exit(2)
    size = Path(args.output).stat().st_size / 2**20
    print(f"{args.output}: {size:.1f} MiB, {len(packed['state_dict'])} tensors, network input {input_size(packed)}")
    exclusive = packed["state_dict"].get("exclusive")
    if exclusive is None or not exclusive.any():
        print(f"{args.output}: no exclusive garment pairs: parses skip the pair step (--rules-from to add some)")


if __name__ == "__main__":
    main()
