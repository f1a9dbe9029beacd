"""``ParsingModule`` (the LightningModule) around its ``ParsingModel``: checkpoints, evaluation's label maps."""

import torch

from parsing.model import ParsingModel
from parsing.training.module import ParsingModule

NAMES = ["null", "skin", "hair", "dress", "skirt", "blouse", "t-shirt", "bag"]


def module(**kwargs) -> ParsingModule:
    return ParsingModule(encoder_weights=None, class_names=NAMES, exclusions=[["dress", "skirt"]], **kwargs)


def test_the_module_holds_a_plain_model_and_its_checkpoint_rebuilds_it(tmp_path):
    torch.manual_seed(0)
    trained = module(outfit="aux")
    assert isinstance(trained.model, ParsingModel) and trained.net is trained.model.net
    assert all(key.startswith("model.") for key in trained.state_dict() if "net." in key)
    checkpoint = {"hyper_parameters": dict(trained.hparams), "state_dict": trained.state_dict()}
    torch.save(checkpoint, tmp_path / "fit.ckpt")
    model = ParsingModel.from_checkpoint(tmp_path / "fit.ckpt")  # a fit's checkpoint: "model." names
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), trained.eval()(x))
    assert model.exclusive[3, 4] and model.config["outfit"] == "aux"


def test_a_checkpoint_from_before_the_model_layer_loads_into_the_module():
    torch.manual_seed(0)
    source = ParsingModel(class_names=NAMES)
    old = {"state_dict": dict(source.state_dict())}  # 0.4 names: net.*, exclusive
    old["state_dict"]["exclusive"] = torch.zeros(8, 8, dtype=torch.bool)  # no rules: the configured ones stay
    target = module()
    target.on_load_checkpoint(old)
    target.load_state_dict(old["state_dict"])
    assert torch.equal(target.model.net.seg.segmentation_head[0].weight, source.net.seg.segmentation_head[0].weight)
    assert target.exclusive[3, 4]


def test_test_with_tags_from_masks_uses_each_photos_garments():
    m = module(decode=False, tags_from_masks=True)
    logits = torch.zeros(1, len(NAMES), 8, 8)
    logits[0, 3] = 5.0  # dress everywhere ...
    logits[0, 4] = 4.0  # ... skirt second
    truth = torch.full((8, 8), 4)  # the mask holds skirt only
    batch = {"valid": [(8, 8)], "size": [(8, 8)], "full_mask": [truth]}
    (labels,) = m.label_maps(logits, None, batch)
    assert (labels == 4).all()
    m.tags_from_masks = False
    (labels,) = m.label_maps(logits, None, batch)
    assert (labels == 3).all()
