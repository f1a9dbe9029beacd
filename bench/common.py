"""Shared by the benchmark scripts (run as ``python bench/<name>.py``, which puts this folder on the path)."""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository


def shown(path: str | Path) -> str:
    """A path as recorded in results: relative to the repository when inside it, else its file name, so committed
    results name no machine's folders."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return path.name


def model_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """The options of the benchmarks that score checkpoints on the CCP validation photos."""
    from parsing.commands.inputs import add_input_size
    from parsing.model.checkpoint import SHIPPED as DEFAULT_CHECKPOINT

    parser.add_argument("--checkpoints", type=Path, nargs="+", default=[DEFAULT_CHECKPOINT])
    parser.add_argument("--names", nargs="+", default=None, help="one short name per checkpoint")
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "ccp"))
    parser.add_argument("--crf", choices=("none", "fast", "dense"), default="fast")
    parser.add_argument("--limit", type=int, default=None, help="first N validation photos only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend", default="auto", help="the network's backend (auto, torch, onnxruntime, openvino)")
    parser.add_argument("--precision", default="auto", help="auto, fp32, mixed, bf16 or int8 (parsing-predict --help)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--name", default=name, help="file stem of the results")
    add_input_size(parser, "the network input box for every checkpoint (default: each checkpoint's)")


def load_parser(checkpoint: str | Path, input_size: list[int] | None = None, **options):  # noqa: ANN201
    """A ``parsing.Parser`` for a checkpoint on the CPU, at ``input_size`` or its own network box."""
    from parsing import Parser

    return Parser.load(checkpoint, device="cpu", input_size=input_size, **options)


def checkpoint_names(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """``--names``, or the checkpoints' file stems; one per checkpoint."""
    names = args.names or [Path(c).stem for c in args.checkpoints]
    if len(names) != len(args.checkpoints):
        parser.error(f"{len(args.checkpoints)} checkpoints but {len(names)} names")
    return names


def validation_photos(root: str, limit: int | None = None) -> list:
    """The CCP validation split's (photo, mask) items (seed 0, 10 %), the first ``limit``."""
    from parsing.data.datamodule import ParsingDataModule

    dm = ParsingDataModule(root=root, num_workers=0)
    return dm.split(dm.items())[1][:limit]


# Meta keys that older result files lack, with the value they were scored with.
META_DEFAULTS = {"tta": "none", "refocus": 0.0}


def previous_models(
    parser: argparse.ArgumentParser, path: Path | None, expected: dict, names: Sequence[str] = ()
) -> list[dict]:
    """The models of an earlier result JSON (``--previous``; none without one) other than those in ``names``, which
    are scored anew. Refused when its meta differs from ``expected``: a list value must be a subset of the earlier
    one (framings), any other value equal."""
    if path is None:
        return []
    previous = json.loads(path.read_text())
    meta = previous["meta"]

    def differs(key: str, value: object) -> bool:
        if isinstance(value, list):
            return not set(value) <= set(meta.get(key, ()))
        return meta.get(key, META_DEFAULTS.get(key)) != value

    other = [key for key, value in expected.items() if differs(key, value)]
    if other:
        parser.error(f"{path}: scored with another {', '.join(other)} than this run")
    return [m for m in previous["models"] if m["name"] not in names]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the architecture where it is not known."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def machine() -> dict[str, str]:
    import torch

    return {"cpu": f"{cpu_model()}, {torch.get_num_threads()} torch threads", "torch": torch.__version__}


def write_results(folder: Path, name: str, result: dict, markdown: Callable[[dict], str]) -> None:
    """``folder/name.json`` and ``folder/name.md``; the table is printed too."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (folder / f"{name}.md").write_text(markdown(result))
    print(markdown(result))
