"""``parsing pseudo-label``: tagged photos → a folder dataset that check-data accepts and fit can train on."""

import json

import numpy as np
import pytest
import scipy.io
import yaml
from PIL import Image

from parsing.commands.cli import main as cli
from parsing.commands.pseudo_label import main
from parsing.data.check import check_folder
from parsing.data.io import read_ccp_tags
from parsing.labels import CCP_LABELS, NON_GARMENTS


def test_pseudo_labels_follow_the_tags_and_pass_check_data(ccp_root, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for stem in ("1005", "1006", "1007"):  # tag-only CCP photos
        (photos / f"{stem}.jpg").write_bytes((ccp_root / "photos" / f"{stem}.jpg").read_bytes())
    tags = tmp_path / "tags.jsonl"
    lines = [{"file": "1005.jpg", "garments": ["dress", "heels"]}, {"file": "1006.jpg", "garments": ["jeans", "top"]}]
    tags.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "pseudo"
    args = ["--photos", str(photos), "--tags", str(tags), "-o", str(out), "--min-confidence", "0.6"]
    assert main(args) == 0
    assert "2 written, 0 already done, 1 without tags" in capsys.readouterr().err
    assert check_folder(out, len(CCP_LABELS)) == []
    for stem, garments in (("1005", {"dress", "heels"}), ("1006", {"jeans", "top"})):
        mask = np.asarray(Image.open(out / "masks" / f"{stem}.png"))
        with Image.open(photos / f"{stem}.jpg") as photo:
            assert mask.shape == (photo.height, photo.width)
        names = {CCP_LABELS[v] for v in np.unique(mask) if v != 255}
        assert names <= garments | NON_GARMENTS and "skin" in names
        assert 0 < (mask == 255).mean() < 0.5  # the unsure pixels are ignored, most are labelled
    config = yaml.safe_load((out / "data.yaml").read_text())["data"]
    assert config["format"] == "folder" and config["labels"] == list(CCP_LABELS)
    assert main(args) == 0 and "0 written, 2 already done" in capsys.readouterr().err  # resumes


def test_unknown_tag_stops_before_work(tmp_path, capsys):
    tags = tmp_path / "tags.jsonl"
    tags.write_text('{"file": "a.jpg", "garments": ["gown"]}\n')
    code = main(["--photos", str(tmp_path), "--tags", str(tags), "-o", str(tmp_path / "out")])
    assert code == 2 and "unknown garment name(s) 'gown'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_entry(tmp_path, capsys):
    try:
        cli(["pseudo-label", "--photos", str(tmp_path), "--tags", str(tmp_path / "none.jsonl"), "-o", str(tmp_path)])
    except SystemExit as stop:
        assert stop.code == 2
    assert "cannot read the tags file" in capsys.readouterr().err


def test_ccp_tag_only_photos_with_their_own_tags(ccp_root, tmp_path, capsys):
    root = tmp_path / "ccp"
    (root / "photos").mkdir(parents=True)
    (root / "annotations" / "image-level").mkdir(parents=True)
    for stem in ("1005", "1006", "1007"):
        (root / "photos" / f"{stem}.jpg").write_bytes((ccp_root / "photos" / f"{stem}.jpg").read_bytes())
    for stem in ("1005", "1006"):
        mat = f"annotations/image-level/{stem}.mat"
        (root / mat).write_bytes((ccp_root / mat).read_bytes())
    scipy.io.savemat(root / "annotations" / "image-level" / "1007.mat", {"other": np.zeros(2)})  # no tags
    out = tmp_path / "pseudo"
    assert main(["--ccp", str(root), "-o", str(out)]) == 1  # 1007 failed, the rest is written
    assert "2 written" in capsys.readouterr().err
    error = json.loads((out / "errors.jsonl").read_text())
    assert error["file"].endswith("1007.mat") and "no 'tags'" in error["error"]
    for stem in ("1005", "1006"):
        tagged = {CCP_LABELS[i] for i in read_ccp_tags(ccp_root / "annotations" / "image-level" / f"{stem}.mat")}
        mask = np.asarray(Image.open(out / "masks" / f"{stem}.png"))
        assert {CCP_LABELS[v] for v in np.unique(mask) if v != 255} <= tagged | NON_GARMENTS


def test_ccp_or_photos_and_tags(tmp_path):
    with pytest.raises(SystemExit):
        main(["--photos", str(tmp_path), "-o", str(tmp_path / "out")])
