"""The outfit benchmark end to end on the smoke recipe (slow: several short fits)."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from parsing.cli import main


@pytest.mark.slow
def test_outfit_bench_writes_its_table(ccp_root, tmp_path):
    config = tmp_path / "smoke.yaml"
    config.write_text((ROOT / "configs" / "smoke.yaml").read_text().replace("../shared/data/ccp", str(ccp_root)))
    main(["fit", "--config", str(config), "--trainer.default_root_dir", str(tmp_path / "plain"),
          "--trainer.enable_checkpointing", "true"])  # fmt: skip
    plain = sorted((tmp_path / "plain").glob("**/*.ckpt"))[-1]
    args = ["--plain", str(plain), "--config", str(config), "--stage2-epochs", "1", "--stage3-epochs", "1"]
    args += ["--work", str(tmp_path / "work"), "--results", str(tmp_path / "results")]
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "outfit.py"), *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads((tmp_path / "results" / "outfit.json").read_text())["rows"]
    names = [r["name"] for r in rows]
    assert names[0] == "plain (stage 1)" and names[-1] == "+ outfit gate + decoding (pixels)"
    assert all(0.0 <= r["metrics"]["test/pixel_acc"] <= 1.0 for r in rows)
    assert "presence mAP" in (tmp_path / "results" / "outfit.md").read_text()
