"""``parsing --help`` and ``parsing help``: every subcommand listed, plain help texts, a hint for typos."""

import pytest

from parsing.commands.cli import main
from parsing.commands.help import COMMANDS, plain


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h"], ["help"]])
def test_every_subcommand_is_listed_with_one_line(argv, capsys):
    assert main(argv) is None
    out = capsys.readouterr().out
    for name in ("fit", "validate", "test", "predict", "check-data", "pack", "export", "rules", "pseudo-label"):
        assert f"  {name} " in out
    assert set(COMMANDS) <= {line.split()[0] for line in out.splitlines() if line.startswith("  ")}


@pytest.mark.parametrize("command", [c for c in COMMANDS if c not in ("fit", "validate", "test")])
def test_help_for_a_command_has_no_rst_marks(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["help", command])
    out = capsys.readouterr().out
    assert stop.value.code == 0 and "usage:" in out and "``" not in out


def test_a_typo_gets_a_hint(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["chek-data"])
    assert stop.value.code == 2 and "did you mean check-data?" in capsys.readouterr().err


def test_plain_drops_code_marks():
    assert plain("``parsing pack`` writes :class:`Parser` input") == "parsing pack writes Parser input"


def test_version_names_the_distribution(capsys):
    from parsing import __version__
    from parsing.commands.cli import main

    assert main(["--version"]) in (0, None)
    assert capsys.readouterr().out.strip() == f"clothing-parsing {__version__} (import parsing)"


@pytest.mark.parametrize("command", ["index", "search", "pseudo-label"])
def test_help_keeps_its_examples_one_per_line(command, capsys):
    import parsing.commands.pseudo_label as pseudo_label
    import parsing.commands.search as search

    doc = plain((pseudo_label if command == "pseudo-label" else search).__doc__)
    examples = [line for line in doc.splitlines() if line.startswith("    parsing ")]
    with pytest.raises(SystemExit):
        main(["help", command])
    shown = capsys.readouterr().out.splitlines()
    assert examples and all(line in shown for line in examples)  # not reflowed into one paragraph
