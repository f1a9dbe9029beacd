"""The documentation: the site builds with ``--strict`` (a broken link, anchor, snippet or reference fails), and the
README stays a front page."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_site_builds_strictly(tmp_path):
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("the docs extra is not installed (pip install '.[docs]')")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    api = (site / "python.html").read_text()  # use_directory_urls: false, browsable from file://
    assert "parse_many" in api and "replace" in api  # the reference is generated from the docstrings
    assert "Where a photo" in (site / "results.html").read_text()  # bench tables are included


def test_the_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    for page in ("install", "predict", "python", "serve", "scale", "own-data", "training", "model-card"):
        assert f"docs/{page}.md" in "\n".join(lines), page


@pytest.mark.parametrize("page", ["README.md", "docs/python.md"])
def test_the_python_examples_run(page, ccp_root, tmp_path, monkeypatch, capsys):
    """The front page's and the API page's code, run as written on a CCP photo (0009: a coat) and a bad file."""
    text = (ROOT / page).read_text()
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "photo.jpg").write_bytes((ccp_root / "photos" / "0009.jpg").read_bytes())
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    monkeypatch.chdir(tmp_path)  # what the example saves lands here
    exec(compile(block, page, "exec"), {"paths": ["photo.jpg", "broken.jpg"]})  # noqa: S102
    assert (tmp_path / "overlay.jpg").is_file()
    assert "broken.jpg" in capsys.readouterr().out  # the bad file is reported, the loop went on
