"""The package's import rules: lower layers never import training or commands, no import circles, inference without
Lightning, ``parsing --help`` without torch."""

import ast
import subprocess
import sys

from conftest import ROOT

PACKAGE = ROOT / "parsing"
LOWER = ("parsing.model", "parsing.inference", "parsing.outputs", "parsing.nn", "parsing.data")
UPPER = ("parsing.training", "parsing.commands", "parsing.serve", "parsing.scale")


def module_name(path) -> str:  # noqa: ANN001
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path) -> set[str]:  # noqa: ANN001
    """The parsing modules a file imports, at module level or inside functions (``if TYPE_CHECKING:`` skipped)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # a submodule imported by name
    return {name for name in found if name == "parsing" or name.startswith("parsing.")}


def graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: {other for other in imports(path) if other in files} - {name} for name, path in files.items()}


def test_lower_layers_never_import_training_commands_or_services():
    wrong = [
        f"{name} imports {other}"
        for name, others in graph().items()
        if name.startswith(LOWER)
        for other in others
        if other.startswith(UPPER)
    ]
    assert not wrong, wrong


def test_no_import_circles():
    edges, circles = graph(), []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for other in sorted(edges[name]):
            if state.get(other) == 1:
                circles.append(" → ".join([*path[path.index(other) :], other]))
            elif other not in state:
                visit(other, [*path, other])
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert not circles, circles


def test_the_rule_check_sees_a_circle_and_an_upward_import(tmp_path):
    (tmp_path / "a.py").write_text("from parsing.training.module import X\nimport parsing.b\n")
    assert imports(tmp_path / "a.py") == {"parsing.training.module", "parsing.training.module.X", "parsing.b"}
    (tmp_path / "b.py").write_text("if TYPE_CHECKING:\n    from parsing.commands import cli\n")
    assert imports(tmp_path / "b.py") == set()


def test_no_module_over_400_lines():
    long = {module_name(path): n for path in PACKAGE.rglob("*.py") if (n := len(path.read_text().splitlines())) > 400}
    assert not long, long


BLOCK_TRAINING = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pytorch_lightning", "lightning", "torchmetrics", "jsonargparse"):
            raise ImportError(f"{name} is blocked")
sys.meta_path.insert(0, Block())
"""


def test_inference_works_where_lightning_is_not_installed_and_imports_no_albumentations(ccp_root):
    code = BLOCK_TRAINING + (
        "from parsing import Parser\n"
        f"parse = Parser.load(input_size=(256, 160))({str(ccp_root / 'photos' / '0009.jpg')!r})\n"
        "assert parse.garments, parse.garments\n"
        "assert not any(m.startswith(('pytorch_lightning', 'parsing.training')) for m in sys.modules)\n"
        "assert 'albumentations' not in sys.modules  # training's augmentations: 0.6 s of start-up\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]


def test_training_commands_without_lightning_name_the_extra():
    code = BLOCK_TRAINING + "from parsing.commands.cli import main\nmain(['fit', '--help'])\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 2 and "clothing-parsing[train]" in out.stderr, out.stderr[-2000:]


def test_learning_rules_from_data_without_lightning_names_the_extra(tmp_path):
    code = BLOCK_TRAINING + f"from parsing.commands.rules import main\nmain(['--data-root', {str(tmp_path)!r}])\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode != 0 and "clothing-parsing[train]" in out.stderr, out.stderr[-2000:]


def test_help_imports_no_torch():
    code = (
        "import sys\nfrom parsing.commands.cli import main\nmain(['--help'])\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0 and "usage: parsing COMMAND" in out.stdout, out.stderr[-2000:]


def test_predict_help_and_a_bad_option_import_no_torch():
    code = (
        "import sys\nfrom parsing.commands.cli import predict_main\n"
        "for argv in (['--help'], ['in/', '-o', 'out/', '--precision', 'int4']):\n"
        "    try:\n        predict_main(argv)\n    except SystemExit as stop:\n        print('exit', stop.code)\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0 and "usage: parsing-predict" in out.stdout, out.stderr[-2000:]
    assert "exit 0" in out.stdout and "exit 2" in out.stdout and "invalid choice: 'int4'" in out.stderr


def test_parsing_predict_is_installed_as_the_torch_free_entry_point():
    import configparser

    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert "parsing-predict = parsing.commands.cli:predict_main" in setup["options.entry_points"]["console_scripts"]
