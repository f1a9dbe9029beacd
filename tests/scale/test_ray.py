"""``parsing-predict --ray local``: a real local Ray instance (Ray Data, an actor pool of Parsers) gives the masks of
a local run, one summary line per photo, errors for bad files, resumes, and survives an actor that dies."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ray.data")

PHOTOS = 20


@pytest.fixture(scope="module")
def photos(ccp_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for path in sorted((ccp_root / "photos").glob("*.jpg"))[:PHOTOS]:
        with Image.open(path) as im:  # one size: every batch is unpadded, however the actors batch them
            im.convert("RGB").resize((200, 300)).save(folder / path.name, quality=92)
    (folder / "notes.jpg").write_text("not a photo")
    (folder / "cut.jpg").write_bytes((folder / path.name).read_bytes()[:500])
    return folder


def predict(photos: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "parsing.commands.predict", str(photos), "-o", str(out), "--no-progress"]
    environment = {**os.environ, "RAY_AUTH_MODE": "disabled", **(env or {})}
    return subprocess.run([*command, *extra], capture_output=True, text=True, env=environment, timeout=600)


def summary(out: Path) -> list[str]:
    return [json.loads(line)["file"] for line in (out / "summary.jsonl").read_text().splitlines()]


def masks(out: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted((out / "masks").glob("*.png"))}


@pytest.mark.slow
def test_ray_gives_a_local_runs_outputs_resumes_and_survives_a_dead_actor(photos, tmp_path):
    local = predict(photos, tmp_path / "local")
    assert local.returncode == 1, local.stderr[-2000:]  # 1: the two bad files
    marker = tmp_path / "crashed"  # one actor dies after its first batch: Ray restarts it and retries the batch
    env = {"PARSING_RAY_TEST_CRASH_ONCE": str(marker)}
    ray = predict(photos, tmp_path / "ray", "--ray", "local", "--ray-actors", "2", env=env)
    assert ray.returncode == 1, ray.stderr[-3000:]
    assert marker.is_file(), "no actor crashed: the retry was not tested"
    files = summary(tmp_path / "ray")
    assert len(files) == PHOTOS and len(set(files)) == PHOTOS  # none lost, none twice
    errors = [json.loads(line) for line in (tmp_path / "ray" / "errors.jsonl").read_text().splitlines()]
    assert sorted(Path(e["file"]).name for e in errors) == ["cut.jpg", "notes.jpg"]
    reference, got = masks(tmp_path / "local"), masks(tmp_path / "ray")
    assert got.keys() == reference.keys() and all(np.array_equal(got[k], reference[k]) for k in got)
    again = predict(photos, tmp_path / "ray", "--ray", "local")
    assert f"0 parsed, {PHOTOS} already done" in again.stderr and len(summary(tmp_path / "ray")) == PHOTOS
