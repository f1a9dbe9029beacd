import itertools
import math

import pytest
import torch

from parsing.data.datamodule import MixedSampler
from parsing.inference.exclusions import (
    decode_outfit,
    exclusion_matrix,
    exclusion_pairs,
    learn_exclusions,
    pixel_outfit,
    presence_targets,
    suppress_excluded,
    violations,
)
from parsing.labels import IGNORE_INDEX
from parsing.nn.model import build_model
from parsing.nn.outfit import gate
from parsing.training.module import ParsingModule

LITE0 = "timm-tf_efficientnet_lite0"


def test_branch_shape_and_gate():
    torch.manual_seed(0)
    net = build_model("fpn", LITE0, None, num_classes=4, outfit="gate").eval()
    x = torch.rand(2, 3, 64, 64)
    logits, presence = net.forward_with_presence(x)
    assert logits.shape == (2, 4, 64, 64) and presence.shape == (2, 4)
    net.gate_mode = None  # the same network, ungated
    raw, same_presence = net.forward_with_presence(x)
    assert torch.allclose(same_presence, presence)
    assert torch.allclose(logits, raw * torch.sigmoid(presence)[:, :, None, None], atol=1e-6)


def test_gate_modes():
    logits = torch.tensor([[[[2.0]], [[-2.0]]]])  # (1, 2, 1, 1)
    presence = torch.tensor([[0.0, 100.0]])  # probabilities 0.5 and ~1
    assert gate(logits, presence, "multiply").flatten().tolist() == pytest.approx([1.0, -2.0])
    assert gate(logits, presence, "log").flatten().tolist() == pytest.approx([2.0 + math.log(0.5), -2.0])


@pytest.mark.parametrize("arch", ["unet", "fcn8s", "deeplabv3plus"])
def test_every_decoder_takes_the_branch(arch):
    net = build_model(arch, LITE0, None, num_classes=3, outfit="aux")
    logits, presence = net.forward_with_presence(torch.rand(2, 3, 64, 32))
    assert logits.shape == (2, 3, 64, 32) and presence.shape == (2, 3)


def test_presence_targets_from_a_known_mask():
    mask = torch.zeros(1, 100, 100, dtype=torch.long)
    mask[0, :50] = 1  # half the photo
    mask[0, 0, :5] = 2  # 5 pixels: a speck below 0.1 %
    mask[0, 99, :20] = 3  # 20 pixels: 0.2 %
    mask[0, 90:] = torch.where(mask[0, 90:] == 0, IGNORE_INDEX, mask[0, 90:])  # ignored pixels do not count
    target = presence_targets(mask, num_classes=5, min_fraction=0.001)
    assert target.tolist() == [[1.0, 1.0, 0.0, 1.0, 0.0]]


def test_exclusions_from_a_synthetic_cooccurrence_table():
    # labels: 0 null, 1 skin, 2 dress, 3 skirt, 4 bag, 5 belt (rare)
    rows = [[1, 1, 1, 0, 1, 0]] * 40 + [[1, 1, 0, 1, 1, 0]] * 40 + [[1, 1, 1, 0, 0, 1]] * 3 + [[1, 1, 0, 0, 0, 0]] * 17
    presence = torch.tensor(rows, dtype=torch.float32)
    garments = torch.tensor([False, False, True, True, True, True])
    exclusive = learn_exclusions(presence, garments, min_count=15, min_expected=3.0)
    names = ["null", "skin", "dress", "skirt", "bag", "belt"]
    # dress+skirt never meet though both are frequent; belt is too rare to judge; null/skin are not garments
    assert exclusion_pairs(exclusive, names) == [("dress", "skirt")]
    assert torch.equal(exclusive, exclusive.T)
    # "almost never": one photo with both still counts when a ratio is allowed
    presence[0, 3] = 1
    assert not learn_exclusions(presence, garments)[2, 3]
    assert learn_exclusions(presence, garments, max_ratio=0.1)[2, 3]


def test_exclusion_matrix_from_yaml_names():
    names = ["null", "dress", "skirt", "pants"]
    exclusive = exclusion_matrix([["dress", "skirt"], ["skirt", "pants"]], names)
    assert exclusion_pairs(exclusive, names) == [("dress", "skirt"), ("pants", "skirt")]
    with pytest.raises(ValueError, match="unknown label"):
        exclusion_matrix([["dress", "kilt"]], names)


