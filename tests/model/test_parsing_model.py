"""``ParsingModel``: built from its config, saved and rebuilt with the same outputs; the shipped model as a plain
nn.Module; ``DecodeSettings`` checked."""

import pytest
import torch

from parsing.model import SHIPPED, DecodeSettings, ParsingModel

NAMES = ["null", "skin", "dress", "skirt"]


def test_saved_and_rebuilt_from_its_own_config(tmp_path):
    torch.manual_seed(0)
    model = ParsingModel(NAMES, outfit="aux", decoding=DecodeSettings(decode_from="pooled"), input_size=(320, 224))
    model.exclusive[2, 3] = model.exclusive[3, 2] = True
    path = model.save(tmp_path / "sub" / "m.ckpt")
    again = ParsingModel.from_checkpoint(path)
    assert again.class_names == NAMES and again.palette == model.palette and again.input_size == (320, 224)
    assert again.decoding == model.decoding and torch.equal(again.exclusive, model.exclusive)
    x = torch.rand(2, 3, 70, 50)  # any size: padded to /32 inside, cropped back
    with torch.no_grad():
        logits, presence = model.eval().forward_with_presence(x)
        logits2, presence2 = again.forward_with_presence(x)
    assert logits.shape == (2, 4, 70, 50) and presence.shape == (2, 4)
    assert torch.equal(logits, logits2) and torch.equal(presence, presence2)


def test_the_shipped_model_is_plain_pytorch():
    model = ParsingModel.from_checkpoint("shipped")
    assert isinstance(model, torch.nn.Module) and not model.training
    assert model.num_classes == 59 and model.input_size == (576, 384) and model.exclusive.any()
    assert ParsingModel.from_checkpoint(SHIPPED).config == model.config
    assert "pytorch_lightning" not in type(model).__mro__[1].__module__


def test_a_config_from_a_fit_ignores_training_options():
    config = {"class_names": NAMES, "lr": 0.1, "loss": "ce+dice", "decode_from": "pixels", "palette": None}
    model = ParsingModel.from_config(config)
    assert model.decoding.decode_from == "pixels" and model.num_classes == 4 and len(model.palette) == 4


def test_decode_settings_name_the_valid_sources():
    with pytest.raises(ValueError, match="choose one of auto, presence, pixels, pooled"):
        DecodeSettings(decode_from="outfit")
