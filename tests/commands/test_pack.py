"""``parsing pack``: deployable checkpoints, and the average of two runs' weights."""

import pytest
import torch

from parsing import Parser
from parsing.commands.pack import average_weights, pack
from parsing.commands.predict import DEFAULT_CHECKPOINT


def test_average_weights_mixes_floats_and_keeps_the_rest():
    a = {"w": torch.zeros(2, 3), "n": torch.tensor(4), "mask": torch.tensor([True, False])}
    b = {"w": torch.ones(2, 3), "n": torch.tensor(9), "mask": torch.tensor([False, True])}
    out = average_weights(a, b, 0.25)
    assert torch.allclose(out["w"], torch.full((2, 3), 0.25))
    assert int(out["n"]) == 4 and out["mask"].tolist() == [True, False]
    with pytest.raises(ValueError, match="different tensors"):
        average_weights(a, {"w": b["w"]})
    with pytest.raises(ValueError, match="w: shapes"):
        average_weights(a, {**b, "w": torch.ones(3, 2)})


def test_pack_averages_two_checkpoints_of_one_model(tmp_path, capsys):
    shipped = torch.load(DEFAULT_CHECKPOINT, map_location="cpu", weights_only=False)
    key = next(k for k, v in shipped["state_dict"].items() if v.is_floating_point() and k.startswith("net."))
    moved = {**shipped, "state_dict": {**shipped["state_dict"], key: shipped["state_dict"][key] + 1.0}}
    torch.save(moved, tmp_path / "moved.ckpt")
    packed = pack(DEFAULT_CHECKPOINT, tmp_path / "soup.ckpt", average_with=tmp_path / "moved.ckpt")
    assert torch.allclose(packed["state_dict"][key], shipped["state_dict"][key] + 0.5)
    same = [k for k in shipped["state_dict"] if k != key]
    assert all(torch.equal(packed["state_dict"][k], shipped["state_dict"][k]) for k in same)
    parser = Parser.load(tmp_path / "soup.ckpt")  # a deployable checkpoint
    assert parser.size == Parser.load().size and parser.spec.num_classes == 59
    other = {**shipped, "hyper_parameters": {**shipped["hyper_parameters"], "encoder": "timm-tf_efficientnet_lite2"}}
    torch.save(other, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="another model.*encoder differs"):
        pack(DEFAULT_CHECKPOINT, tmp_path / "bad.ckpt", average_with=tmp_path / "other.ckpt")
    explicit = {**shipped, "hyper_parameters": {**shipped["hyper_parameters"], "context": "none"}}
    torch.save(explicit, tmp_path / "explicit.ckpt")  # the shipped checkpoint predates the option: same model
    pack(DEFAULT_CHECKPOINT, tmp_path / "fine.ckpt", average_with=tmp_path / "explicit.ckpt")
    attention = {**shipped, "hyper_parameters": {**shipped["hyper_parameters"], "context": "attention"}}
    torch.save(attention, tmp_path / "attention.ckpt")
    with pytest.raises(ValueError, match="another model.*context differs"):
        pack(DEFAULT_CHECKPOINT, tmp_path / "bad.ckpt", average_with=tmp_path / "attention.ckpt")


def test_pack_records_the_input_size_inference_uses(tmp_path):
    trained = torch.load(DEFAULT_CHECKPOINT, map_location="cpu", weights_only=False)
    trained.pop("input_size", None)
    torch.save(trained, tmp_path / "trained.ckpt")
    assert Parser.load(tmp_path / "trained.ckpt").size == tuple(trained["datamodule_hyper_parameters"]["size"])
    pack(tmp_path / "trained.ckpt", tmp_path / "big.ckpt", input_size=(576, 384))
    assert Parser.load(tmp_path / "big.ckpt").size == (576, 384)
    pack(tmp_path / "big.ckpt", tmp_path / "again.ckpt")  # packing a packed file keeps it
    assert Parser.load(tmp_path / "again.ckpt").size == (576, 384)
    with pytest.raises(ValueError, match="each at least 32"):
        pack(tmp_path / "trained.ckpt", tmp_path / "bad.ckpt", input_size=(16, 384))


def test_pack_takes_rules_from_a_yaml_and_the_decoding_source(tmp_path):
    from parsing.inference.exclusions import exclusion_pairs

    rules = tmp_path / "rules.yaml"
    rules.write_text("# 2 exclusive garment pairs\nexclusions:\n- [dress, skirt]\n- [bag, purse]\n")
    pack(DEFAULT_CHECKPOINT, tmp_path / "p.ckpt", rules_from=rules, decode_from="pooled")
    module = Parser.load(tmp_path / "p.ckpt").spec
    assert exclusion_pairs(module.exclusive, module.class_names) == [("bag", "purse"), ("dress", "skirt")]
    assert module.decoding.decode_from == "pooled"
    rules.write_text("exclusions: []\n")  # a label set without exclusive pairs packs; parses skip the pair step
    pack(DEFAULT_CHECKPOINT, tmp_path / "none.ckpt", rules_from=rules)
    assert not Parser.load(tmp_path / "none.ckpt").spec.exclusive.any()
    rules.write_text("pairs: []\n")
    with pytest.raises(ValueError, match="not a rules file"):
        pack(DEFAULT_CHECKPOINT, tmp_path / "q.ckpt", rules_from=rules)
    with pytest.raises(ValueError, match="choose one of"):
        pack(DEFAULT_CHECKPOINT, tmp_path / "q.ckpt", decode_from="tags")