def test_decoding_never_returns_an_excluded_pair():
    g = torch.Generator().manual_seed(0)
    k = 8
    for _ in range(200):
        upper = torch.rand(k, k, generator=g) < 0.3
        exclusive = torch.triu(upper, 1)
        exclusive = exclusive | exclusive.T
        probs = torch.rand(k, generator=g)
        chosen = decode_outfit(probs, exclusive)
        assert not (exclusive & chosen[:, None] & chosen[None, :]).any()
        # optimal: no valid set of labels above 0.5 has a higher log-likelihood
        score = torch.log(probs) - torch.log1p(-probs)
        best = max(
            (
                float(sum(score[i] for i in s))
                for r in range(k + 1)
                for s in itertools.combinations(range(k), r)
                if not any(exclusive[a, b] for a, b in itertools.combinations(s, 2))
            ),
        )
        assert float(score[chosen].sum()) == pytest.approx(best, abs=1e-5)


def test_suppression_and_violations():
    exclusive = exclusion_matrix([["dress", "skirt"]], ["null", "dress", "skirt"])
    logits = torch.zeros(3, 4, 4)
    logits[2] = 5.0  # skirt wins everywhere before decoding
    chosen = torch.tensor([True, True, False])  # the decoded outfit holds a dress
    labels = suppress_excluded(logits, chosen, exclusive).argmax(0)
    assert not (labels == 2).any()
    half = torch.tensor([[1, 1], [2, 2]])
    assert violations(half, exclusive, 3) and not violations(torch.ones(2, 2, dtype=torch.long), exclusive, 3)


def tag_batch(k: int) -> dict:
    presence = torch.zeros(2, k)
    presence[:, 3] = 1
    known = torch.zeros(2, k, dtype=torch.bool)
    known[:, 2:] = True
    return {
        "image": torch.rand(2, 3, 64, 64),
        "mask": torch.full((2, 64, 64), IGNORE_INDEX),
        "presence": presence,
        "known": known,
    }


@pytest.mark.filterwarnings("ignore:You are trying to `self.log()`")
def test_tag_only_batches_train_only_the_branch():
    torch.manual_seed(0)
    module = ParsingModule(encoder_weights=None, num_classes=5, outfit="aux", channels_last=False)
    loss = module.training_step(tag_batch(5), 0)
    loss.backward()
    # no mask: nothing reaches the decoder or the segmentation head; the presence loss trains the branch
    # (and, through it, the shared encoder)
    heads = [*module.net.seg.decoder.parameters(), *module.net.seg.segmentation_head.parameters()]
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in heads)
    assert all(float(p.grad.abs().sum()) > 0 for p in module.net.outfit.parameters())


def test_stage_two_freezes_the_segmentation():
    module = ParsingModule(encoder_weights=None, num_classes=5, outfit="gate", trainable="outfit")
    assert not any(p.requires_grad for p in module.net.seg.parameters())
    assert all(p.requires_grad for p in module.net.outfit.parameters())
    with pytest.raises(ValueError, match="needs an outfit encoder"):
        ParsingModule(encoder_weights=None, num_classes=5, trainable="outfit")


def test_mixed_sampler_takes_every_pixel_photo_and_fresh_tags():
    sampler = MixedSampler([(10, None), (100, 0.5)], seed=0)
    first, second = list(sampler), list(sampler)
    assert len(first) == len(sampler) == 15
    assert sorted(i for i in first if i < 10) == list(range(10))
    assert all(10 <= i < 110 for i in first if i >= 10)
    assert first != second  # a new draw of tag photos each epoch


def test_mixed_sampler_takes_whole_pools_and_draws_from_each():
    sampler = MixedSampler([(10, None), (6, None), (100, 0.3)], seed=0)
    order = list(sampler)
    assert len(order) == len(set(order)) == 10 + 6 + 3
    assert sorted(i for i in order if i < 16) == list(range(16))  # labelled and extra: all of them
    assert sum(16 <= i < 116 for i in order) == 3


