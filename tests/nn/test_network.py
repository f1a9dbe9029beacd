import pytest
import torch

from parsing.nn.encoder_weights import HALF, IMAGENET_MEAN, load_encoder_file, offline_weights_file, remap_by_order
from parsing.nn.model import ARCHITECTURES, build_model

LITE0 = "timm-tf_efficientnet_lite0"


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_trains_a_step_on_any_size(arch):
    torch.manual_seed(0)
    model = build_model(arch, LITE0, None, num_classes=5).to(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 70, 45)  # not a multiple of 32: padded inside, cropped back
    logits = model(x)
    assert logits.shape == (2, 5, 70, 45)
    loss = torch.nn.functional.cross_entropy(logits, torch.randint(0, 5, (2, 70, 45)))
    loss.backward()
    # smp's EfficientNet-Lite encoder keeps its unused ImageNet head (conv_head, bn2): no gradient there
    unused = ("seg.encoder.conv_head", "seg.encoder.bn2")
    grads = {n: p.grad for n, p in model.named_parameters() if not n.startswith(unused)}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert sum(float(g.abs().sum()) for g in grads.values()) > 0


def test_fcn8s_on_another_encoder():
    model = build_model("fcn8s", "resnet18", None, num_classes=3)
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_offline_efficientnet_lite_weights_load_strictly():
    source = torch.load(offline_weights_file(LITE0), map_location="cpu", weights_only=True)
    model = build_model("fpn", LITE0, "imagenet-offline", num_classes=3)
    encoder = model.seg.encoder.state_dict()
    kept = [k for k in source if not k.startswith("_fc.")]
    assert len(kept) == 294  # loaded strictly, then the unused head (_conv_head, _bn1: 6 tensors) is dropped
    assert len(encoder) == 288 and not any(k.startswith(("conv_head", "bn2")) for k in encoder)
    assert torch.equal(encoder["conv_stem.weight"], source["_conv_stem.weight"])
    for ours, theirs in zip(encoder.values(), kept, strict=False):  # same order, the head last
        assert torch.equal(ours, source[theirs])
    assert model.mean.flatten().tolist() == list(HALF) and model.std.flatten().tolist() == list(HALF)


def test_remap_refuses_mismatched_shapes():
    source = {"a": torch.zeros(3), "b": torch.zeros(4)}
    with pytest.raises(ValueError, match="cannot remap b"):
        remap_by_order(source, {"x": torch.zeros(3), "y": torch.zeros(5)})
    with pytest.raises(ValueError, match="2 source tensors for 1"):
        remap_by_order(source, {"x": torch.zeros(3)})


def test_local_weights_file_by_name(tmp_path):
    donor = build_model("unet", "resnet18", None, num_classes=2)
    path = tmp_path / "encoder.pth"
    torch.save(donor.seg.encoder.state_dict(), path)
    model = build_model("fpn", "resnet18", str(path), num_classes=4)
    assert torch.equal(model.seg.encoder.conv1.weight, donor.seg.encoder.conv1.weight)
    assert model.mean.flatten().tolist() == pytest.approx(IMAGENET_MEAN)
    with pytest.raises(FileNotFoundError, match="encoder weights file not found"):
        load_encoder_file(model.seg.encoder, tmp_path / "missing.pth")


def test_offline_weights_only_for_lite_encoders():
    with pytest.raises(ValueError, match="timm-tf_efficientnet_lite0/1/2 only"):
        build_model("fpn", "resnet18", "imagenet-offline", num_classes=3)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("segformer", LITE0, None, num_classes=3)


def test_context_block_starts_as_the_identity_then_learns():
    torch.manual_seed(0)
    plain = build_model("fpn", LITE0, None, num_classes=5).eval()
    context = build_model("fpn", LITE0, None, num_classes=5, context="attention").eval()
    missing = context.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("context.") for k in missing)  # trained weights load; the block is new
    x = torch.rand(2, 3, 70, 45)
    with torch.no_grad():
        assert torch.allclose(context(x), plain(x), atol=1e-5)  # zero-initialised output: the identity
    context.train()
    torch.nn.functional.cross_entropy(context(x), torch.randint(0, 5, (2, 70, 45))).backward()
    assert context.context.out.weight.grad.abs().sum() > 0
    block = context.context.eval()
    with torch.no_grad():
        block.out.weight.normal_(0, 0.1)
        cells = torch.rand(1, block.norm.normalized_shape[0], 6, 4)  # (B, C, h, w) deepest features
        moved = cells.clone()
        moved[0, :, 5, 3] = torch.rand(cells.shape[1])  # change only the far corner cell
        assert (block(cells) - block(moved))[..., 0, 0].abs().max() > 1e-4  # the opposite corner sees it


def test_unknown_context():
    with pytest.raises(ValueError, match="unknown context"):
        build_model("fpn", LITE0, None, num_classes=3, context="transformer")
