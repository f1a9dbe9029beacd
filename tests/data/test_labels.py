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


def ciede2000(colours) -> np.ndarray:
    """(n, n) CIEDE2000 between sRGB colours (the diagonal set high)."""
    import colour

    lab = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(np.asarray(colours, float) / 255.0))
    d = colour.delta_E(lab[:, None], lab[None], method="CIE 2000")
    np.fill_diagonal(d, np.inf)
    return d


def test_every_two_colours_can_be_told_apart():
    """Masks, overlays, legends and the studio use one palette: any two labels at least CIEDE2000 6 apart, null
    black; merged groups keep their first member's colour, so they are as far apart."""
    palette = default_palette(CCP_LABELS)
    distances = ciede2000(palette)
    i, j = np.unravel_index(np.argmin(distances), distances.shape)
    assert distances.min() >= 6, (CCP_LABELS[i], CCP_LABELS[j], distances.min())
    assert ciede2000(LabelSet.identity(CCP_LABELS).merged("ccp-coarse").colours).min() >= 6
    assert ciede2000(default_palette([f"label{i}" for i in range(64)])).min() >= 6  # a dataset of one's own


def test_an_old_default_palette_becomes_the_readable_one_and_a_custom_one_stays():
    from parsing.labels import _golden, palette_for
    from parsing.model.spec import ModelSpec

    old = [[0, 0, 0] if n == "null" else list(_golden(i)) for i, n in enumerate(CCP_LABELS)]
    old[CCP_LABELS.index("skin")], old[CCP_LABELS.index("hair")] = [255, 205, 170], [110, 60, 20]
    assert palette_for(CCP_LABELS, old) == [list(c) for c in default_palette(CCP_LABELS)]
    custom = [[i, i, i] for i in range(len(CCP_LABELS))]
    assert palette_for(CCP_LABELS, custom) == custom
    assert ModelSpec.from_checkpoint("shipped").palette == [list(c) for c in default_palette(CCP_LABELS)]


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
