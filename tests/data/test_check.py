"""``parsing check-data`` and the check before ``fit``: every kind of problem, each reported with its file."""

import numpy as np
import pytest
import scipy.io
from conftest import ROOT, write_ccp_root, write_folder_root
from PIL import Image

from parsing.commands.check_data import main as check_main
from parsing.commands.cli import main
from parsing.data.check import DataProblems, check_ccp, check_folder

LABELS = ["background", "top", "bottom"]


def broken_folder(root):
    good = np.zeros((40, 30), np.uint8)
    good[10:30, 5:25] = 1
    write_folder_root(root, {"ok": good, "orphan": good, "small": good, "values": good, "junk": good, "twin": good})
    (root / "masks" / "orphan.png").unlink()  # photo without a mask
    Image.fromarray(good).save(root / "masks" / "lonely.png")  # mask without a photo
    Image.fromarray(good[:20]).save(root / "masks" / "small.png")  # size mismatch
    bad = good.copy()
    bad[0, 0] = 9
    Image.fromarray(bad).save(root / "masks" / "values.png")  # label outside the set
    (root / "images" / "junk.png").write_text("not an image")  # unreadable photo
    Image.new("RGB", (30, 40)).save(root / "images" / "twin.jpg")  # twin.png and twin.jpg: one id, two photos
    (root / "masks" / "broken.png").write_bytes(b"\x89PNG garbage")  # unreadable mask…
    Image.new("RGB", (30, 40)).save(root / "images" / "broken.png")  # …of a good photo
    return root


EXPECTED = {
    "images/orphan.png": "photo without a mask",
    "masks/lonely.png": "mask without a photo",
    "masks/small.png": "mask size 30x20 differs from its photo's 30x40",
    "masks/values.png": "label values [9] outside the label set (0..2)",
    "images/junk.png": "not an image",
    "images/twin.jpg": "id 'twin' is used by 2 photos",
    "masks/broken.png": "not an image",
}


def test_folder_check_reports_every_problem_with_its_file(tmp_path):
    root = broken_folder(tmp_path / "data")
    problems = check_folder(root, len(LABELS))
    found = {str(p.path).replace(str(root) + "/", ""): p.problem for p in problems}
    for path, message in EXPECTED.items():
        assert path in found and message in found[path], (path, found)
    assert "images/ok.png" not in found and "masks/ok.png" not in found
    assert len(problems) == len(EXPECTED)


def test_check_data_command(tmp_path, capsys):
    root = broken_folder(tmp_path / "data")
    assert check_main([str(root), "--format", "folder", "--labels", *LABELS]) == 1
    out = capsys.readouterr().out
    assert all(str(root / path) in out for path in EXPECTED)
    clean = write_folder_root(tmp_path / "clean", {"a": np.zeros((8, 8), np.uint8)})
    assert check_main([str(clean), "--format", "folder", "--labels", *LABELS]) == 0


def test_fit_stops_early_with_the_same_list(tmp_path):
    root = broken_folder(tmp_path / "data")
    args = ["fit", "--config", str(ROOT / "configs" / "smoke.yaml"), "--data.format", "folder",
            "--data.root", str(root), "--data.labels", str(LABELS), "--data.ids", "null",
            "--trainer.default_root_dir", str(tmp_path / "run")]  # fmt: skip
    with pytest.raises(DataProblems) as err:
        main(args)
    assert len(err.value.problems) == len(EXPECTED)
    assert all(str(root / path) in str(err.value) for path in EXPECTED)


def test_ccp_check(tmp_path):
    mask = np.zeros((40, 30), np.uint8)
    root = write_ccp_root(tmp_path / "ccp", {"0001": mask, "0002": mask, "0003": mask}, {"0002": (50, 30)})
    mat = root / "annotations" / "pixel-level"
    scipy.io.savemat(mat / "0003.mat", {"groundtruth": np.full((40, 30), 70, np.uint8)})  # label 70 > 58
    (mat / "0004.mat").write_text("garbage")  # unreadable, and no photo
    Image.new("RGB", (30, 40)).save(root / "photos" / "0005.jpg")  # no mask, no tags
    found = {p.path.split("/")[-1] + " " + p.problem for p in check_ccp(root)}
    assert any(f.startswith("0002.mat mask size 30x40 differs") for f in found)
    assert any(f.startswith("0003.mat label values [70]") for f in found)
    assert "0004.mat mask without a photo" in found
    assert "0005.jpg photo without a mask or tags" in found
    assert not any(f.startswith("0001") for f in found)
    assert [p.problem for p in check_ccp(root, ids=["0001"])] == []
