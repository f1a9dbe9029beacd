"""``ParseOptions``: one place that checks every option and names the valid values."""

import pytest

from parsing.inference.options import ParseOptions


def test_defaults_and_replace():
    options = ParseOptions()
    assert options.crf == "fast" and options.input_size is None and options.crf_params().steps("fast") == 3
    changed = options.replace(crf="none", input_size=[256, 160])
    assert changed.crf == "none" and changed.input_size == (256, 160) and options.crf == "fast"
    assert ParseOptions(crf_iterations=7).crf_params().steps("dense") == 7


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"crf": "best"}, "crf 'best': choose none, fast or dense"),
        ({"tta": "rotate"}, "tta 'rotate': choose none or flip"),
        ({"input_size": (16, 300)}, "each at least 32"),
        ({"input_size": (300,)}, "give \\(H, W\\)"),
        ({"max_pixels": 10}, "max_pixels 10"),
        ({"refocus": -1}, "refocus -1: give 0 \\(off\\) or more"),
        ({"min_share": 1.5}, "min_share 1.5"),
        ({"crf_iterations": 0}, "crf_iterations 0"),
        ({"merge": 3}, "merge 3"),
    ],
)
def test_bad_values_name_the_valid_ones(changes, message):
    with pytest.raises(ValueError, match=message):
        ParseOptions(**changes)


def test_unknown_names_list_the_options():
    with pytest.raises(
        TypeError, match="unknown parse option\\(s\\) \\['crff'\\]; the options are crf, crf_iterations"
    ):
        ParseOptions().replace(crff="none")
