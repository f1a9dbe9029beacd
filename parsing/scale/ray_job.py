"""Parsing photos on a Ray cluster with Ray Data: an actor pool of ``Parser``s, outputs written by the actors.

``parse_dataset(dataset, output, …)`` takes a Ray Dataset of rows ``{"path", "key", "garments"}`` (``key``: the
output name without suffix; ``garments``: a list or None) and yields one row per photo: ``{"path", "record",
"error"}`` — ``record`` is the ``summary.jsonl`` line (JSON text) the actor's ``Parse.save`` returned, ``error`` a
problem for a photo that could not be read or parsed. Each actor loads the model once, reads its photos, parses
them ``batch_size`` at a time and writes masks/overlays/… atomically into ``output`` (a folder every node sees);
the driver alone appends the summary, so a photo's line is written once even when Ray retries a failed actor's
work (``max_restarts``/``max_task_retries``: a killed actor is restarted and its batch parsed again, its files
rewritten atomically).

``parsing-predict PHOTOS -o OUT --ray local`` (a local instance) or ``--ray auto`` / ``--ray ray://HOST:10001``
(a cluster) runs this under the command's input collection, resume and logs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

CRASH_ONCE = "PARSING_RAY_TEST_CRASH_ONCE"  # tests: an actor exits once (this marker file absent) after one batch


class ParseActor:
    """A ``Parser`` in a Ray actor: a batch of rows → their summary records (or errors), files written."""

    def __init__(self, parser_options: dict[str, Any], output: str, save_options: dict[str, Any]) -> None:
        import torch

        from parsing.inference.parser import Parser
        from parsing.tuning import tune_process

        threads = parser_options.pop("threads", None)
        if threads:
            torch.set_num_threads(threads)  # as many as the actor's CPUs: actors on one node do not fight
        self.parser = Parser.load(**parser_options)
        tune_process()
        self.output, self.save_options = Path(output), save_options

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from parsing.outputs.parse import save_result

        paths, keys = list(batch["path"]), list(batch["key"])
        results = self.parser.parse_inputs(paths, [json.loads(g) for g in batch["garments"]])
        records, errors = [], []
        for key, result in zip(keys, results, strict=True):
            record, problem = save_result(result, self.output, key, **self.save_options)
            records.append("" if record is None else json.dumps(record))
            errors.append(problem or "")
        marker = os.environ.get(CRASH_ONCE)
        if marker and not Path(marker).exists():
            Path(marker).write_text("crashed once")
            os._exit(1)  # the actor dies mid-run, its batch unreported: Ray restarts it and retries the batch
        return {"path": np.array(paths), "record": np.array(records), "error": np.array(errors)}


def connect(address: str) -> None:
    """``local``: start a local Ray instance (every core; no dashboard); else join ``address`` (``auto``,
    ``ray://host:10001``)."""
    import ray
    import ray.data

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if address == "local":
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="warning")
    else:
        ray.init(address=address, log_to_driver=False, logging_level="warning")
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def parse_dataset(
    dataset: Any,
    output: str | Path,
    parser_options: dict[str, Any] | None = None,
    save_options: dict[str, Any] | None = None,
    actors: int = 1,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
    batch_size: int = 4,
) -> Iterator[dict[str, str]]:
    """Rows ``{"path", "key", "garments"}`` (garments as JSON text: a list, or ``null``) → ``{"path", "record",
    "error"}`` per photo, as the actors finish them (see the module's docstring)."""
    import ray.data

    options = {"device": "cuda" if gpus_per_actor > 0 else "cpu", **(parser_options or {})}
    options.setdefault("threads", max(1, round(cpus_per_actor)))
    parsed = dataset.map_batches(
        ParseActor,
        fn_constructor_kwargs={"parser_options": options, "output": str(output), "save_options": save_options or {}},
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor,
    )  # Ray Data restarts a dead actor and retries its batch by default (max_restarts, max_task_retries: -1)
    for row in parsed.iter_rows():
        yield {"path": str(row["path"]), "record": str(row["record"]), "error": str(row["error"])}


def rows_for(jobs: list[tuple[Path, Path]], tags: dict[str, list[str]], every: list[str] | None) -> list[dict]:
    """parsing-predict's jobs → the rows ``parse_dataset`` takes."""
    return [
        {"path": str(photo), "key": key.as_posix(), "garments": json.dumps(tags.get(str(photo), every))}
        for photo, key in jobs
    ]


def cpus_per_actor(address: str, actors: int, given: float | None) -> float:
    """``--ray-cpus-per-actor``, or by default 1 — on a local instance at most what leaves half a core free (with
    every core held by actors, Ray Data's own tasks can wait forever on a 2-core machine)."""
    if given is not None:
        return given
    if address == "local":
        return max(0.25, min(1.0, ((os.cpu_count() or 2) - 0.5) / actors))
    return 1.0


def predict_on_ray(
    args: Any, loads: dict[str, Any], save: dict[str, Any], todo: list, tags: dict, every: Any, out: Any, fail: Any
) -> int:
    """``parsing-predict --ray``: the photos still to do, parsed by the actors (each a ``Parser.load(**loads)``,
    ``save``: ``Parse.save``'s options); the driver appends the summary and reports failures (``fail``) as the local
    loop does. Returns how many photos were parsed."""
    import ray.data

    connect(args.ray)
    cpus = cpus_per_actor(args.ray, args.ray_actors, args.ray_cpus_per_actor)
    dataset = ray.data.from_items(rows_for(todo, tags, every)) if todo else None
    written = 0
    rows = () if dataset is None else parse_dataset(
        dataset, out.root, loads, save, args.ray_actors, cpus, args.ray_gpus_per_actor, args.batch_size
    )  # fmt: skip
    for row in rows:
        if row["error"]:
            fail({"file": row["path"], "error": row["error"]})
        else:
            out.append(out.summary, json.loads(row["record"]))
            written += 1
    return written
