"""fit → test → predict through LightningCLI from the YAML configs, on a few real CCP photos."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT

from parsing.commands.cli import main
from parsing.labels import CCP_LABELS, MERGES
from parsing.training.module import ParsingModule

SMOKE = str(ROOT / "configs" / "smoke.yaml")


@pytest.fixture(scope="module")
def fitted(ccp_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    common = ["--config", SMOKE, "--data.root", str(ccp_root), "--trainer.default_root_dir", str(run)]
    cli = main(["fit", *common, "--trainer.enable_checkpointing", "true"])
    ckpt = sorted(run.glob("**/*.ckpt"))
    assert ckpt, "fit wrote no checkpoint"
    return cli, ckpt[-1], common


def test_fit_logs_validation_metrics(fitted):
    cli, _, _ = fitted
    metrics = cli.trainer.callback_metrics
    for key in ("val/pixel_acc", "val/fg_acc", "val/miou", "val/f1", "val/loss", "train/loss"):
        assert key in metrics and math.isfinite(float(metrics[key])), key
    assert 0.0 <= float(metrics["val/pixel_acc"]) <= 1.0


def test_checkpoint_rebuilds_the_model(fitted):
    cli, ckpt, _ = fitted
    model = ParsingModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    assert model.class_names == list(CCP_LABELS) and len(model.model.palette) == 59
    trained = cli.model.eval()
    x = torch.rand(1, 3, 96, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), trained(x), atol=1e-5)


def test_test_scores_at_full_resolution(fitted):
    _, ckpt, common = fitted
    cli = main(["test", *common, "--ckpt_path", str(ckpt)])
    metrics = cli.trainer.callback_metrics
    for key in ("test/pixel_acc", "test/fg_acc", "test/miou", "test/f1", "test/iou/skin", "test/iou/null"):
        assert key in metrics, key
    assert 0.0 <= float(metrics["test/miou"]) <= 1.0


def test_lightning_predict_points_to_parsing_predict(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["predict", "--config", SMOKE, "--ckpt_path", "run/last.ckpt", "--data.predict_dir=photos/"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "parsing-predict photos/ -o predictions/ --checkpoint run/last.ckpt" in err


def test_merged_label_set_sizes_the_model(ccp_root, tmp_path):
    cli = main(
        ["fit", "--config", SMOKE, "--data.root", str(ccp_root), "--data.merge", "ccp-coarse",
         "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path)]
    )  # fmt: skip
    assert cli.model.class_names == list(MERGES["ccp-coarse"])
    assert cli.model.net.seg.segmentation_head[0].out_channels == len(MERGES["ccp-coarse"])


def test_print_config_round_trips(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", SMOKE, "--print_config"])
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["arch"] == "fpn" and config["data"]["size"] == [96, 64]


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("ccp*.yaml")))
def test_shipped_configs_parse(name):
    config = yaml.safe_load(Path(ROOT / "configs" / name).read_text())
    assert config["model"].get("decode", True) is True  # exclusivity decoding stays on in every recipe
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(ROOT / "configs" / name), "--print_config"])
    assert exit_info.value.code == 0


def test_outfit_fit_with_tags_round_trips_the_rules(ccp_root, tmp_path, capsys):
    args = ["fit", "--config", SMOKE, "--data.root", str(ccp_root), "--trainer.default_root_dir", str(tmp_path)]
    args += ["--trainer.enable_checkpointing", "true", "--model.outfit", "gate", "--data.tag_ratio", "0.5"]
    args += ["--model.exclusion_min_count", "1", "--model.exclusion_min_expected", "0.5"]
    cli = main(args)
    metrics = cli.trainer.callback_metrics
    for key in ("train/presence_loss", "val/presence_map", "val/presence_f1"):
        assert key in metrics, key
    learned = cli.model.exclusive.clone()
    assert learned.any(), "no rule learned from the smoke photos"
    ckpt = sorted(tmp_path.glob("**/*.ckpt"))[-1]
    model = ParsingModule.load_from_checkpoint(ckpt, map_location="cpu")
    assert torch.equal(model.exclusive, learned)
    capsys.readouterr()
    main(["rules", str(ckpt)])
    rules = yaml.safe_load(capsys.readouterr().out)["exclusions"]
    assert len(rules) == int(learned.sum()) // 2
    # the printed rules, given back in YAML, rebuild the same matrix
    again = ParsingModule(encoder_weights=None, outfit="gate", exclusions=rules)
    assert torch.equal(again.exclusive, learned)


def test_rules_override_from_yaml(ccp_root, tmp_path):
    args = ["fit", "--config", SMOKE, "--data.root", str(ccp_root), "--trainer.fast_dev_run", "true"]
    args += ["--trainer.default_root_dir", str(tmp_path), "--model.exclusions", "[[dress, skirt], [pants, shorts]]"]
    cli = main(args)
    names = cli.model.class_names
    pairs = {(names[i], names[j]) for i, j in torch.nonzero(cli.model.exclusive).tolist()}
    assert pairs == {("dress", "skirt"), ("skirt", "dress"), ("pants", "shorts"), ("shorts", "pants")}


def test_checkpoint_without_rules_still_loads(fitted, tmp_path):
    _, ckpt, _ = fitted
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=False)
    state = {key.removeprefix("model."): value for key, value in checkpoint["state_dict"].items()}  # 0.4's names
    del state["exclusive"]  # as written before the outfit encoder existed
    checkpoint["state_dict"] = state
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    model = ParsingModule.load_from_checkpoint(old, map_location="cpu")
    assert model.exclusive.shape == (59, 59) and not model.exclusive.any()


@pytest.mark.parametrize("crf", ["fast", "dense"])
def test_test_with_a_crf(fitted, crf):
    _, ckpt, common = fitted
    cli = main(["test", *common, "--ckpt_path", str(ckpt), "--model.crf", crf, "--model.crf_params.iterations", "3"])
    assert cli.model.crf == crf and cli.model.crf_params.iterations == 3
    assert 0.0 <= float(cli.trainer.callback_metrics["test/miou"]) <= 1.0


def test_command_line_inference_options_beat_the_checkpoint(fitted):
    _, ckpt, common = fitted
    assert ParsingModule.load_from_checkpoint(ckpt, map_location="cpu").hparams.decode  # trained with decoding
    args = ["validate", *common, "--ckpt_path", str(ckpt), "--model.decode", "false"]
    cli = main([*args, "--model.decode_from", "pixels", "--model.min_fraction", "0.01"])
    assert cli.model.hparams.decode is False and cli.model.hparams.decode_from == "pixels"
    assert cli.model.hparams.min_fraction == 0.01
    cli = main(["validate", *common, "--ckpt_path", str(ckpt)])
    assert cli.model.hparams.decode is True  # the config says decode


def test_test_with_flip_tta_and_tags_from_the_masks(fitted):
    _, ckpt, common = fitted
    cli = main(["test", *common, "--ckpt_path", str(ckpt), "--model.tta", "flip", "--model.tags_from_masks", "true"])
    assert cli.model.tta == "flip" and cli.model.tags_from_masks
    assert 0.0 <= float(cli.trainer.callback_metrics["test/fg_acc"]) <= 1.0


def test_smoke_fit_from_the_repository_root_leaves_the_tree_clean(ccp_root, tmp_path):
    status = ["git", "status", "--porcelain", "--ignored", "--untracked-files=normal"]  # new folders, files
    before = subprocess.run(status, cwd=ROOT, capture_output=True, text=True)
    if before.returncode != 0:
        pytest.skip("not a git checkout")
    fit = [sys.executable, "-m", "parsing", "fit", "--config", "configs/smoke.yaml", "--data.root", str(ccp_root)]
    fit += ["--trainer.default_root_dir", str(tmp_path)]  # where the run's saved config.yaml goes
    done = subprocess.run(fit, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "config.yaml").is_file()
    after = subprocess.run(status, cwd=ROOT, capture_output=True, text=True)
    new = set(after.stdout.splitlines()) - set(before.stdout.splitlines())
    assert not {line for line in new if "__pycache__" not in line}  # nothing written into the checkout, even ignored


def test_test_fits_photos_into_a_packed_checkpoints_input_size(fitted, tmp_path):
    _, ckpt, common = fitted
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=False)
    checkpoint["input_size"] = [128, 96]  # as `parsing pack --input-size 128 96` records it; smoke trains at 96×64
    packed = tmp_path / "packed.ckpt"
    torch.save(checkpoint, packed)
    cli = main(["test", *common, "--ckpt_path", str(packed)])
    assert tuple(cli.datamodule.hparams.size) == (128, 96)
    assert tuple(cli.datamodule.test_dataloader().dataset[0]["image"].shape[-2:]) == (128, 96)
    cli = main(["test", *common, "--ckpt_path", str(packed), "--data.size", "[64, 64]"])  # the command line wins
    assert tuple(cli.datamodule.hparams.size) == (64, 64)
    cli = main(["validate", *common, "--ckpt_path", str(ckpt)])  # a training checkpoint: the config's size
    assert tuple(cli.datamodule.hparams.size) == (96, 64)
