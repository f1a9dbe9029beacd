"""Lightning DDP on CPU (2 processes, gloo): fit and test give the metrics a single process gives on the same data."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

SMOKE = str(ROOT / "configs" / "smoke.yaml")
IDS = '["0001","0002","0003","0004","0005","0006","0007","0008"]'  # 5 train / 3 val photos: uneven shards


def run_cli(command, ccp_root, out, devices, *extra):
    dump = out / f"{command}-{devices}.json"
    args = [
        sys.executable, "-m", "parsing", command, "--config", SMOKE,
        "--data.root", str(ccp_root), "--data.ids", IDS, "--data.val_fraction", "0.375",
        "--trainer.default_root_dir", str(out), "--trainer.devices", str(devices),
        "--trainer.callbacks+=callbacks.DumpMetrics", "--trainer.callbacks.path", str(dump), *extra,
    ]  # fmt: skip
    if devices > 1:
        args += ["--trainer.strategy", "ddp"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(dump.read_text())


@pytest.mark.slow
def test_ddp_fit_and_test_match_one_process(ccp_root, tmp_path):
    fit = run_cli("fit", ccp_root, tmp_path, 2, "--trainer.enable_checkpointing", "true")
    assert fit["world"] == 2
    (ckpt,) = (tmp_path / "checkpoints").glob("*.ckpt")
    # The metrics the 2-process fit logged for its final weights = one process validating those weights.
    single = run_cli("validate", ccp_root, tmp_path, 1, "--ckpt_path", str(ckpt))
    keys = [k for k in single["metrics"] if k.startswith("val/") and k != "val/loss"]
    assert {"val/pixel_acc", "val/fg_acc", "val/miou", "val/f1"} <= set(keys)
    for key in keys:
        assert fit["metrics"][key] == pytest.approx(single["metrics"][key], abs=1e-6), key
    # test: 2 processes (each scores part of the photos) = 1 process, per-class IoU included.
    two = run_cli("test", ccp_root, tmp_path, 2, "--ckpt_path", str(ckpt))
    one = run_cli("test", ccp_root, tmp_path, 1, "--ckpt_path", str(ckpt))
    assert two["world"] == 2 and one["world"] == 1
    keys = [k for k in one["metrics"] if k.startswith("test/") and k != "test/loss"]
    assert set(keys) == {k for k in two["metrics"] if k.startswith("test/") and k != "test/loss"}
    assert any(k.startswith("test/iou/") for k in keys)
    for key in keys:
        assert two["metrics"][key] == pytest.approx(one["metrics"][key], abs=1e-6), key
