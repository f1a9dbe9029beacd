"""``parsing index`` / ``parsing search``: a resumable index that reports bad files, JSON lines, a contact sheet."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    for option in (["--garment", "drss"], ["--colour", "redish"]):  # said once, before any query photo
        assert search_main([str(catalogue), query, str(photos / "0001.jpg"), *option]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and option[1] in err[0] and "jpg" not in err[0]


def index(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "parsing", "index", "--no-progress", *args]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def contents(folder: Path) -> dict:
    """photo → (size, garment list, garment rows, outfit vector, garment vectors) of a catalogue."""
    from parsing.search import Catalogue

    found = {}
    for e in Catalogue.open(folder).entries():
        rows = [(g.label, round(g.share, 5), g.box) for g in e.garments]
        found[e.photo] = (e.width, e.height, e.outfit, rows, e.vector, [g.vector for g in e.garments])
    return found


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k][:4] == b[k][:4]
        and np.allclose(a[k][4], b[k][4], atol=1e-4)
        and all(np.allclose(x, y, atol=1e-4) for x, y in zip(a[k][5], b[k][5], strict=True))
        for k in a
    )


@pytest.mark.slow
def test_two_shards_merged_and_ray_give_the_catalogue_of_one_process(ccp_root, tmp_path):
    pytest.importorskip("ray.data")
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in sorted((ccp_root / "photos").glob("*.jpg"))[:8]:
        with Image.open(path) as im:  # one size: batches are unpadded however they are formed
            im.convert("RGB").resize((200, 300)).save(photos / path.name, quality=92)
    one = index(str(photos), "-o", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-2000:]
    sharded = tmp_path / "sharded"
    first = index(str(photos), "-o", str(sharded), "--shard", "0/2")
    assert first.returncode == 0, first.stderr[-2000:]
    early = index("--merge", "-o", str(sharded))  # shard 1 not made yet: nothing merged, the shard named
    assert early.returncode == 2 and "1-of-2" in early.stderr and not (sharded / "catalogue.sqlite").exists()
    assert index(str(photos), "-o", str(sharded), "--shard", "1/2").returncode == 0
    merged = index("--merge", "-o", str(sharded))
    assert merged.returncode == 0 and "2 shards merged, 8 photos added" in merged.stderr, merged.stderr[-2000:]
    assert not (sharded / "shards").exists()
    ray = index(str(photos), "-o", str(tmp_path / "ray"), "--ray", "local", "--ray-actors", "2")
    assert ray.returncode == 0, ray.stderr[-3000:]
    reference = contents(tmp_path / "one")
    assert len(reference) == 8
    assert same(contents(sharded), reference)
    assert same(contents(tmp_path / "ray"), reference)
    from parsing.search import Catalogue

    assert Catalogue.open(tmp_path / "ray").photos() == Catalogue.open(tmp_path / "one").photos()  # photos' order
