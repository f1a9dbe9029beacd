import pytest
import torch

from parsing.training.module import ParsingModule

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


def test_shared_softmax_losses_equal_torch_and_smp():
    """parsing.nn.losses reads one log-softmax; its CE and Dice must equal nn.CrossEntropyLoss and smp's DiceLoss,
    values and gradients, on channels-last logits with ignored pixels and class weights."""
    from segmentation_models_pytorch.losses import DiceLoss

    from parsing.nn.losses import cross_entropy, dice_loss, log_probs

    torch.manual_seed(0)
    k = 7
    logits = torch.randn(3, k, 20, 12).contiguous(memory_format=torch.channels_last) * 3
    mask = torch.randint(0, k - 2, (3, 20, 12))  # two labels absent: Dice counts them as 0
    mask[:, :4] = IGNORE
    weight = torch.rand(k) + 0.5
    for ours, theirs in [
        (lambda x: cross_entropy(log_probs(x), mask, weight),
         lambda x: torch.nn.CrossEntropyLoss(weight=weight, ignore_index=IGNORE)(x, mask)),
        (lambda x: cross_entropy(log_probs(x), mask),
         lambda x: torch.nn.functional.cross_entropy(x, mask, ignore_index=IGNORE)),
        (lambda x: dice_loss(log_probs(x).exp(), mask), lambda x: DiceLoss("multiclass", ignore_index=IGNORE)(x, mask)),
    ]:  # fmt: skip
        a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
        value, reference = ours(a), theirs(b)
        value.backward(), reference.backward()
        assert torch.allclose(value, reference, atol=1e-6), (value, reference)
        assert torch.allclose(a.grad, b.grad, atol=1e-7)


def test_training_step_losses_equal_the_separate_ones():
    module = ParsingModule(encoder_weights=None, num_classes=4, channels_last=False, loss="ce+dice", pooled_weight=1.0)
    mask, right = mask_and_logits()
    logits = right + torch.randn_like(right)
    batch = {"mask": mask, "presence": torch.ones(2, 4), "known": torch.ones(2, 4)}
    from parsing.nn.losses import log_probs

    lp = log_probs(logits)
    probs = lp.exp()
    assert torch.allclose(module.segmentation_loss(logits, mask, lp, probs), module.segmentation_loss(logits, mask))
    shared = module.pooled_loss(logits, batch, probs.movedim(-1, 1))
    assert torch.allclose(shared, module.pooled_loss(logits, batch))
