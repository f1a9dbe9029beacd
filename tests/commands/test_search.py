"""``parsing index`` / ``parsing search``: a resumable index that reports bad files, JSON lines, a contact sheet."""

import json

import pytest
from PIL import Image

pytest.importorskip("faiss")

from parsing.commands.search import index_main, search_main  # noqa: E402


def test_index_resumes_reports_bad_files_and_search_prints_json_lines(ccp_root, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for stem in ("0001", "0002", "0003"):
        (photos / f"{stem}.jpg").write_bytes((ccp_root / "photos" / f"{stem}.jpg").read_bytes())
    (photos / "broken.jpg").write_bytes(b"not a photo")
    catalogue = tmp_path / "shop.catalogue"
    assert index_main([str(photos), "-o", str(catalogue), "--no-progress"]) == 1  # one photo could not be read
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "3 added, 0 already in, 1 unreadable" in err
    assert json.loads((catalogue / "errors.jsonl").read_text().splitlines()[0])["file"].endswith("broken.jpg")
    (photos / "broken.jpg").unlink()
    assert index_main([str(photos), "-o", str(catalogue), "--no-progress"]) == 0
    assert "0 added, 3 already in" in capsys.readouterr().err
    query = str(photos / "0003.jpg")
    sheet = tmp_path / "sheet.jpg"
    assert search_main([str(catalogue), query, "-k", "2", "--sheet", str(sheet)]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["query"] == query and [h["rank"] for h in line["hits"]] == [1, 2]
    assert line["hits"][0]["photo"] == query and set(line["hits"][0]) == {"rank", "photo", "garment", "score", "box"}
    assert Image.open(sheet).size == (3 * 200, 200)
    assert search_main([str(catalogue), "--garment", "coat", "--colour", "black", "-k", "5"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits and all(h["garment"] == "coat" and len(h["box"]) == 4 for h in hits)
    assert search_main([str(tmp_path / "nothing"), query]) == 2
    assert "not a catalogue" in capsys.readouterr().err
