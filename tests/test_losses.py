import pytest
import torch

from parsing.module import ParsingModule

IGNORE = 255


def mask_and_logits(k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    mask = torch.randint(0, k, (2, 16, 12))
    mask[:, :3] = IGNORE  # a band of ignored pixels
    right = torch.nn.functional.one_hot(mask.clamp(max=k - 1), k).permute(0, 3, 1, 2).float() * 4.0
    return mask, right


@pytest.mark.parametrize("loss", ["ce", "ce+dice", "ce+lovasz"])
def test_each_loss_prefers_the_right_labels_and_ignores_255(loss):
    module = ParsingModule(encoder_weights=None, num_classes=4, channels_last=False, loss=loss)
    mask, right = mask_and_logits()
    wrong = right.roll(1, dims=1)
    assert module.segmentation_loss(right, mask) < module.segmentation_loss(wrong, mask)
    noise = right.clone()
    noise[:, :, :3] = torch.randn(2, 4, 3, 12) * 10  # only the ignored pixels change
    assert torch.allclose(module.segmentation_loss(noise, mask), module.segmentation_loss(right, mask))


def test_lovasz_term_is_weighted_and_strided():
    module = ParsingModule(encoder_weights=None, num_classes=4, channels_last=False, loss="ce+lovasz")
    mask, right = mask_and_logits()
    logits = (right + torch.randn_like(right)).requires_grad_()
    ce = module.ce(logits, mask)
    lovasz = module.lovasz(logits[..., ::2, ::2], mask[..., ::2, ::2])
    total = module.segmentation_loss(logits, mask)
    assert torch.allclose(total, ce + 0.5 * lovasz) and lovasz.item() > 0
    total.backward()
    assert float(logits.grad[:, :, 3:].abs().sum()) > 0 and float(logits.grad[:, :, :3].abs().sum()) == 0
