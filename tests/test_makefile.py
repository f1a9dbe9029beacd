"""`make train-ship` as resumable stages, run with stand-ins for python and parsing that only record their calls."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["ccp", "ccp-hires", "ccp-ship", "ccp-pseudo", "ccp-student"]

# A stand-in for `python -m parsing fit --config configs/STAGE.yaml …` and `parsing pseudo-label … -o runs/X`: it
# logs its arguments, writes the stage's checkpoint (or output folder) and fails when told to, like a killed run.
FAKE = """#!/bin/bash
echo "$*" >> calls.log
stage=$(echo "$*" | sed -n 's#.*configs/\\([a-z-]*\\)\\.yaml.*#\\1#p')
[ -z "$stage" ] && stage=$(echo "$*" | sed -n 's#.*-o runs/\\([a-z-]*\\).*#\\1#p')
mkdir -p runs/$stage/checkpoints && touch runs/$stage/checkpoints/last.ckpt
[ "$stage" = "$FAIL" ] && exit 1
exit 0
"""


@pytest.fixture
def project(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("no make")
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("setup.cfg", "setup.py", "pyproject.toml", "constraints.txt"):
        (tmp_path / name).write_text("")
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    for tool in ("python", "parsing"):
        (venv / "bin" / tool).write_text(FAKE)
        (venv / "bin" / tool).chmod(0o755)
    (venv / ".installed").touch()
    os.utime(venv / ".installed", (2e9, 2e9))  # newer than setup.cfg: make install has nothing to do
    return tmp_path


def make(project: Path, fail: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "FAIL": fail}
    return subprocess.run(["make", "-s", "train-ship"], cwd=project, env=env, capture_output=True, text=True)


def calls(project: Path) -> list[str]:
    log = project / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_train_ship_runs_each_stage_once_in_order(project):
    assert make(project).returncode == 0
    runs = calls(project)
    assert [line.split("configs/")[-1].split(".yaml")[0] for line in runs if "fit" in line] == [
        "ccp",
        "ccp-hires",
        "ccp-ship",
        "ccp-student",
    ]
    assert "pseudo-label" in runs[3] and "--ckpt_path" not in "".join(runs)
    assert all((project / "runs" / f"{stage}.done").exists() for stage in STAGES)
    assert make(project).returncode == 0 and len(calls(project)) == 5  # all done: nothing runs again


def test_a_killed_stage_resumes_from_its_checkpoint_and_the_finished_ones_are_skipped(project):
    assert make(project, fail="ccp-ship").returncode != 0
    assert not (project / "runs" / "ccp-ship.done").exists()
    before = len(calls(project))
    assert make(project).returncode == 0
    again = calls(project)[before:]
    assert len(again) == 3  # ccp-ship, pseudo, student: not ccp or ccp-hires
    assert "configs/ccp-ship.yaml --ckpt_path runs/ccp-ship/checkpoints/last.ckpt" in again[0]
    assert "--ckpt_path" not in again[2]  # the student starts fresh


def test_a_run_the_recipe_did_not_start_is_never_trained_over(project):
    old = project / "runs" / "ccp-hires" / "checkpoints"
    old.mkdir(parents=True)
    (old / "last.ckpt").write_text("an older run")
    out = make(project)
    assert out.returncode != 0
    assert "runs/ccp-hires holds a run that train-ship did not start" in out.stderr
    assert len(calls(project)) == 1  # only the first stage ran
    assert (old / "last.ckpt").read_text() == "an older run"
