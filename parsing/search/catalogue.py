"""``Catalogue``: photos searchable by outfit, by garment and by colour, on the parse's own vectors.

A catalogue is a folder: ``catalogue.sqlite`` (the photos, their garments with share, box and mean colour, and what
made them: format, checkpoint and its SHA-256, label names, vector sizes, index kinds) and two faiss indexes,
``outfits.faiss`` (one vector per photo) and ``garments.faiss`` (one per garment), under the SQLite row ids.
Adds and removes change both in place; a folder of a newer format is refused with a message.

    cat = Catalogue.build(["a.jpg", "b.jpg"], "shop.catalogue")
    cat.search("query.jpg")                                  # outfits like this one
    cat.search("query.jpg", garment="coat")                  # this photo's coat, in other photos
    cat.search("query.jpg", garment="coat", colour="red")    # … in red
    cat.search(garment="dress", colour="#1f3a93")            # dresses, nearest that colour first
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parsing.outputs.embedding import FIRST_OUTFIT_WEIGHTS, OUTFIT_WEIGHTS, GarmentVector, reweigh_outfits
from parsing.search.colours import colour_lab, delta_e
from parsing.search.entries import Entry
from parsing.search.vectors import VectorIndex

FORMAT = 1  # the folder layout; a later version reads this one or refuses with a message
COLOUR_WEIGHT = 1 / 40  # a colour search: similarity minus ΔE × this (ΔE 40 outweighs any vector difference)
SAVE_EVERY = 500  # photos between saves while adding (an interrupted add keeps what was saved)
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS photos (id INTEGER PRIMARY KEY, photo TEXT UNIQUE NOT NULL, width INTEGER, height INTEGER,
                                   outfit TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS garments (id INTEGER PRIMARY KEY, photo_id INTEGER NOT NULL, label TEXT NOT NULL,
                                     share REAL, box TEXT, l REAL, a REAL, b REAL);
CREATE INDEX IF NOT EXISTS garments_label ON garments (label);
CREATE INDEX IF NOT EXISTS garments_photo ON garments (photo_id);
"""


@dataclass(frozen=True)
class Hit:
    """One search result: ``photo`` as it was added, ``score`` (higher is nearer), the ``garment`` and its ``box``
    (x, y, w, h in the photo's pixels) for garment searches."""

    rank: int
    photo: str
    score: float
    garment: str | None = None
    box: tuple[int, int, int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "photo": self.photo, "garment": self.garment, "score": round(self.score, 4),
                "box": None if self.box is None else list(self.box)}  # fmt: skip


@dataclass
class AddReport:
    """What ``add`` did: photos ``added``, ``skipped`` (already in), ``failed`` ((photo, problem) pairs)."""

    added: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] | None = None


