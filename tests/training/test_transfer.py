"""init_from across label sets: encoder/decoder whole, output rows by label name, the rest fresh."""

import json

import numpy as np
import torch
from conftest import ROOT, blocks, write_folder_root
from PIL import Image

from parsing.commands.cli import main
from parsing.commands.pack import pack
from parsing.commands.predict import main as predict
from parsing.model import ParsingModel
from parsing.model.checkpoint import SHIPPED, checkpoint_path
from parsing.training.transfer import matching_labels, transfer_state

HEAD = "net.seg.segmentation_head.0.weight"


def test_labels_match_by_name_and_background():
    assert matching_labels(["null", "skin", "Dress", "bag"], ["background", "dress", "shoes"]) == [(0, 0), (1, 2)]


def test_output_rows_follow_the_label_names():
    torch.manual_seed(0)
    source = ParsingModel(class_names=["null", "skin", "dress", "bag"], outfit="aux")
    target = ParsingModel(class_names=["background", "dress", "shoes"], outfit="aux")
    fresh_row = target.state_dict()[HEAD][2].clone()
    state, fresh = transfer_state(source.state_dict(), target.state_dict(), source.class_names, target.class_names)
    missing, unexpected = target.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) == {"exclusive"} and fresh == ["exclusive"]
    src, dst = source.state_dict(), target.state_dict()
    for key in (HEAD, "net.seg.segmentation_head.0.bias", "net.outfit.out.weight", "net.outfit.out.bias"):
        assert torch.equal(dst[key][0], src[key][0]) and torch.equal(dst[key][1], src[key][2]), key
    assert torch.equal(dst[HEAD][2], fresh_row)  # shoes: not in the source, left as initialised
    encoder = [k for k in src if k.startswith("net.seg.encoder.")]
    assert encoder and all(torch.equal(dst[k], src[k]) for k in encoder)


def test_same_labels_load_unchanged():
    source = ParsingModel(class_names=["null", "dress"])
    own = ParsingModel(class_names=["null", "dress"]).state_dict()
    state, fresh = transfer_state(source.state_dict(), own, ["null", "dress"], ["null", "dress"])
    assert fresh == [] and state is not None and all(torch.equal(state[k], v) for k, v in source.state_dict().items())


def test_fit_a_merged_label_set_from_the_shipped_model(ccp_root, tmp_path):
    config = str(ROOT / "configs" / "smoke.yaml")
    args = ["fit", "--config", config, "--data.root", str(ccp_root), "--trainer.default_root_dir", str(tmp_path)]
    cli = main([*args, "--data.merge", "ccp-coarse", "--model.init_from", "shipped"])  # the package's model
    assert cli.model.num_classes == 17 and cli.model.class_names[5] == "dress"
    assert torch.isfinite(cli.trainer.callback_metrics["val/miou"])


def test_shipped_names_the_packaged_model():
    assert checkpoint_path("shipped") == SHIPPED and SHIPPED.is_file()
    assert checkpoint_path("runs/x.ckpt").name == "x.ckpt"


def test_finetune_config_trains_your_labels_from_the_shipped_model(tmp_path, monkeypatch):
    masks = {f"p{i}": blocks(64, 48, [0, 1, 2, 3], seed=i) for i in range(4)}
    root = write_folder_root(tmp_path / "shop", masks)
    (root / "labels.txt").write_text("background\nskin\ndress\nwidget\n")  # the config reads it: labels: null
    monkeypatch.chdir(tmp_path)  # the config's runs/finetune lands here
    args = ["--config", str(ROOT / "configs" / "finetune.yaml"), "--data.root", str(root), "--data.size", "[64, 64]"]
    args += ["--data.val_fraction", "0.25", "--data.batch_size", "2", "--data.num_workers", "0"]
    cli = main(["fit", *args, "--trainer.max_epochs", "1"])
    assert cli.model.class_names == ["background", "skin", "dress", "widget"]
    last = tmp_path / "runs" / "finetune" / "checkpoints" / "last.ckpt"
    assert last.is_file()
    # ... then pack it (with or without exclusive pairs) and parse with it: the whole own-data path
    pack(last, tmp_path / "my.ckpt")
    out = tmp_path / "parsed"
    assert (
        predict([str(root / "images"), "-o", str(out), "--checkpoint", str(tmp_path / "my.ckpt"), "--no-progress"]) == 0
    )
    for stem in masks:
        assert np.asarray(Image.open(out / "masks" / f"{stem}.png")).max() < 4
    assert [entry["name"] for entry in json.loads((out / "labels.json").read_text())] == cli.model.class_names
