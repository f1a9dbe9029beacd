"""``backend="onnxruntime"``: the network exported once and cached by the checkpoint's hash, a corrupt cache
rebuilt, and the same masks as torch on validation photos."""

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from parsing import Parser  # noqa: E402


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PARSING_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


def test_masks_match_torch_and_the_cache_is_reused_or_rebuilt(cache, ccp_root):
    from parsing.model import SHIPPED
    from parsing.model.backends import file_digest

    cache.mkdir(parents=True)
    stale = cache / f"{file_digest(SHIPPED)}-opset17.onnx"  # an earlier version's export of the same checkpoint
    stale.write_bytes(b"old")
    other = cache / "0123456789abcdef01234567-opset17.onnx"  # another checkpoint's: kept
    other.write_bytes(b"other")
    onnx = Parser.load(backend="onnxruntime")
    files = sorted(cache.glob("*.onnx"))
    assert files == sorted([onnx.backend.path, other]) and not stale.exists()
    torch_parser = Parser.load(backend="torch")
    for stem in ("0009", "0038"):  # validation photos
        a, b = onnx(ccp_root / "photos" / f"{stem}.jpg"), torch_parser(ccp_root / "photos" / f"{stem}.jpg")
        assert (a.labels == b.labels).mean() >= 0.999 and a.garments == b.garments
        assert np.allclose(a.presence, b.presence, atol=1e-3)
    stamp = onnx.backend.path.stat().st_mtime_ns
    assert Parser.load(backend="onnxruntime").backend.path.stat().st_mtime_ns == stamp  # reused, not exported again
    onnx.backend.path.write_bytes(b"not an onnx graph")  # a corrupt cache is never trusted: exported again
    again = Parser.load(backend="onnxruntime")
    assert again.backend.path.stat().st_size > 1_000_000
    assert (
        again(ccp_root / "photos" / "0009.jpg").labels == torch_parser(ccp_root / "photos" / "0009.jpg").labels
    ).mean() >= 0.999


def test_onnxruntime_is_for_the_cpu_and_names_are_checked():
    with pytest.raises(ValueError, match="choose auto, torch, onnxruntime or openvino"):
        Parser.load(backend="tensorrt")


def test_auto_is_onnxruntime_on_a_cpu_and_falls_back_to_torch_with_a_warning(cache, tmp_path, monkeypatch):
    from parsing.model import OnnxBackend, load

    monkeypatch.setattr(load, "cpu_has_int8_units", lambda: False)  # else OpenVINO int8
    assert isinstance(Parser.load().backend, OnnxBackend)  # the default on such a CPU
    assert isinstance(Parser.load(precision="fp32").backend, OnnxBackend)
    assert not isinstance(Parser.load(backend="torch").backend, OnnxBackend)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("PARSING_CACHE", str(tmp_path / "file"))  # a cache that cannot be made: no export
    with pytest.warns(UserWarning, match="the network runs on torch: onnxruntime could not"):
        parser = Parser.load()
    assert not isinstance(parser.backend, OnnxBackend)
    monkeypatch.setattr(load, "cpu_has_int8_units", lambda: True)  # auto's OpenVINO int8 fails the same way
    with pytest.warns(UserWarning, match="the network runs on torch: OpenVINO could not"):
        assert Parser.load().backend.name == "torch"
    with pytest.raises(OSError):
        Parser.load(backend="onnxruntime")  # asked for by name: the error, not a fallback


def test_auto_without_the_onnx_extra_is_torch_and_silent(monkeypatch, recwarn):
    import importlib.util

    from parsing.model import OnnxBackend

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    assert not isinstance(Parser.load().backend, OnnxBackend)
    assert not [w for w in recwarn if "runs on torch" in str(w.message)]


def test_the_next_photos_network_runs_beside_this_ones_steps_with_the_same_results(cache, ccp_root):
    parser = Parser.load(backend="onnxruntime", input_size=(256, 160))
    assert parser.overlap
    photos = [ccp_root / "photos" / f"{stem}.jpg" for stem in ("0009", "0038", "0001")]
    images = [*photos[:2], b"not a photo", photos[2]]
    together = list(parser.parse_many(images, batch_size=4))
    assert parser._network._pool is not None  # the network thread was used
    parser.overlap = False
    apart = list(parser.parse_many(images, batch_size=4))
    assert [r.ok for r in together] == [True, True, False, True]
    assert [r.source for r in together] == [r.source for r in apart]  # input order kept
    for a, b in zip(together, apart, strict=True):
        assert not a.ok or ((a.labels == b.labels).all() and a.confidence == b.confidence)


def test_a_stream_runs_on_a_second_session_with_half_the_threads(cache):
    from parsing.model import OnnxBackend

    backend = OnnxBackend("shipped", threads=2)
    stream = backend.for_stream()
    assert stream is backend.for_stream() and stream._options.intra_op_num_threads == 1
    x = torch.rand(1, 3, 128, 96, generator=torch.Generator().manual_seed(5))
    assert torch.equal(stream.forward(x)[0], backend.forward(x)[0])
    assert OnnxBackend("shipped", threads=1).for_stream()._options.intra_op_num_threads == 1
