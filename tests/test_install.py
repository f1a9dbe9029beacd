"""The README's install line, as written, in a fresh venv that already has a CPU torch: pip keeps that torch, pulls
no Lightning, and a photo parses."""

import re
import subprocess
import venv

import pytest
from conftest import ROOT

TORCH = "torch==2.13.0"  # the CPU build this machine's pip finds first (a user's own torch)


def readme_install_line() -> list[str]:
    """The first command of the README's Install block (``pip install .``), comment dropped."""
    block = re.search(r"## Install\s+```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md has no Install code block"
    return block.group(1).splitlines()[0].split("#")[0].split()


def run(command: list[str], cwd=None) -> str:  # noqa: ANN001
    done = subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=cwd)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_the_readme_install_keeps_the_users_torch(tmp_path, ccp_root):
    line = readme_install_line()
    assert line == ["pip", "install", "."], line
    source = tmp_path / "src"  # the checkout's files, not its build outputs: the build writes metadata next to them
    source.mkdir()
    files = run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT).splitlines()
    archive = subprocess.run(["tar", "-cf", "-", *files], capture_output=True, cwd=ROOT, check=True).stdout
    subprocess.run(["tar", "-xf", "-"], input=archive, cwd=source, check=True)
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", TORCH])
    run([str(python), "-m", *line[:2], "-q", *line[2:]], cwd=source)
    versions = run([str(python), "-c", "import importlib.metadata as m; print(m.version('torch'))"])
    assert versions.strip().startswith("2.13.0"), versions
    listed = run([str(python), "-m", "pip", "list"]).lower()
    assert "nvidia" not in listed and "pytorch-lightning" not in listed
    photo = str(ccp_root / "photos" / "0009.jpg")
    code = f"from parsing import Parser; print(Parser.load(input_size=(256, 160))({photo!r}).garments)"
    assert run([str(python), "-c", code], cwd=tmp_path).startswith("[")
    code = "from parsing.model.quantize import calibration_photos; print(len(calibration_photos()))"
    assert run([str(python), "-c", code], cwd=tmp_path).strip() == "16"  # the int8 decoder's calibration photos
