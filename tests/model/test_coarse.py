"""``CoarseLogits``: logits before the head's ×4 upsampling answer as the upsampled logits do."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from parsing.data.transforms import fit_photo
from parsing.inference.confidence import sampled_probs
from parsing.inference.resize import upsample_labels
from parsing.labels import CCP_LABELS
from parsing.model import ParsingModel
from parsing.model.coarse import CoarseLogits, dense, every, rows_at, top_of


@pytest.fixture(scope="module")
def small(ccp_root) -> torch.Tensor:
    """The shipped network's logits before its upsampling for a CCP photo (K, H/4, W/4), channels-last like
    OpenVINO's."""
    net = ParsingModel.from_checkpoint("shipped").eval().net
    x = fit_photo(np.asarray(Image.open(ccp_root / "photos" / "0009.jpg").convert("RGB")), (384, 256))[None]
    x = F.pad(x, (0, -x.shape[-1] % 32, 0, -x.shape[-2] % 32))
    with torch.inference_mode():
        q = net.seg.segmentation_head[0](net.seg.decoder(net.features(x)))[0]
    return q.permute(1, 2, 0).contiguous().permute(2, 0, 1)


def upsampled(small: torch.Tensor) -> torch.Tensor:
    return F.interpolate(small[None], scale_factor=4, mode="bilinear", align_corners=True)[0]  # the head's step


def test_coarse_logits_answer_as_the_upsampled_ones(small):
    full = upsampled(small)[:, :381, :250]  # the padding cropped
    coarse = CoarseLogits(small, (4 * small.shape[1], 4 * small.shape[2])).crop(381, 250)
    assert coarse.shape == full.shape
    assert torch.allclose(coarse.dense(), full, atol=1e-4)
    assert torch.equal(coarse.argmax(), full.argmax(0))  # exact: interpolated only where the cells disagree
    ys, xs = torch.randint(0, 381, (500,)), torch.randint(0, 250, (500,))
    assert torch.allclose(rows_at(coarse, ys, xs), full[:, ys, xs].T, atol=1e-4)
    assert torch.allclose(every(coarse, 2), full[:, 1::2, 1::2], atol=1e-4)
    assert torch.allclose(sampled_probs(coarse), sampled_probs(full), atol=1e-5)
    assert every(coarse, 2).permute(1, 2, 0).is_contiguous()  # the layout a softmax over labels reads fastest


def test_the_helpers_read_a_tensor_as_before(small):
    full = upsampled(small)
    assert dense(full) is full
    assert torch.equal(top_of(full), full.argmax(0))
    assert torch.equal(every(full, 2), full[:, 1::2, 1::2])
    assert torch.equal(rows_at(full, torch.tensor([3]), torch.tensor([5])), full[:, 3, 5][None])


@pytest.mark.parametrize("banned", [None, "shoes"])
def test_the_photo_size_label_map_from_coarse_logits_is_the_dense_one(small, banned):
    coarse = CoarseLogits(small, (4 * small.shape[1], 4 * small.shape[2])).crop(381, 250)
    full = coarse.dense()
    ban = None
    if banned:
        ban = torch.zeros(full.shape[0], dtype=torch.bool)
        ban[CCP_LABELS.index(banned)] = True
    ours = upsample_labels(coarse, (381, 250), (830, 550), ban)
    theirs = upsample_labels(full, (381, 250), (830, 550), ban)
    assert (ours == theirs).float().mean() >= 0.9999  # rounding apart, on label edges only
