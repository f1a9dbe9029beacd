"""Network-size logits → photo size: the label map equals the argmax of the bilinearly resized logits."""

import pytest
import torch
import torch.nn.functional as F

from parsing.inference.resize import upsample_labels, upsample_logits


def smooth_logits(k: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Logits that vary slowly, like a network's: large regions with one winner, edges between them."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, k, max(2, h // 8), max(2, w // 8), generator=gen) * 4
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]


@pytest.mark.parametrize(
    ("shape", "valid", "size"),
    [
        ((6, 64, 48), (64, 48), (150, 97)),  # enlarge to an odd size
        ((6, 64, 48), (60, 41), (150, 97)),  # padding cropped first
        ((6, 64, 48), (64, 48), (31, 20)),  # shrink
        ((6, 64, 48), (64, 48), (64, 48)),  # same size
        ((4, 1, 1), (1, 1), (7, 5)),  # one network pixel
        ((59, 96, 64), (96, 64), (223, 151)),  # CCP's label count
    ],
)
def test_labels_equal_the_argmax_of_resized_logits(shape, valid, size):
    for logits in (smooth_logits(*shape), torch.randn(*shape)):  # few mixed blocks / every block mixed
        want = upsample_logits(logits, valid, size).argmax(0)
        got = upsample_labels(logits, valid, size)
        assert got.shape == size and got.dtype == torch.long
        assert torch.equal(got, want)


def test_banned_labels_never_win():
    """``banned`` = the decoded outfit's suppression: the same map as resizing logits pushed to −1e9."""
    for seed, logits in enumerate((smooth_logits(6, 40, 30, seed=1), torch.randn(6, 40, 30))):
        banned = torch.tensor([False, True, False, False, True, False])
        want = upsample_logits(logits.masked_fill(banned[:, None, None], -1e9), (40, 30), (97, 71)).argmax(0)
        got = upsample_labels(logits, (40, 30), (97, 71), banned, logits.argmax(0))
        assert torch.equal(got, want), seed
        assert not banned[got].any()
