"""Several ``parsing-predict`` processes on one output folder: shards, and two plain runs at once, give one summary
line per photo and the masks of a single run."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from parsing.commands.inputs import in_shard
from parsing.outputs.folder import OutputFolder

PHOTOS = 30


def test_shards_partition_the_photos_stably():
    keys = [Path(f"look/{i:04d}") for i in range(200)]
    shards = [[k for k in keys if in_shard(k, i, 3)] for i in range(3)]
    assert sorted(sum(shards, [])) == sorted(keys) and all(shards)  # disjoint (sum of sizes) and covering
    assert [k for k in keys[::-1] if in_shard(k, 1, 3)] == shards[1][::-1]  # the order of listing does not matter


def test_a_claim_is_held_until_released_and_freed_when_its_owner_dies(tmp_path):
    out = OutputFolder(tmp_path)
    claim = out.claim(Path("a/b"))
    assert claim is not None and out.claim(Path("a/b")) is None  # another open file description: refused
    code = "import sys; from pathlib import Path; from parsing.outputs.folder import OutputFolder; "
    code += f"sys.exit(0 if OutputFolder(Path({str(tmp_path)!r})).claim(Path('a/b')) is None else 1)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0  # held: another process is refused
    out.release(claim, finished=True)
    assert not (tmp_path / ".claims" / "a" / "b.lock").exists() and out.claim(Path("a/b")) is not None


@pytest.fixture(scope="module")
def photos(ccp_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for path in sorted((ccp_root / "photos").glob("*.jpg"))[:PHOTOS]:
        with Image.open(path) as im:  # one size: every batch is unpadded, whoever parses which photos
            im.convert("RGB").resize((160, 240)).save(folder / path.name, quality=92)
    return folder


def run(photos: Path, out: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "parsing.commands.predict", str(photos), "-o", str(out), "--no-progress"]
    return subprocess.Popen([*command, "--crf", "none", "--workers", "1", *extra], stderr=subprocess.PIPE, text=True)


def masks(out: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted((out / "masks").glob("*.png"))}


def lines(out: Path) -> list[str]:
    return [json.loads(line)["file"] for line in (out / "summary.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_shards_and_concurrent_runs_match_a_single_run(photos, tmp_path):
    single = run(photos, tmp_path / "single")
    assert single.wait(timeout=600) == 0, single.stderr.read()[-2000:]
    reference = masks(tmp_path / "single")
    assert len(reference) == PHOTOS
    for name, extras in {"shards": (["--shard", "0/2"], ["--shard", "1/2"]), "twice": ([], [])}.items():
        out = tmp_path / name
        both = [run(photos, out, *extra) for extra in extras]
        for process in both:
            assert process.wait(timeout=600) == 0, process.stderr.read()[-2000:]
        files = lines(out)
        assert len(files) == PHOTOS and len(set(files)) == PHOTOS, name  # one line per photo: none twice, none lost
        got = masks(out)
        assert got.keys() == reference.keys() and all(np.array_equal(got[k], reference[k]) for k in got), name
        assert not list((out / ".claims").rglob("*.lock")), name  # finished photos leave no claims behind
