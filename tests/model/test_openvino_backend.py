"""``backend="openvino"``: the cached ONNX export compiled by OpenVINO (fp32, bf16, mixed, int8) against onnxruntime's
masks; the cut and the int8 graph cached, and made again when stale or damaged."""

import pytest

pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")

from parsing import Parser  # noqa: E402
from parsing.model.load import load_backend  # noqa: E402

VAL = ("0009", "0038")  # validation photos


@pytest.fixture(scope="module")
def reference():
    return Parser.load(backend="onnxruntime", input_size=(384, 256))


@pytest.mark.parametrize(("precision", "least"), [("fp32", 0.999), ("bf16", 0.98), ("mixed", 0.998), ("int8", 0.995)])
def test_masks_match_onnxruntime(reference, ccp_root, precision, least):
    parser = reference.__class__.load(backend="openvino", precision=precision, input_size=(384, 256))
    assert parser.backend.name == "openvino" and parser.backend.precision == precision and parser.overlap
    photos = [ccp_root / "photos" / f"{stem}.jpg" for stem in VAL]
    for ours, theirs in zip(parser.parse_many(photos), reference.parse_many(photos), strict=True):
        assert (ours.labels == theirs.labels).mean() >= least, precision
    if precision != "bf16":  # mixed, int8: the encoder (and so the outfit encoder's presence) in fp32
        assert ours.garments == theirs.garments


def test_auto_is_int8_on_a_cpu_with_int8_units_and_fp32_is_one_flag_away(monkeypatch):
    from parsing.model import OnnxBackend, load

    monkeypatch.setattr(load, "cpu_has_int8_units", lambda: True)
    network = Parser.load(input_size=(256, 160)).backend
    assert network.name == "openvino" and network.precision == "int8"
    assert Parser.load(backend="openvino", input_size=(256, 160)).backend.precision == "int8"
    assert isinstance(Parser.load(precision="fp32", input_size=(256, 160)).backend, OnnxBackend)
    assert Parser.load(backend="openvino", precision="fp32", input_size=(256, 160)).backend.precision == "fp32"
    assert Parser.load(backend="torch", input_size=(256, 160)).backend.name == "torch"
    assert Parser.load(embed=True, input_size=(256, 160)).backend.name == "torch"  # search vectors: torch's
    monkeypatch.setattr(load, "cpu_has_int8_units", lambda: False)
    assert Parser.load(backend="openvino", input_size=(256, 160)).backend.precision == "fp32"


@pytest.mark.parametrize(("caps", "vnni", "int8"), [(["BF16", "INT8"], False, True), (["INT8"], True, True),
                                                    (["INT8"], False, False)])  # fmt: skip
def test_int8_units_are_bf16_units_or_avx512_vnni(monkeypatch, caps, vnni, int8):
    """The CPUs cannot be swapped here, so what each source reports is: OpenVINO's capabilities, numpy's table."""
    import numpy._core._multiarray_umath as umath
    import openvino

    from parsing.model import load

    class Core:
        def get_property(self, device: str, name: str) -> list[str]:
            return caps

    monkeypatch.setattr(openvino, "Core", Core)
    monkeypatch.setitem(umath.__cpu_features__, "AVX512VNNI", vnni)
    assert load.cpu_has_int8_units() is int8


def test_precision_is_checked_and_belongs_to_openvino():
    with pytest.raises(ValueError, match="precision 'int4': choose auto, fp32, mixed, bf16, int8"):
        load_backend("shipped", "openvino", precision="int4")
    with pytest.raises(ValueError, match="is for backend='openvino'"):
        load_backend("shipped", "onnxruntime", precision="bf16")
    with pytest.raises(ValueError, match="runs on the CPU here"):
        load_backend("shipped", "openvino", device="cuda")


