import numpy as np
import pytest
import scipy.io

from parsing.labels import CCP_LABELS, IGNORE_INDEX, MERGES, LabelSet, default_palette


def test_ccp_names_match_label_list(ccp_root):
    names = [str(x[0]) for x in scipy.io.loadmat(ccp_root / "label_list.mat")["label_list"][0]]
    assert tuple(names) == CCP_LABELS


def test_palette_is_fixed_and_distinct():
    palette = default_palette(CCP_LABELS)
    assert len(set(palette)) == len(CCP_LABELS)
    assert palette[0] == (0, 0, 0)
    assert palette == default_palette(CCP_LABELS)


def test_identity_lut_keeps_ignore_and_flags_unknown():
    labels = LabelSet.ccp()
    raw = np.array([[0, 41, 58, IGNORE_INDEX, 59]], np.uint8)
    assert labels.encode(raw).tolist() == [[0, 41, 58, IGNORE_INDEX, IGNORE_INDEX]]


def test_coarse_merge_maps_every_member():
    labels = LabelSet.ccp("ccp-coarse")
    assert len(labels) == len(MERGES["ccp-coarse"])
    jeans, pants, skirt = (CCP_LABELS.index(n) for n in ("jeans", "pants", "skirt"))
    assert labels.lut[jeans] == labels.lut[pants] == labels.names.index("pants")
    assert labels.lut[skirt] == labels.names.index("skirt")
    assert labels.colours[labels.names.index("pants")] == default_palette(CCP_LABELS)[CCP_LABELS.index("pants")]


def test_unlisted_labels_join_the_first_group_whatever_its_name():
    labels = LabelSet.ccp({"background": ["null"], "top": ["blouse", "shirt"]})
    assert labels.names == ("background", "top")
    assert labels.lut[CCP_LABELS.index("hair")] == labels.lut[0] == 0
    assert labels.lut[CCP_LABELS.index("shirt")] == 1


def test_custom_merge_unlisted_go_to_null():
    labels = LabelSet.ccp({"null": ["null"], "skin": ["skin"], "legs": ["jeans", "pants"]})
    assert labels.names == ("null", "skin", "legs")
    assert labels.lut[CCP_LABELS.index("hair")] == 0
    assert labels.lut[CCP_LABELS.index("jeans")] == 2


@pytest.mark.parametrize(
    "groups, message",
    [
        ({"null": ["null"], "x": ["nonsense"]}, "unknown label 'nonsense'"),
        ({"null": ["null"], "a": ["skin"], "b": ["skin"]}, "in both"),
        ({}, "no groups"),
        ("no-such-preset", "unknown label merge"),
    ],
)
def test_bad_merges_are_explained(groups, message):
    with pytest.raises(ValueError, match=message):
        LabelSet.ccp(groups)


def test_background_is_black_whatever_its_name():
    assert LabelSet.identity(["background", "skin", "top"]).colours[0] == (0, 0, 0)
    assert LabelSet.ccp().colours[0] == (0, 0, 0)
