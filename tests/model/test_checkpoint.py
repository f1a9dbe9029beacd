"""Checkpoint files: every unusable file named with its problem; both tensor namings read; the network box."""

import pytest
import torch

from parsing.model.checkpoint import (
    SHIPPED,
    CheckpointError,
    checkpoint_path,
    input_size,
    model_state,
    read_checkpoint,
)


def test_shipped_names_the_packaged_file():
    assert checkpoint_path("shipped") == SHIPPED and SHIPPED.is_file()
    assert checkpoint_path("runs/x.ckpt").name == "x.ckpt"


def test_unusable_files_are_named_with_their_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.ckpt: checkpoint not found"):
        read_checkpoint(tmp_path / "missing.ckpt")
    (tmp_path / "cut.ckpt").write_bytes(SHIPPED.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"cut.ckpt: not a readable checkpoint \(truncated or corrupt\)"):
        read_checkpoint(tmp_path / "cut.ckpt")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match="no 'state_dict'"):
        read_checkpoint(tmp_path / "weights.pt")
    torch.save({"state_dict": {}, "hyper_parameters": {}}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="no label set"):
        read_checkpoint(tmp_path / "other.ckpt")


def test_model_state_reads_fit_and_packed_names():
    fit = {"model.net.a": torch.ones(1), "model.exclusive": torch.zeros(2, 2), "ce.weight": torch.ones(3)}
    packed = {"net.a": torch.ones(1), "exclusive": torch.zeros(2, 2)}
    assert set(model_state(fit)) == set(model_state(packed)) == {"net.a", "exclusive"}


def test_input_size_prefers_the_packed_box():
    assert input_size({"input_size": [576, 384], "datamodule_hyper_parameters": {"size": [384, 256]}}) == (576, 384)
    assert input_size({"datamodule_hyper_parameters": {"size": [512, 352]}}) == (512, 352)
    assert input_size({}) == (384, 256)