def test_concurrent_calls_give_each_its_own_outputs():
    """A request per call and its outputs shared, not copied: results of calls from several threads stay apart."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    backend = load_backend("shipped", "openvino", precision="fp32")
    xs = [torch.rand(1, 3, 128, 96, generator=torch.Generator().manual_seed(i)) for i in range(6)]
    alone = [backend.forward(x)[0].clone() for x in xs]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda x: backend.forward(x)[0], xs))
    assert all(torch.equal(a, b) for a, b in zip(alone, together, strict=True))
    assert not torch.equal(together[0], together[1])


def test_the_mixed_cut_is_made_once_and_made_again_when_damaged():
    import torch

    from parsing.model.backends import OnnxBackend
    from parsing.model.split import split_export

    export = OnnxBackend("shipped").path
    encoder, decoder, crossing = split_export(export)
    assert len(crossing) == 4  # the FPN reads four encoder stages
    made = decoder.stat().st_mtime_ns
    assert split_export(export)[1].stat().st_mtime_ns == made  # intact: kept
    encoder.write_bytes(encoder.read_bytes()[:1000])  # a truncated file
    assert split_export(export)[0].stat().st_size > 1000
    size = decoder.stat().st_size
    decoder.write_bytes(b"\0" * size)  # damaged, the same size: OpenVINO cannot read it, the backend cuts again
    logits, presence = load_backend("shipped", "openvino", precision="mixed").forward(torch.rand(1, 3, 128, 96))
    assert logits.shape[-2:] == (128, 96) and presence is not None  # presence comes from the encoder's graph


def test_a_stream_runs_on_half_the_threads_with_the_same_outputs():
    import torch

    backend = load_backend("shipped", "openvino", precision="mixed")
    stream = backend.for_stream()
    assert stream._config["INFERENCE_NUM_THREADS"] == max(1, backend._config["INFERENCE_NUM_THREADS"] // 2) or (
        stream is backend and backend._config["INFERENCE_NUM_THREADS"] == 1
    )
    x = torch.rand(1, 3, 128, 96, generator=torch.Generator().manual_seed(3))
    assert torch.equal(stream.forward(x)[0], backend.forward(x)[0])


def test_the_int8_decoder_is_made_once_and_made_again_when_stale_or_damaged(monkeypatch, capfd):
    """Calibrated on the shipped photos (two here, for speed): made with a progress line, kept while its record
    matches, made again (the same bytes) for another onnxruntime version, and for a damaged graph."""
    import json
    import logging

    import torch

    from parsing.model import quantize

    monkeypatch.setattr(quantize, "calibration_photos", lambda: sorted(quantize.CALIBRATION.glob("*.jpg"))[:2])
    backend = load_backend("shipped", "openvino", precision="int8")
    graph = backend._parts[1]
    assert graph.name.endswith("-decoder-int8.onnx") and "QuantizeLinear" in graph.read_bytes().decode("latin-1")
    record = graph.with_name(graph.name.replace("-decoder-int8.onnx", "-int8.json"))
    made, first = graph.stat().st_mtime_ns, graph.read_bytes()
    assert load_backend("shipped", "openvino", precision="int8")._parts[1].stat().st_mtime_ns == made  # kept
    stale = json.loads(record.read_text())
    stale["made_by"]["onnxruntime"] = "0.0"
    record.write_text(json.dumps(stale))
    capfd.readouterr()
    handlers = list(logging.getLogger().handlers)
    load_backend("shipped", "openvino", precision="int8")
    printed = capfd.readouterr()  # the progress lines only: onnxruntime's prints and log warnings are kept quiet
    assert "making the int8 decoder" in printed.err and graph.stat().st_mtime_ns != made
    assert printed.out == "" and "WARNING" not in printed.err and logging.getLogger().handlers == handlers
    assert graph.read_bytes() == first  # calibration is deterministic: the same graph, byte for byte
    assert json.loads(record.read_text())["made_by"]["onnxruntime"] != "0.0"
    graph.write_bytes(b"\0" * graph.stat().st_size)  # the same size: OpenVINO cannot read it, the backend remakes it
    logits, presence = load_backend("shipped", "openvino", precision="int8").forward(torch.rand(1, 3, 128, 96))
    assert logits.shape[-2:] == (128, 96) and presence is not None and graph.read_bytes()[:4] != b"\0" * 4