class Catalogue:
    """Photos, their outfits and garments, searchable; see the module's docstring."""

    def __init__(self, folder: Path, db: sqlite3.Connection, parser: Any = None) -> None:
        self.folder, self.db, self._parser = Path(folder), db, parser
        self.meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        self.names: list[str] = json.loads(self.meta["names"])
        self.outfits = self._index("outfits", int(self.meta["outfit_dim"]))
        self.garments = self._index("garments", int(self.meta["garment_dim"]))
        self._reweigh()

    # --- making and opening --------------------------------------------------------------------------------
    @classmethod
    def build(cls, photos: Iterable[Any], folder: str | Path, parser: Any = None, **add: Any) -> Catalogue:
        """A new catalogue in ``folder`` (empty or new) of ``photos``; ``parser``: a ``Parser`` made with
        ``embed=True`` (default: the shipped model's)."""
        folder = Path(folder)
        if (folder / "catalogue.sqlite").exists():
            raise FileExistsError(f"{folder}: holds a catalogue already (Catalogue.open it, then add)")
        folder.mkdir(parents=True, exist_ok=True)
        parser = parser or _default_parser()
        if not parser.options.embed:
            raise ValueError("the catalogue's parser needs embed=True (Parser.load(..., embed=True))")
        probe = parser(np.full((64, 48, 3), 128, np.uint8))  # the vectors' sizes, from the network itself
        db = sqlite3.connect(folder / "catalogue.sqlite", check_same_thread=False)
        db.executescript(SCHEMA)
        from parsing import __version__
        from parsing.model.backends import file_digest

        meta = {
            "format": str(FORMAT),
            "made_by": f"parsing {__version__}",
            "checkpoint": str(parser.checkpoint),
            "checkpoint_sha256": file_digest(Path(parser.checkpoint)),
            "names": json.dumps(parser.names),
            "outfit_dim": str(len(probe.embedding.outfit)),
            "garment_dim": str(_garment_dim(parser)),
            "outfit_weights": json.dumps(OUTFIT_WEIGHTS),
        }
        db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        db.commit()
        catalogue = cls(folder, db, parser)
        catalogue.add(photos, **add)
        return catalogue

    @classmethod
    def open(cls, folder: str | Path, parser: Any = None) -> Catalogue:
        """An existing catalogue; a folder without one, or of a newer format, is an error naming it."""
        folder = Path(folder)
        path = folder / "catalogue.sqlite"
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: not a catalogue (no catalogue.sqlite; make one with parsing index)")
        db = sqlite3.connect(path, check_same_thread=False)
        try:
            version = int(dict(db.execute("SELECT key, value FROM meta").fetchall())["format"])
        except (sqlite3.DatabaseError, KeyError, ValueError) as err:
            raise ValueError(f"{path}: not a readable catalogue ({err})") from None
        if version > FORMAT:
            raise ValueError(f"{folder}: catalogue format {version} is newer than this parsing reads ({FORMAT})")
        return cls(folder, db, parser)

    def _reweigh(self) -> None:
        """Outfit vectors stored with other part weights than this version's (0.6.0's) brought to them in place:
        the parts are unit vectors, so no photo is parsed again."""
        stored = json.loads(self.meta.get("outfit_weights", json.dumps(FIRST_OUTFIT_WEIGHTS)))
        if stored == OUTFIT_WEIGHTS:
            return
        ids = [row[0] for row in self.db.execute("SELECT id FROM photos ORDER BY id")]
        if ids:
            k, c = len(self.names), int(self.meta["garment_dim"]) - 6
            sizes = [int(self.meta["outfit_dim"]) - c - 2 * k, c, k, k]
            vectors = reweigh_outfits(self.outfits.get(ids), sizes, stored, OUTFIT_WEIGHTS)
            self.outfits.remove(np.array(ids))
            self.outfits.add(np.array(ids), vectors)
            self.save()
        self.mark("outfit_weights", json.dumps(OUTFIT_WEIGHTS))

    def _index(self, name: str, dim: int) -> VectorIndex:
        path = self.folder / f"{name}.faiss"
        return VectorIndex.load(path, dim) if path.exists() else VectorIndex(dim)

    @property
    def parser(self) -> Any:
        """The parser queries go through: the catalogue's checkpoint, ``embed=True`` (made on first use)."""
        if self._parser is None:
            from parsing import Parser

            self._parser = Parser.load(self.meta["checkpoint"], embed=True)
        return self._parser

    # --- contents ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM photos").fetchone()[0])

    def __contains__(self, photo: object) -> bool:
        return self.db.execute("SELECT 1 FROM photos WHERE photo = ?", (str(photo),)).fetchone() is not None

    def photos(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT photo FROM photos ORDER BY id")]

    def add(
        self,
        photos: Iterable[Any],
        progress: Callable[[str, str | None], None] | None = None,
        ray: dict[str, Any] | None = None,
    ) -> AddReport:
        """Parse and add photos (paths; a photo already in is skipped, one that cannot be read is reported and
        skipped); ``progress(photo, problem or None)`` after each. ``ray``: parse on Ray actors instead,
        ``{"address": "local" | "auto" | "ray://…", "actors": 2, "cpus": 1.0}`` (the catalogue comes out the same)."""
        report, todo = self._new(photos, progress)
        if ray is not None:
            from parsing.scale.ray_index import entries_on_ray

            found = entries_on_ray([str(p) for p in todo], self.meta["checkpoint"], **ray)
        else:
            parses = self.parser.parse_stream((p, None) for p in todo)
            found = ((str(p), Entry.of(p, r) if r.ok else r.problem) for p, r in zip(todo, parses, strict=True))
        return self.add_entries(found, report, progress)

    def _new(self, photos: Iterable[Any], progress: Callable[[str, str | None], None] | None) -> tuple[AddReport, list]:
        """A report counting the photos already in, and the photos still to add."""
        report, todo = AddReport(failed=[]), []
        for photo in photos:
            if str(photo) in self:
                report.skipped += 1
                if progress:
                    progress(str(photo), None)
            else:
                todo.append(photo)
        return report, todo

    def add_entries(
        self,
        found: Iterable[tuple[str, Entry | str]],
        report: AddReport | None = None,
        progress: Callable[[str, str | None], None] | None = None,
    ) -> AddReport:
        """(photo, its ``Entry`` or the problem that kept it out) pairs → added, saved every ``SAVE_EVERY``."""
        report = report or AddReport(failed=[])
        batch: list[Entry] = []
        for photo, entry in found:
            if isinstance(entry, str):
                report.failed.append((photo, entry))
            else:
                batch.append(entry)
                report.added += 1
            if progress:
                progress(photo, entry if isinstance(entry, str) else None)
            if len(batch) >= SAVE_EVERY:
                self._insert(batch)
                batch = []
        self._insert(batch)
        return report

    def add_parses(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        """(photo name, its parse) pairs — parses made with ``embed=True`` by the catalogue's checkpoint, e.g. by a
        ``parsing-predict`` of your own — added without parsing again."""
        self._insert([Entry.of(photo, parse) for photo, parse in pairs])

    def entries(self) -> Iterator[Entry]:
        """Every photo's entry, in the order added (vectors read back from the indexes)."""
        photos = self.db.execute("SELECT id, photo, width, height, outfit FROM photos ORDER BY id").fetchall()
        sql = "SELECT id, label, share, box, l, a, b FROM garments WHERE photo_id = ? ORDER BY id"
        for pid, photo, width, height, outfit in photos:
            rows = self.db.execute(sql, (pid,)).fetchall()
            vectors = self.garments.get([r[0] for r in rows])
            garments = [GarmentVector(r[1], v, np.array(r[4:7], np.float32), r[2], tuple(json.loads(r[3])))
                        for r, v in zip(rows, vectors, strict=True)]  # fmt: skip
            yield Entry(photo, width, height, json.loads(outfit), self.outfits.get([pid])[0], garments)

    def merge(self, other: Catalogue) -> AddReport:
        """Add ``other``'s photos (made by the same checkpoint) that are not in this one, without parsing again."""
        if other.meta["checkpoint_sha256"] != self.meta["checkpoint_sha256"]:
            raise ValueError(f"{other.folder}: made by another model than {self.folder} ({other.meta['checkpoint']})")
        report = AddReport(failed=[])
        fresh = []
        for entry in other.entries():
            if entry.photo in self:
                report.skipped += 1
            else:
                fresh.append((entry.photo, entry))
        return self.add_entries(fresh, report)

    def _insert(self, entries: list[Entry]) -> None:
        outfit_ids, outfit_vectors, garment_ids, garment_vectors = [], [], [], []
        with self.db:
            for e in entries:
                cursor = self.db.execute(
                    "INSERT INTO photos (photo, width, height, outfit) VALUES (?, ?, ?, ?)",
                    (e.photo, e.width, e.height, json.dumps(e.outfit)),
                )
                outfit_ids.append(cursor.lastrowid)
                outfit_vectors.append(e.vector)
                for g in e.garments:
                    row = (cursor.lastrowid, g.label, g.share, json.dumps(list(g.box)), *map(float, g.lab))
                    garment_ids.append(
                        self.db.execute(
                            "INSERT INTO garments (photo_id, label, share, box, l, a, b) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            row,
                        ).lastrowid
                    )
                    garment_vectors.append(g.vector)
        if outfit_ids:
            self.outfits.add(np.array(outfit_ids), np.stack(outfit_vectors))
        if garment_ids:
            self.garments.add(np.array(garment_ids), np.stack(garment_vectors))
        self.save()

    def remove(self, photos: Iterable[Any]) -> int:
        """Remove photos (as added); returns how many were in."""
        names = [str(p) for p in photos]
        found = [row for name in names for row in self.db.execute("SELECT id FROM photos WHERE photo = ?", (name,))]
        ids = [row[0] for row in found]
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        garment_ids = [r[0] for r in self.db.execute(f"SELECT id FROM garments WHERE photo_id IN ({marks})", ids)]
        with self.db:
            self.db.execute(f"DELETE FROM garments WHERE photo_id IN ({marks})", ids)
            self.db.execute(f"DELETE FROM photos WHERE id IN ({marks})", ids)
        self.outfits.remove(np.array(ids))
        self.garments.remove(np.array(garment_ids))
        self.save()
        return len(ids)

    def save(self) -> None:
        self.outfits.save(self.folder / "outfits.faiss")
        self.garments.save(self.folder / "garments.faiss")
        with self.db:
            for key, value in (("outfit_index", self.outfits.kind), ("garment_index", self.garments.kind)):
                self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def mark(self, key: str, value: str) -> None:
        """Record ``key`` = ``value`` in the catalogue's metadata (e.g. ``shard_done``)."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        self.meta[key] = value

    # --- search --------------------------------------------------------------------------------------------
    def search(
        self, query: Any = None, garment: str | None = None, colour: str | None = None, k: int = 10
    ) -> list[Hit]:
        """``query``: a photo (path, array, PIL image) or its ``Parse`` (``embed=True``), or None; ``garment``: a
        garment of the query photo to find elsewhere (without a query: that garment's photos); ``colour``: a
        colour name or ``#hex`` the hits should have. See the module's docstring."""
        if query is None and garment is None and colour is None:
            raise ValueError("search needs a query photo, a garment or a colour")
        label, target = self.resolve(garment, colour)
        if query is None:
            return self._by_colour(label, target, k)
        parse = query if hasattr(query, "embedding") else self.parser(query)
        if parse.embedding is None:
            raise ValueError("the query's parse has no vectors: parse it with embed=True")
        if label is None:
            scores, ids = self.outfits.search(parse.embedding.outfit, k)
            rows = {r[0]: r[1] for r in self._rows("SELECT id, photo FROM photos WHERE id IN ({})", ids)}
            return [Hit(i + 1, rows[int(j)], float(s)) for i, (s, j) in enumerate(zip(scores, ids, strict=True))]
        vector = self._garment_vector(parse, label)
        among = np.array([r[0] for r in self.db.execute("SELECT id FROM garments WHERE label = ?", (label,))])
        scores, ids = self.garments.search(vector, k if target is None else max(10 * k, 100), among)
        hits = self._garment_hits(ids, scores, target)
        return hits[:k]

    def resolve(self, garment: str | None, colour: str | None) -> tuple[str | None, np.ndarray | None]:
        """``garment`` as one of this catalogue's labels and ``colour`` as its CIELAB target (None stays None); a
        ValueError names a bad one. ``search`` starts with this; a caller checks its options with it once."""
        return None if garment is None else self._label(garment), None if colour is None else colour_lab(colour)

    def _label(self, garment: str) -> str:
        if garment in self.names:
            return garment
        from parsing.inference.label_view import resolve_garments

        return resolve_garments([garment], self.names)[0]

    def _garment_vector(self, parse: Any, label: str) -> np.ndarray:
        """The query photo's ``label`` vector; where its mask shows no such garment, the photo parsed again
        allowed only that garment (the region the network ranks it highest)."""
        found = parse.embedding.garments.get(label)
        if found is None:
            only = self.parser.replace(min_share=0.0)  # no speck removal: a small garment stays
            found = only(parse.image, garments=[label]).embedding.garments.get(label)
        if found is None:
            raise ValueError(f"the query photo shows no {label}, even when only {label} is allowed")
        return found.vector

    def _rows(self, sql: str, ids: Iterable[Any]) -> list[tuple]:
        ids = [int(i) for i in ids]
        return self.db.execute(sql.format(",".join("?" * len(ids))), ids).fetchall() if ids else []

    def _garment_hits(self, ids: np.ndarray, scores: np.ndarray, target: np.ndarray | None) -> list[Hit]:
        sql = (
            "SELECT garments.id, photos.photo, garments.label, garments.box, garments.l, garments.a, garments.b "
            "FROM garments JOIN photos ON photos.id = garments.photo_id WHERE garments.id IN ({})"
        )
        rows = {r[0]: r for r in self._rows(sql, ids)}
        found = [(float(s), rows[int(i)]) for s, i in zip(scores, ids, strict=True) if int(i) in rows]
        if target is not None:
            found = [(s - COLOUR_WEIGHT * float(delta_e(np.array(r[4:7]), target)), r) for s, r in found]
            found.sort(key=lambda item: -item[0])
        return [Hit(n + 1, r[1], s, r[2], tuple(json.loads(r[3]))) for n, (s, r) in enumerate(found)]

    def _by_colour(self, label: str | None, target: np.ndarray | None, k: int) -> list[Hit]:
        """No query photo: the garments of ``label`` (or all), nearest ``target`` first (or largest)."""
        sql = "SELECT garments.id, photos.photo, garments.label, garments.box, garments.l, garments.a, garments.b, "
        sql += "share FROM garments JOIN photos ON photos.id = garments.photo_id"
        rows = self.db.execute(sql + (" WHERE label = ?" if label else ""), (label,) if label else ()).fetchall()
        if not rows:
            return []
        if target is None:
            scores = np.array([r[7] for r in rows])
        else:
            scores = -COLOUR_WEIGHT * delta_e(np.array([r[4:7] for r in rows]), target)
        order = np.argsort(-scores, kind="stable")[:k]
        return [Hit(n + 1, rows[i][1], float(scores[i]), rows[i][2], tuple(json.loads(rows[i][3])))
                for n, i in enumerate(order)]  # fmt: skip


def _default_parser() -> Any:
    from parsing import Parser

    return Parser.load(embed=True)


def _garment_dim(parser: Any) -> int:
    """The garment vectors' size: the decoder's channels + colour (3) + shape (3)."""
    import torch

    decoded = parser.backend.embed(torch.zeros(1, 3, 64, 64))[2]
    return int(decoded.shape[1]) + 6
