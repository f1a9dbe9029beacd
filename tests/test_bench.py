"""The outfit benchmark end to end on the smoke recipe (slow: several short fits)."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from parsing.commands.cli import main


@pytest.mark.slow
def test_outfit_bench_writes_its_table(ccp_root, tmp_path):
    config = tmp_path / "smoke.yaml"
    config.write_text((ROOT / "configs" / "smoke.yaml").read_text().replace("../shared/data/ccp", str(ccp_root)))
    main(["fit", "--config", str(config), "--trainer.default_root_dir", str(tmp_path / "plain"),
          "--trainer.enable_checkpointing", "true"])  # fmt: skip
    plain = sorted((tmp_path / "plain").glob("**/*.ckpt"))[-1]
    args = ["--start", str(plain), "--config", str(config), "--steps", "2", "--head-steps", "1"]
    args += ["--variants", "none", "gate-log", "--work", str(tmp_path / "work"), "--results", str(tmp_path / "results")]
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "outfit.py"), *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((tmp_path / "results" / "outfit.json").read_text())
    rows = [(r["model"], r["decoding"]) for r in result["rows"]]
    # a plain start has no branch: no presence decoding for it or for "none"
    assert rows == [("start", "off"), ("start", "pixels"), ("none", "off"), ("none", "pixels"),
                    ("gate-log", "off"), ("gate-log", "pixels"), ("gate-log", "presence")]  # fmt: skip
    assert all(0.0 <= r["metrics"]["test/pixel_acc"] <= 1.0 for r in result["rows"])
    assert (tmp_path / "work" / "gate-log-head" / "last.ckpt").is_file()  # the branch alone first
    assert set(result["minutes"]) == {"none", "gate-log"}
    assert "presence mAP" in (tmp_path / "results" / "outfit.md").read_text()


def test_committed_results_name_no_machine_paths():
    for path in sorted((ROOT / "bench" / "results").glob("*.*")):
        text = path.read_text()
        for prefix in ("/work/", "/home/", "/root/", "/tmp/", "/Users/", "C:\\\\"):
            assert prefix not in text, f"{path.name} records a machine path ({prefix}…)"


def test_robustness_framings_transform_photo_and_mask_alike():
    import importlib.util

    import numpy as np
    from scipy.ndimage import binary_erosion

    spec = importlib.util.spec_from_file_location("robustness", ROOT / "bench" / "robustness.py")
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        robustness = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(robustness)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    mask = np.zeros((100, 60), np.uint8)
    mask[20:90, 20:40] = 5  # a person
    image = np.stack([mask * 40] * 3, -1).astype(np.uint8)
    for name, framing in robustness.FRAMINGS.items():
        im, ms = framing(image, mask, np.random.default_rng(0))
        assert im.shape[:2] == ms.shape and ms.size > 0, name
        person = binary_erosion(ms == 5, iterations=3)  # away from the soft edges
        assert person.any() and (im[person] == 200).all(), name  # the person's pixels follow the mask
    im, ms = robustness.FRAMINGS["zoom-out 0.5x"](image, mask, np.random.default_rng(0))
    assert ms.shape == mask.shape and (ms == 5).sum() <= 0.25 * (mask == 5).sum()
    assert (im[:20] > 200).all() and (ms[:20] == 0).all()  # the canvas: light, background
    im, ms = robustness.FRAMINGS["studio background"](image, mask, np.random.default_rng(0))
    assert (ms == mask).all() and (im[:, :10] > 200).all()  # the background is now light
    im, ms = robustness.FRAMINGS["waist-up studio"](image, mask, np.random.default_rng(0))
    assert (ms == mask[:50]).all() and (im[:, :10] > 200).all()  # the upper half, on a light background


def test_encoder_bench_reads_curves_and_wall_time(tmp_path):
    import os

    run = tmp_path / "lite2"
    (run / "csv" / "version_0").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    config = run / "csv" / "version_0" / "config.yaml"
    config.write_text(
        "trainer: {max_epochs: 2}\nmodel: {encoder: timm-tf_efficientnet_lite2}\n"
        "data: {size: [384, 256], train_fraction: 0.5}\n"
    )
    (run / "csv" / "version_0" / "metrics.csv").write_text(
        "epoch,step,train/loss,val/fg_acc,val/miou,val/pixel_acc\n0,9,1.0,,,\n0,49,,0.4,0.1,0.8\n1,99,,0.5,0.125,0.85\n"
    )
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    os.utime(config, (1000, 1000))
    os.utime(run / "checkpoints" / "last.ckpt", (1600, 1600))  # 10 minutes later
    args = [sys.executable, str(ROOT / "bench" / "proxies.py"), "--runs", str(run), "--out", str(tmp_path / "out")]
    out = subprocess.run(args, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "proxies.json").read_text())["runs"][0]
    assert result["minutes"] == 10.0 and result["steps"] == 100 and result["s_per_step"] == 6.0
    assert [p["fg_acc"] for p in result["curve"]] == [40.0, 50.0]
    assert (
        "| lite2 | fpn, timm-tf_efficientnet_lite2 | 384×256 | 0.5 | 2 | 100 | 10.0 |"
        in (tmp_path / "out" / "proxies.md").read_text()
    )


def test_previous_results_are_kept_only_when_scored_alike(tmp_path):
    import argparse

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from common import previous_models
    finally:
        sys.path.remove(str(ROOT / "bench"))
    earlier = tmp_path / "earlier.json"
    meta = {"photos": 90, "seed": 0, "framings": ["original", "upper-half"], "crf": "fast"}  # older: no tta key
    earlier.write_text(json.dumps({"meta": meta, "models": [{"name": "old"}, {"name": "new"}]}))
    parser = argparse.ArgumentParser()
    assert previous_models(parser, None, {"photos": 90}) == []
    same = {"photos": 90, "seed": 0, "framings": ["upper-half"], "crf": "fast", "tta": "none"}
    assert previous_models(parser, earlier, same, names=["new"]) == [{"name": "old"}]  # "new" is scored anew
    for other in ({"crf": "dense"}, {"tta": "flip"}, {"framings": ["zoom-in 2x"]}, {"photos": 10}):
        with pytest.raises(SystemExit):
            previous_models(parser, earlier, {**same, **other})


@pytest.mark.slow
def test_labelling_bench_runs_the_click_protocol(ccp_root, tmp_path):
    args = ["--data-root", str(ccp_root), "--limit", "2", "--max-clicks", "3", "--out", str(tmp_path)]
    subprocess.run([sys.executable, str(ROOT / "bench" / "labelling.py"), *args], check=True, cwd=ROOT / "bench")
    result = json.loads((tmp_path / "labelling.json").read_text())["framings"]["original"]
    assert set(result) == {"click", "superpixel"}
    assert result["click"]["acc@0"] == result["superpixel"]["acc@0"]  # the same parse to start from
    assert all(0 <= a <= 1 for tool in result.values() for a in tool["curve"]) and len(result["click"]["curve"]) == 4
    assert "NoC@80" in (tmp_path / "labelling.md").read_text()
