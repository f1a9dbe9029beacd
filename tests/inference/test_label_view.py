"""Known garments (tags) and label merges at predict time: ``parsing.inference.label_view`` and ``parse_photo``,
on a tiny model: decoding reads only a model's ``decoding`` settings and its ``exclusive`` pairs."""

from types import SimpleNamespace

import pytest
import torch

from parsing.inference.decode import parse_photo
from parsing.inference.exclusions import exclusion_matrix
from parsing.inference.label_view import LabelView
from parsing.model import DecodeSettings

NAMES = ["null", "skin", "hair", "dress", "skirt", "blouse", "t-shirt", "bag"]
PALETTE = [[i * 20, i * 10, 255 - i * 20] for i in range(len(NAMES))]
GROUPS = {"null": ["null"], "body": ["skin", "hair"], "dress": ["dress"], "skirt": ["skirt"],
          "top": ["blouse", "t-shirt"], "bag": ["bag"]}  # fmt: skip


EXCLUSIVE = exclusion_matrix([["dress", "skirt"]], NAMES)


def module(decode: bool = True) -> SimpleNamespace:
    """What decoding reads of a ``ParsingModel``."""
    return SimpleNamespace(decoding=DecodeSettings(decode=decode), exclusive=EXCLUSIVE, class_names=NAMES)


def label_view(merge=None, garments=None) -> LabelView:  # noqa: ANN001
    return LabelView.build(NAMES, PALETTE, EXCLUSIVE, merge, garments)


def test_tags_allow_only_the_listed_garments_and_the_body():
    logits = torch.zeros(len(NAMES), 10, 10)
    logits[3, :5] = 5.0  # dress above, skirt second best there
    logits[4, :5] = 1.0
    logits[4, 5:] = 5.0  # skirt below
    logits[5, :, :3] = 6.0  # blouse on the left third
    logits[4, :, :3] += 1.0  # skirt second best there
    logits[1, 9] = 9.0  # a skin row
    m = module(decode=False)
    labels, _ = parse_photo(m, logits, None, (10, 10), view=label_view(garments=["skirt", "bag"]))
    assert set(labels.unique().tolist()) <= {0, 1, 2, 4, 7}  # body, background and the tags only
    assert (labels[:9] == 4).all()  # dress and blouse pixels fall to the next allowed label, skirt
    assert (labels[9] == 1).all()  # skin stays


def test_merge_sums_probabilities_before_the_argmax():
    logits = torch.full((len(NAMES), 4, 4), -10.0)
    logits[5] = 1.0  # blouse
    logits[6] = 1.0  # t-shirt: together the tops hold 2/3 of the mass ...
    logits[3] = 1.5  # ... though dress has the largest single probability (argmax-then-map says dress)
    m = module(decode=False)
    view = label_view(merge=GROUPS)
    labels, _ = parse_photo(m, logits, None, (4, 4), view=view)
    assert view.names[int(labels[0, 0])] == "top"
    fine, _ = parse_photo(m, logits, None, (4, 4))
    assert NAMES[int(fine[0, 0])] == "dress"  # what mapping the fine argmax would have given


def test_merge_then_tags_sum_only_the_allowed_members():
    logits = torch.full((len(NAMES), 4, 4), -10.0)
    logits[5] = 1.0  # blouse (not tagged)
    logits[6] = 1.0  # t-shirt
    logits[3] = 1.5  # dress
    m = module(decode=False)
    view = label_view(merge=GROUPS, garments=["t-shirt", "dress"])
    labels, _ = parse_photo(m, logits, None, (4, 4), view=view)
    assert view.names[int(labels[0, 0])] == "dress"  # blouse's mass is gone with the tags


def test_merged_exclusions_and_decoded_set_are_in_group_labels():
    view = LabelView.build(NAMES, PALETTE, exclusion_matrix([["dress", "skirt"]], NAMES), GROUPS)
    index = {n: i for i, n in enumerate(view.names)}
    assert view.exclusive[index["dress"], index["skirt"]] and not view.exclusive[index["top"], index["skirt"]]
    m = module()
    logits = torch.zeros(len(NAMES), 10, 10)
    logits[3, :6] = 5.0  # dress on 60 %
    logits[4, 6:] = 5.0  # skirt on 40 %: exclusive, decoding keeps dress
    labels, chosen = parse_photo(m, logits, None, (10, 10), view=label_view(merge=GROUPS))
    assert chosen.shape == (len(view.names),) and chosen[index["dress"]] and not chosen[index["skirt"]]
    assert index["skirt"] not in labels.unique().tolist()


def test_group_presence_and_identity():
    view = LabelView.build(NAMES, PALETTE, torch.zeros(8, 8, dtype=torch.bool), GROUPS)
    probs = torch.tensor([0.9, 0.5, 0.5, 0.1, 0.2, 0.5, 0.5, 0.3])
    merged = view.presence_probs(probs)
    assert merged[view.names.index("top")] == pytest.approx(0.75)  # 1 - 0.5 * 0.5
    plain = LabelView.build(NAMES, PALETTE, torch.zeros(8, 8, dtype=torch.bool))
    assert plain.identity and plain.presence_probs(probs) is probs


def test_unknown_garments_name_the_valid_ones():
    hint = r"unknown garment name\(s\) 'dres' \(did you mean dress\?\); valid names: dress, skirt"
    with pytest.raises(ValueError, match=hint):
        label_view(garments=["dres", "bag"])
    with pytest.raises(ValueError, match="valid names"):
        label_view(garments=["skin"])  # the body is always allowed, not a garment


def test_group_sums_taken_in_pieces_equal_the_whole_map():
    import torch

    from parsing.inference.label_view import _group_logsumexp

    torch.manual_seed(0)
    logits = (torch.randn(1, 6, 9, 7) * 5).contiguous(memory_format=torch.channels_last)[0]  # (K, H, W)
    members = torch.zeros(6, 3)
    members[torch.arange(6), torch.tensor([0, 1, 1, 2, 2, 2])] = 1.0  # labels → 3 groups
    exact = torch.stack([logits[:1].logsumexp(0), logits[1:3].logsumexp(0), logits[3:].logsumexp(0)])
    for rows in (5, 16384):  # pieces that split rows of the map, and the whole map at once
        got = _group_logsumexp(logits, members, rows=rows)
        assert got.shape == (3, 9, 7) and torch.allclose(got, exact, atol=1e-5)
