"""``parsing rules``: print the exclusive garment pairs of a checkpoint, or learn them from a CCP root.

The output is YAML that can be pasted under ``model:`` to override the rules of a run.
"""

from __future__ import annotations

import argparse

import torch
import yaml

from parsing.commands.help import plain
from parsing.inference.exclusions import exclusion_pairs, learn_exclusions


def checkpoint_pairs(path: str) -> list[tuple[str, str]]:
    from parsing.model.checkpoint import model_state, read_checkpoint

    checkpoint = read_checkpoint(path)
    names = checkpoint["hyper_parameters"]["class_names"]
    exclusive = model_state(checkpoint["state_dict"]).get("exclusive")
    if exclusive is None:
        raise ValueError(f"{path}: no exclusion rules in this checkpoint")
    return exclusion_pairs(exclusive, names)


def rule_pairs(path: str) -> list[tuple[str, str]]:
    """The exclusive pairs of a checkpoint, or of a rules YAML (``exclusions: [[a, b], …]``, what this prints)."""
    if not str(path).endswith((".yaml", ".yml")):
        return checkpoint_pairs(path)
    with open(path) as f:
        rules = yaml.safe_load(f)
    if not isinstance(rules, dict) or not isinstance(rules.get("exclusions"), list):
        raise ValueError(f"{path}: not a rules file (expected 'exclusions: [[a, b], ...]', as `parsing rules` prints)")
    return [tuple(pair) for pair in rules["exclusions"]]


def data_pairs(root: str, merge: str | None, min_count: int, min_expected: float, max_ratio: float) -> list:
    try:
        from parsing.data.datamodule import ParsingDataModule  # a LightningDataModule
    except ImportError as err:
        extra = "pip install 'clothing-parsing[train]'"
        raise SystemExit(f"parsing rules --data-root needs the train extra: {extra} ({err})") from None
    data = ParsingDataModule(root=root, merge=merge)
    garments = torch.from_numpy(data.label_set.garments)
    exclusive = learn_exclusions(data.presence_table(), garments, min_count, min_expected, max_ratio)
    return exclusion_pairs(exclusive, data.class_names)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="parsing rules", description=plain(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", nargs="?", help="a parsing checkpoint (.ckpt)")
    parser.add_argument("--data-root", help="learn the rules from the training split of this CCP root instead")
    parser.add_argument("--merge", default=None, help="label merge preset, as in data.merge")
    parser.add_argument("--min-count", type=int, default=15)
    parser.add_argument("--min-expected", type=float, default=3.0)
    parser.add_argument("--max-ratio", type=float, default=0.0)
    args = parser.parse_args(argv)
    if (args.checkpoint is None) == (args.data_root is None):
        parser.error("give a checkpoint or --data-root")
    if args.checkpoint:
        pairs = checkpoint_pairs(args.checkpoint)
    else:
        pairs = data_pairs(args.data_root, args.merge, args.min_count, args.min_expected, args.max_ratio)
    print(f"# {len(pairs)} exclusive garment pairs")
    print(yaml.safe_dump({"exclusions": [list(p) for p in pairs]}, default_flow_style=None, sort_keys=False), end="")


if __name__ == "__main__":
    main()
