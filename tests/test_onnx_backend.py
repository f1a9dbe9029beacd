"""``backend="onnxruntime"``: the network exported once and cached by the checkpoint's hash, a corrupt cache
rebuilt, and the same masks as torch on validation photos."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from parsing import Parser  # noqa: E402


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PARSING_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


def test_masks_match_torch_and_the_cache_is_reused_or_rebuilt(cache, ccp_root):
    onnx = Parser.load(backend="onnxruntime")
    files = list(cache.glob("*.onnx"))
    assert len(files) == 1 and onnx.module.path == files[0]
    torch_parser = Parser.load()
    for stem in ("0009", "0038"):  # validation photos
        a, b = onnx(ccp_root / "photos" / f"{stem}.jpg"), torch_parser(ccp_root / "photos" / f"{stem}.jpg")
        assert (a.labels == b.labels).mean() >= 0.999 and a.garments == b.garments
        assert np.allclose(a.presence, b.presence, atol=1e-3)
    stamp = files[0].stat().st_mtime_ns
    assert Parser.load(backend="onnxruntime").module.path.stat().st_mtime_ns == stamp  # reused, not exported again
    files[0].write_bytes(b"not an onnx graph")  # a corrupt cache is never trusted: exported again
    again = Parser.load(backend="onnxruntime")
    assert again.module.path.stat().st_size > 1_000_000
    assert (
        again(ccp_root / "photos" / "0009.jpg").labels == torch_parser(ccp_root / "photos" / "0009.jpg").labels
    ).mean() >= 0.999


def test_onnxruntime_is_for_the_cpu_and_names_are_checked():
    with pytest.raises(ValueError, match="choose torch or onnxruntime"):
        Parser.load(backend="tensorrt")
