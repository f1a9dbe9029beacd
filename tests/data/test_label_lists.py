"""One label-list syntax everywhere; labels files beside a folder dataset; YAML's null; small validation splits."""

import numpy as np
import pytest
from conftest import blocks, write_folder_root

from parsing.commands.check_data import main as check_data
from parsing.data.datamodule import small_validation
from parsing.inference.label_view import read_merge
from parsing.labels import label_list, read_label_file


@pytest.mark.parametrize(
    "given",
    [
        ["[background, skin, dress]"],
        ["background", "skin", "dress"],
        ["background,skin,dress"],
        "[background, skin, dress]",
    ],
)
def test_the_label_list_syntaxes_agree(given):
    assert label_list(given) == ["background", "skin", "dress"]


def test_null_and_repeats():
    assert label_list(["[null, skin]"]) == ["null", "skin"]  # YAML reads null as None: it is CCP's label
    with pytest.raises(ValueError, match="repeat"):
        label_list(["a", "b", "a"])


def test_labels_files_beside_the_data(tmp_path):
    assert read_label_file(tmp_path) is None
    (tmp_path / "labels.yaml").write_text("labels: [null, skin, coat]\n")
    assert read_label_file(tmp_path) == ["null", "skin", "coat"]
    (tmp_path / "labels.txt").write_text("background\nskin\n\ndress\n")
    assert read_label_file(tmp_path) == ["background", "skin", "dress"]  # labels.txt first


def test_check_data_takes_any_syntax_or_the_labels_file(tmp_path, capsys):
    root = write_folder_root(tmp_path / "data", {f"p{i}": blocks(32, 24, [0, 1, 2], seed=i) for i in range(3)})
    assert check_data([str(root), "--format", "folder", "--labels", "[background, skin, dress]"]) == 0
    assert check_data([str(root), "--format", "folder", "--labels", "background", "skin", "dress"]) == 0
    assert check_data([str(root), "--format", "folder", "--labels", "[background, skin]"]) == 1  # 2 is outside
    with pytest.raises(SystemExit):
        check_data([str(root), "--format", "folder"])  # no labels and no labels.txt
    assert "labels.txt" in capsys.readouterr().err
    (root / "labels.txt").write_text("background\nskin\ndress\n")
    assert check_data([str(root), "--format", "folder"]) == 0


def test_fit_data_reads_the_labels_file_too(tmp_path):
    from parsing.data.datamodule import ParsingDataModule

    root = write_folder_root(tmp_path / "data", {f"p{i}": blocks(32, 24, [0, 1, 2], seed=i) for i in range(3)})
    with pytest.raises(ValueError, match="labels.txt"):
        ParsingDataModule(root=str(root), format="folder")
    (root / "labels.txt").write_text("background\nskin\ndress\n")
    assert ParsingDataModule(root=str(root), format="folder").label_set.names == ("background", "skin", "dress")


def test_merge_files_may_say_null_unquoted(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("null: [null]\nbody: [skin, hair]\n")
    assert read_merge(str(path)) == {"null": ["null"], "body": ["skin", "hair"]}


def test_a_tiny_validation_split_is_warned_with_what_to_do(tmp_path):
    masks = {f"p{i}": blocks(16, 16, [0, 1] if i < 8 else [0, 1, 2], seed=i) for i in range(10)}
    root = write_folder_root(tmp_path / "data", masks)
    items = [(root / "images" / f"{s}.png", root / "masks" / f"{s}.png") for s in masks]
    warnings = small_validation(items[:9], items[:1], ["background", "skin", "dress"], 0.1)
    assert "1 photo(s)" in warnings[0] and "data.val_fraction" in warnings[0]
    assert "label more photos (40 give 20" in warnings[0]  # 10 photos: no split gives 20 and keeps half
    assert warnings[1] == "labels in training but in no validation photo: dress"
    many = [items[0]] * 25
    assert small_validation(many, many, ["background", "skin"], 0.5) == []
    assert np.asarray(masks["p9"]).max() == 2
