"""``parsing.search.Catalogue`` on a tiny catalogue of CCP photos: build, search by outfit / garment / colour,
add and remove without a rebuild, reopen, and refuse what it cannot read."""

import json
import sqlite3

import numpy as np
import pytest

pytest.importorskip("faiss")

from parsing import Parser  # noqa: E402
from parsing.search import Catalogue  # noqa: E402
from parsing.search.colours import colour_lab  # noqa: E402
from parsing.search.vectors import VectorIndex, ivf_from  # noqa: E402

STEMS = ["0001", "0002", "0003", "0004", "0005", "0006"]


@pytest.fixture(scope="module")
def parser():
    return Parser.load(device="cpu", embed=True)


@pytest.fixture(scope="module")
def built(ccp_root, parser, tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalogue") / "shop"
    photos = [str(ccp_root / "photos" / f"{s}.jpg") for s in STEMS[:4]]
    return Catalogue.build(photos, folder, parser), photos


def test_vectors_come_from_the_same_pass_and_leave_the_mask_alone(ccp_root, parser):
    photo = ccp_root / "photos" / "0003.jpg"
    plain = Parser.load(device="cpu", backend="torch")(photo)
    parse = parser(photo)
    assert (parse.labels == plain.labels).all() and plain.embedding is None
    e = parse.embedding
    assert set(e.garments) == set(parse.garments) - {g for g in parse.garments if g not in e.garments}
    assert abs(np.linalg.norm(e.outfit) - 1) < 1e-5
    for g in e.garments.values():
        assert abs(np.linalg.norm(g.vector) - 1) < 1e-5 and len(g.box) == 4 and 0 < g.share <= 1


def test_build_search_and_reopen(built, parser):
    catalogue, photos = built
    assert len(catalogue) == 4 and photos[0] in catalogue
    outfit = catalogue.search(photos[2], k=3)
    assert outfit[0].photo == photos[2] and outfit[0].score == pytest.approx(1, abs=1e-4)  # itself first
    assert [h.rank for h in outfit] == [1, 2, 3] and outfit[0].score >= outfit[1].score >= outfit[2].score
    coats = catalogue.search(parser(photos[2]), garment="coat", k=10)
    assert coats and all(h.garment == "coat" and len(h.box) == 4 for h in coats)
    held = {row[0] for row in catalogue.db.execute("SELECT photos.photo FROM garments JOIN photos ON photos.id = "
                                                   "garments.photo_id WHERE label = 'coat'")}  # fmt: skip
    assert {h.photo for h in coats} == held  # only photos whose parse holds a coat
    meta = Catalogue.open(catalogue.folder).meta
    assert meta["format"] == "1" and json.loads(meta["names"]) == parser.names and meta["outfit_index"] == "flat"


def test_colour_searches_rank_by_colour(built):
    catalogue, _ = built
    black = catalogue.search(colour="black", k=50)
    labs = [catalogue.db.execute("SELECT l, a, b FROM garments WHERE box = ? AND label = ?",
                                 (json.dumps(list(h.box)), h.garment)).fetchone() for h in black]  # fmt: skip
    distances = [np.linalg.norm(np.array(lab) - colour_lab("black")) for lab in labs]
    assert distances == sorted(distances)
    white_coats = catalogue.search(garment="coat", colour="#ffffff", k=5)
    assert all(h.garment == "coat" for h in white_coats)
    with pytest.raises(ValueError, match="colour 'blurple'"):
        catalogue.search(garment="coat", colour="blurple")
    with pytest.raises(ValueError, match="needs a query photo, a garment or a colour"):
        catalogue.search()


def test_add_and_remove_without_a_rebuild(built, ccp_root, tmp_path):
    catalogue, photos = built
    garments_before = len(catalogue.garments)
    extra = [str(ccp_root / "photos" / f"{s}.jpg") for s in STEMS[4:]]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a photo")
    report = catalogue.add([*extra, photos[0], str(bad)])
    assert (report.added, report.skipped) == (2, 1) and report.failed[0][0] == str(bad)
    assert len(catalogue) == 6 and len(catalogue.outfits) == 6
    assert catalogue.remove([extra[0], "not-in.jpg"]) == 1
    assert extra[0] not in catalogue and len(catalogue.outfits) == 5
    assert all(h.photo != extra[0] for h in catalogue.search(photos[0], k=10))
    reopened = Catalogue.open(catalogue.folder, catalogue.parser)
    assert len(reopened) == 5 and len(reopened.garments) >= garments_before


def test_a_garment_the_query_does_not_show_is_looked_for_where_the_network_ranks_it(built, parser):
    catalogue, photos = built
    parse = parser(photos[0])
    missing = next(n for n in ("bag", "hat", "belt", "scarf") if n not in parse.garments)
    hits = catalogue.search(parse, garment=missing, k=3)
    assert all(h.garment == missing for h in hits)


def test_open_refuses_what_it_cannot_read(tmp_path, built):
    with pytest.raises(FileNotFoundError, match="not a catalogue"):
        Catalogue.open(tmp_path)
    catalogue, _ = built
    with pytest.raises(FileExistsError, match="holds a catalogue already"):
        Catalogue.build([], catalogue.folder)
    newer = tmp_path / "newer"
    newer.mkdir()
    db = sqlite3.connect(newer / "catalogue.sqlite")
    db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('format', '9');")
    db.commit()
    with pytest.raises(ValueError, match="format 9 is newer"):
        Catalogue.open(newer)


def test_a_large_index_becomes_ivf_and_keeps_adds_and_removes(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3000, 16), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    flat = VectorIndex(16)
    flat.add(np.arange(3000) + 10, vectors)
    ivf = VectorIndex(16, ivf_from(flat.index, 16))
    assert ivf.kind == "ivf" and len(ivf) == 3000
    scores, ids = ivf.search(vectors[5], 3)
    assert ids[0] == 15
    assert ivf.remove(np.array([15])) == 1
    assert 15 not in ivf.search(vectors[5], 3)[1]
    ivf.add(np.array([99999]), vectors[5:6])
    assert ivf.search(vectors[5], 1)[1][0] == 99999
    among = np.array([20, 21, 22])
    assert set(ivf.search(vectors[5], 3, among)[1]) <= set(among.tolist())
    ivf.save(tmp_path / "v.faiss")
    assert VectorIndex.load(tmp_path / "v.faiss", 16).kind == "ivf"


def test_the_service_searches_the_catalogue(built, ccp_root):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from parsing.serve.app import Service, create_app

    catalogue, photos = built
    service = Service(Parser.load(device="cpu"), catalogue=catalogue.folder)
    api = TestClient(create_app(service))
    assert api.get("/labels").json()["catalogue"] == len(catalogue)
    photo = (ccp_root / "photos" / "0003.jpg").read_bytes()
    form = {"garment": "coat", "k": "3", "thumbnails": "1"}
    answer = api.post("/search", files={"file": ("q.jpg", photo)}, data=form)
    assert answer.status_code == 200, answer.text
    hits = answer.json()["hits"]
    assert hits and all(h["garment"] == "coat" and h["thumbnail_jpeg"] for h in hits)
    by_colour = api.post("/search", data={"garment": "coat", "colour": "navy"}, files={"unused": ("u", b"")})
    assert by_colour.status_code == 200 and "thumbnail_jpeg" not in by_colour.json()["hits"][0]
    for data, status, message in (
        ({"k": "0", "colour": "red"}, 422, "k 0: give 1 to 100"),
        ({"colour": "blurple"}, 422, "colour 'blurple'"),
        ({"garment": "gown"}, 422, "gown"),
        ({}, 400, "search needs a photo"),
    ):
        bad = api.post("/search", data=data, files={"unused": ("u", b"")})
        assert bad.status_code == status and message in bad.json()["error"], (data, bad.text)
    assert TestClient(create_app(Service(service.parser))).post("/search", data={"colour": "red"}).status_code == 404


def test_entries_round_trip_and_merge_adds_only_new_photos(built, parser, tmp_path):
    from parsing.search.entries import Entry

    catalogue, photos = built
    entries = list(catalogue.entries())
    assert [e.photo for e in entries] == catalogue.photos()
    assert all(Entry.from_json(e.to_json()) == e for e in entries)
    parse = parser(photos[0])
    assert Entry.of(photos[0], parse) == entries[0]  # read back from faiss and SQLite: the vectors as added
    other = Catalogue.build([photos[0]], tmp_path / "other", parser)
    report = other.merge(catalogue)
    assert (report.added, report.skipped) == (len(entries) - 1, 1)
    assert sorted(e.to_json() for e in other.entries()) == sorted(e.to_json() for e in entries)
    assert other.search(photos[2], k=1)[0].photo == photos[2]


def test_a_catalogue_of_0_6_0_weights_is_reweighed_in_place_on_open(built, parser, tmp_path):
    from parsing.outputs.embedding import FIRST_OUTFIT_WEIGHTS, OUTFIT_WEIGHTS, reweigh_outfits

    catalogue, photos = built
    old = Catalogue.build(photos[:2], tmp_path / "old", parser)
    ids = [row[0] for row in old.db.execute("SELECT id FROM photos ORDER BY id")]
    now = old.outfits.get(ids)
    k, c = len(old.names), int(old.meta["garment_dim"]) - 6
    sizes = [now.shape[1] - c - 2 * k, c, k, k]
    as_made = reweigh_outfits(now, sizes, OUTFIT_WEIGHTS, FIRST_OUTFIT_WEIGHTS)  # what 0.6.0 stored
    assert not np.allclose(as_made, now, atol=1e-3)
    old.outfits.remove(np.array(ids))
    old.outfits.add(np.array(ids), as_made)
    old.save()
    with old.db:
        old.db.execute("DELETE FROM meta WHERE key = 'outfit_weights'")  # 0.6.0 recorded none
    again = Catalogue.open(tmp_path / "old", parser)
    assert np.allclose(again.outfits.get(ids), now, atol=1e-5)
    assert json.loads(again.meta["outfit_weights"]) == OUTFIT_WEIGHTS
    assert again.search(photos[1], k=1)[0].photo == photos[1]
