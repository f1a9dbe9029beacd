"""Kill a fit with SIGKILL and resume it from last.ckpt; seeded runs repeat exactly."""

import os
import signal
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

from parsing.commands.cli import main

SMOKE = str(ROOT / "configs" / "smoke.yaml")


def fit(ccp_root, out, *extra):
    args = [
        sys.executable, "-m", "parsing", "fit", "--config", SMOKE, "--data.root", str(ccp_root),
        "--trainer.max_epochs", "3", "--trainer.enable_checkpointing", "true",
        "--trainer.default_root_dir", str(out),
        "--trainer.callbacks+=pytorch_lightning.callbacks.ModelCheckpoint",
        "--trainer.callbacks.dirpath", str(out / "ckpt"), "--trainer.callbacks.every_n_train_steps", "2",
        "--trainer.callbacks.save_top_k", "0", "--trainer.callbacks.save_last", "true", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_fit_resumes_after_sigkill(ccp_root, tmp_path):
    # 4 training photos, batch 2: 2 steps per epoch, 6 in all; a checkpoint every 2 steps.
    record = tmp_path / "starts.txt"
    killed = fit(ccp_root, tmp_path / "a", "--trainer.callbacks+=callbacks.KillAt",
                 "--trainer.callbacks.step", "5", "--trainer.callbacks.record", str(record))  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    last = tmp_path / "a" / "ckpt" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 4  # step 5 is lost

    resumed = fit(ccp_root, tmp_path / "a", "--ckpt_path", str(last), "--trainer.callbacks+=callbacks.KillAt",
                  "--trainer.callbacks.step", "1000", "--trainer.callbacks.record", str(record))  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert record.read_text().split() == ["start", "0", "start", "4"]  # went on from step 4, not from 0

    a = torch.load(last, map_location="cpu", weights_only=False)
    assert a["global_step"] == 6 and a["epoch"] == 2
    assert float(a["optimizer_states"][0]["state"][0]["step"]) == 6  # AdamW's moments carried over the kill
    assert a["lr_schedulers"][0]["last_epoch"] == 6  # and the one-cycle schedule's position
    assert a["lr_schedulers"][0]["total_steps"] == 6
    # (the weights are not bit-identical to an uninterrupted run's: the data order after a resume differs)


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_seeded_runs_repeat_exactly(ccp_root, tmp_path, workers):
    args = ["fit", "--config", SMOKE, "--data.root", str(ccp_root), "--trainer.default_root_dir", str(tmp_path)]
    args += ["--data.num_workers", str(workers)]
    first = {k: float(v) for k, v in main(args).trainer.callback_metrics.items()}
    second = {k: float(v) for k, v in main(args).trainer.callback_metrics.items()}
    assert "val/miou" in first and "train/loss" in first
    assert first == second
    if workers:
        return
    other = {k: float(v) for k, v in main([*args, "--seed_everything", "1"]).trainer.callback_metrics.items()}
    assert other["train/loss"] != first["train/loss"]  # the seed is what makes them equal


def test_config_checkpoints_keep_the_latest_weights_as_last_ckpt(ccp_root, tmp_path):
    """configs/ccp.yaml's checkpoint callbacks (steps scaled down): last.ckpt holds the final step even when the
    final epoch is not the best one (Lightning's own save_last only follows the best-checkpoint saves)."""
    import json

    import yaml

    callbacks = yaml.safe_load((ROOT / "configs" / "ccp.yaml").read_text())["trainer"]["callbacks"]
    checkpoints = [c for c in callbacks if c["class_path"].endswith("ModelCheckpoint")]
    for c in checkpoints:
        c["init_args"]["dirpath"] = str(tmp_path / "ckpt")
        if "every_n_train_steps" in c["init_args"]:
            c["init_args"]["every_n_train_steps"] = 4
    args = ["fit", "--config", SMOKE, "--data.root", str(ccp_root), "--trainer.max_epochs", "3",
            "--trainer.enable_checkpointing", "true", "--trainer.default_root_dir", str(tmp_path),
            "--trainer.callbacks", json.dumps(checkpoints)]  # fmt: skip
    main(args)
    last = torch.load(tmp_path / "ckpt" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == 6  # 3 epochs × 2 steps
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir() if p.name.startswith("last")) == ["last.ckpt"]
