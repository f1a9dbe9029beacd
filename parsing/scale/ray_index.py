"""Indexing photos on Ray: actors parse with the catalogue's model and send back ``Entry``s; this process adds them.

``parsing index PHOTOS -o CATALOGUE --ray local`` (or ``auto``, ``ray://HOST:10001``). The catalogue is written by
the driver alone, in the photos' order, so a Ray run gives the same catalogue as one process; an actor that dies
is restarted and its batch parsed again (Ray Data's retries), its entries sent once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from parsing.scale.ray_job import connect, cpus_per_actor


class EmbedActor:
    """A ``Parser`` with ``embed=True`` in a Ray actor: a batch of photo paths → their entries (JSON) or problems."""

    def __init__(self, checkpoint: str, threads: int) -> None:
        import torch

        from parsing.inference.parser import Parser
        from parsing.tuning import tune_process

        torch.set_num_threads(threads)
        self.parser = Parser.load(checkpoint, embed=True)
        tune_process()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from parsing.search.entries import Entry

        paths = [str(p) for p in batch["path"]]
        parses = self.parser.parse_inputs(paths, [None] * len(paths))
        entries = [Entry.of(p, r).to_json() if r.ok else "" for p, r in zip(paths, parses, strict=True)]
        errors = ["" if r.ok else r.problem for r in parses]
        return {"path": np.array(paths), "entry": np.array(entries), "error": np.array(errors)}


def entries_on_ray(
    photos: list[str], checkpoint: str, address: str, actors: int = 1, cpus: float | None = None, batch_size: int = 4
) -> Iterator[tuple[str, Any]]:
    """(photo, ``Entry`` or problem) for each photo, in the order given, parsed by ``actors`` Ray actors."""
    import ray.data

    from parsing.search.entries import Entry

    if not photos:
        return
    connect(address)
    cpus = cpus_per_actor(address, actors, cpus)
    parsed = ray.data.from_items([{"path": p} for p in photos]).map_batches(
        EmbedActor,
        fn_constructor_kwargs={"checkpoint": checkpoint, "threads": max(1, round(cpus))},
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus,
    )
    waiting: dict[str, tuple[str, str]] = {}  # results that arrived before an earlier photo's
    order = iter(photos)
    nxt = next(order)
    for row in parsed.iter_rows():
        waiting[str(row["path"])] = (str(row["entry"]), str(row["error"]))
        while nxt in waiting:
            entry, error = waiting.pop(nxt)
            yield nxt, error if error else Entry.from_json(entry)
            nxt = next(order, None)
    if nxt is not None:  # Ray lost rows: should not happen; report them rather than drop them silently
        for photo in [nxt, *order]:
            yield photo, json.dumps("not returned by the Ray actors")[1:-1]
