"""``parsing COMMAND``: the LightningCLI (fit, validate, test; ``parsing.training.cli``), imported only for those,
and the other subcommands (``parsing.commands.help`` lists them all). ``parsing --help`` imports no torch.

``parsing predict PHOTOS -o OUT`` is ``parsing-predict``; given LightningCLI options (``--config``,
``--ckpt_path``) it says what parses photos instead of writing a second, different set of outputs.
"""

from __future__ import annotations

import difflib
import sys
from typing import Any

from parsing.commands.help import COMMANDS, overview


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


def predict_main(argv: list[str] | None = None) -> int:
    """``parsing-predict``: its options read first, so ``--help`` and a bad option are answered without importing
    torch (0.1 against 2 s), then ``parsing.commands.predict.run``."""
    from parsing.commands.predict_options import parse_args

    args = parse_args(sys.argv[1:] if argv is None else argv)
    from parsing.commands.predict import run  # torch, the model, the outputs

    return run(args)


def main(args: list[str] | None = None) -> Any:
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
        from parsing.commands.check_data import main as check

        sys.exit(check(argv[1:]))
    if argv[:1] == ["serve"]:
        from parsing.commands.serve import main as serve

        sys.exit(serve(argv[1:]))
    if argv[:1] in (["index"], ["search"]):
        from parsing.commands.search import index_main, search_main

        sys.exit((index_main if argv[0] == "index" else search_main)(argv[1:]))
    if argv[:1] == ["pseudo-label"]:
        from parsing.commands.pseudo_label import main as pseudo_label

        sys.exit(pseudo_label(argv[1:]))
    if argv[:1] == ["predict"] and any(a.split("=")[0] in ("--config", "--ckpt_path", "-c") for a in argv):
        sys.exit(_predict_moved(argv[1:]))  # the LightningCLI way: say what parses photos instead
    if argv[:1] in (["predict"], ["predict-folder"]):
        sys.exit(predict_main(argv[1:]))
    try:
        from parsing.training.cli import run
    except ImportError as err:  # Lightning and the training packages are the ``train`` extra
        print(
            f"parsing {argv[0] if argv else ''}: training needs the train extra: pip install "
            f"'clothing-parsing[train]' ({err})",
            file=sys.stderr,
        )
        sys.exit(2)
    return run(args)


if __name__ == "__main__":
    main()