def test_pixel_decoding_keeps_the_bigger_of_two_exclusive_garments():
    names = ["null", "dress", "skirt", "bag"]
    exclusive = exclusion_matrix([["dress", "skirt"]], names)
    logits = torch.zeros(4, 10, 10)
    logits[1, :6] = 5.0  # dress on 60 % of the photo
    logits[2, 6:] = 5.0  # skirt on 40 %
    logits[3, 9, 9] = 9.0  # one bag pixel
    chosen = pixel_outfit(logits, exclusive, min_fraction=0.001)
    assert chosen.tolist() == [False, True, False, True]
    labels = suppress_excluded(logits, chosen, exclusive).argmax(0)
    assert not (labels == 2).any() and (labels == 1).sum() >= 60


def test_pixel_decoding_without_a_conflict_keeps_every_candidate():
    names = ["null", "dress", "skirt", "bag"]
    exclusive = exclusion_matrix([["dress", "skirt"]], names)
    logits = torch.zeros(4, 10, 10)
    logits[1, :6] = 5.0  # dress
    logits[3, 6:] = 5.0  # bag: no exclusive pair among the candidates, so no softmax mass is needed
    assert pixel_outfit(logits, exclusive, min_fraction=0.001).tolist() == [False, True, False, True]


def test_module_decodes_from_pixels_without_an_outfit_encoder():
    module = ParsingModule(
        encoder_weights=None, class_names=["null", "dress", "skirt"], exclusions=[["dress", "skirt"]]
    )
    logits = torch.zeros(1, 3, 8, 8)
    logits[0, 1, :5] = 3.0
    logits[0, 2, 5:] = 3.0
    batch = {"valid": [(8, 8)], "size": [(16, 16)]}
    (labels,) = module.label_maps(logits, None, batch)
    assert labels.shape == (16, 16) and set(labels.unique().tolist()) <= {0, 1}
    module.hparams.decode = False
    (plain,) = module.label_maps(logits, None, batch)
    assert 2 in plain.unique().tolist()
    module.hparams.decode, module.hparams.decode_from = True, "presence"
    with pytest.raises(ValueError, match="needs an outfit encoder"):
        module.label_maps(logits, None, batch)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log()`")
def test_pooled_presence_loss_trains_the_decoder_on_tag_only_photos():
    torch.manual_seed(0)
    module = ParsingModule(encoder_weights=None, num_classes=5, channels_last=False, pooled_weight=1.0)
    batch = tag_batch(5)
    batch["region"] = torch.ones(2, 64, 64, dtype=torch.bool)
    loss = module.training_step(batch, 0)
    loss.backward()
    heads = [*module.net.seg.decoder.parameters(), *module.net.seg.segmentation_head.parameters()]
    assert float(loss.detach()) > 0 and all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in heads)


def test_pooled_presence_reads_the_top_cells_inside_the_photo():
    module = ParsingModule(encoder_weights=None, num_classes=3, min_fraction=0.01)
    logits = torch.zeros(1, 3, 40, 40)
    logits[0, 0] = 10.0  # background everywhere, but:
    logits[0, 1, :4, :4] = 20.0  # label 1 on one 4x4 cell of 100: the top 1 % share
    logits[0, 2, 36:, 36:] = 20.0  # label 2 only outside the photo's region
    region = torch.ones(1, 40, 40, dtype=torch.bool)
    region[0, 30:, 30:] = False
    pooled = module.pooled_presence(logits, region)[0]
    assert pooled[1] > 0.99 and pooled[2] < 0.01


def test_sampled_pooled_presence_and_pixel_mass_match_the_whole_map_on_upsampled_logits():
    from parsing.inference.decode import pooled_presence

    torch.manual_seed(0)
    coarse = torch.randn(1, 6, 12, 10) * 2  # what a segmentation head gives at 1/4 of the photo…
    logits = torch.nn.functional.interpolate(coarse, scale_factor=4, mode="bilinear", align_corners=True)  # …then ×4
    exact = pooled_presence(logits, 0.05)
    assert (pooled_presence(logits, 0.05, sample=1) == exact).all()
    assert (pooled_presence(logits, 0.05, sample=2) - exact).abs().max() < 0.08  # 0.021 at most on 90 CCP photos
    blocks = coarse.repeat_interleave(4, 2).repeat_interleave(4, 3)  # constant on each 4×4 cell: sampling is exact
    assert torch.allclose(pooled_presence(blocks, 0.05, sample=2), pooled_presence(blocks, 0.05), atol=1e-6)
    exclusive = torch.zeros(6, 6, dtype=torch.bool)
    exclusive[1, 2] = exclusive[2, 1] = True
    assert pixel_outfit(logits[0], exclusive, 0.001, sample=2).tolist() == pixel_outfit(logits[0], exclusive).tolist()


@pytest.mark.parametrize("source", ["presence", "pooled"])
def test_presence_decoding_leaves_no_pair_among_labels_below_the_threshold(source):
    module = ParsingModule(
        encoder_weights=None, class_names=["null", "dress", "skirt"], exclusions=[["dress", "skirt"]], outfit="aux"
    )
    module.hparams.decode_from, module.hparams.presence_threshold = source, 0.99  # nothing is chosen
    logits = torch.zeros(1, 3, 8, 8)
    logits[0, 1, :5] = 3.0  # dress on 5 rows
    logits[0, 2, 5:] = 3.0  # skirt on 3
    presence = torch.full((1, 3), -5.0)  # every label improbable: the presence set is empty
    (labels,) = module.label_maps(logits, presence, {"valid": [(8, 8)], "size": [(16, 16)]})
    shown = set(labels.unique().tolist())
    assert 1 in shown and 2 not in shown  # the pixels' larger garment, alone


def test_allowed_argmax_equals_the_argmax_of_masked_logits():
    from parsing.inference.exclusions import allowed_argmax

    torch.manual_seed(0)
    logits = torch.randn(6, 9, 7)
    banned = torch.tensor([False, True, False, True, False, False])
    top = logits.max(0).indices
    expected = logits.masked_fill(banned[:, None, None], float("-inf")).max(0).indices
    assert torch.equal(allowed_argmax(logits, top, banned), expected)
    assert allowed_argmax(logits, top, torch.zeros(6, dtype=torch.bool)) is top  # nothing banned: no copy


def test_softmax_over_channels_last_logits_matches_torch():
    from parsing.inference.crf import softmax

    logits = torch.randn(2, 7, 12, 9).contiguous(memory_format=torch.channels_last)
    assert torch.allclose(softmax(logits, 1), logits.softmax(1), atol=1e-6)
    assert torch.allclose(softmax(logits[0], 0), logits[0].softmax(0), atol=1e-6)
    assert softmax(logits, 1).is_contiguous(memory_format=torch.channels_last)


def test_channels_last_cell_means_match_avg_pool_at_every_size():
    from parsing.inference.decode import cell_means

    torch.manual_seed(0)
    for h, w in [(12, 10), (13, 11), (5, 3), (1, 1)]:
        probs = torch.rand(2, h, w, 7).softmax(-1).permute(0, 3, 1, 2)  # channels-last, as the shared softmax
        for pool in (2, 4):
            exact = torch.nn.functional.avg_pool2d(probs.contiguous(), pool, ceil_mode=True).flatten(2)
            got = cell_means(probs, pool)
            assert got.shape == exact.shape and torch.allclose(got, exact, atol=1e-6), (h, w, pool)


def test_softmax_mass_from_the_shared_softmax_matches_the_softmax_of_the_logits():
    from parsing.inference.confidence import sampled_probs
    from parsing.inference.exclusions import softmax_mass

    torch.manual_seed(0)
    logits = torch.randn(6, 20, 16) * 3
    logits[2, :8] = 40.0  # a banned label that takes whole cells: its share is ~1 there, recomputed from the logits
    for banned in (None, torch.tensor([False, False, True, False, True, False])):
        exact = softmax_mass(logits, 2, banned)
        shared = softmax_mass(logits, 2, banned, sampled_probs(logits))
        assert torch.allclose(shared, exact, rtol=1e-4, atol=1e-4), banned
    assert softmax_mass(logits, 2, banned, sampled_probs(logits))[2] == 0  # a banned label has no mass
