"""The network past fp32, side by side: one run, the same photos, every runtime and precision on this CPU.

For each option, seconds per photo of the network alone (batch 1, the photos fitted into the network box as the
parser fits them) and the share of pixels whose argmax label agrees with torch's eager fp32 pass (before any
decoding or CRF). Options: torch fp32 (the yardstick), torch bf16 (autocast, channels-last), onnxruntime fp32 and
int8, OpenVINO fp32, mixed (the backend's: encoder fp32, decoder bf16), the backend's int8 (encoder fp32, decoder
int8: ``parsing.model.quantize``, the default since 0.8; again with fp32 between the int8 layers, as on a CPU with
VNNI but no bf16 units), bf16 and int8 (the whole network). int8 is a static QDQ
quantization of the cached ONNX export by onnxruntime (``quant_pre_process``, then ``quantize_static``: per-channel
int8 weights, uint8 activations, MinMax ranges from ``--calibration`` CCP training photos; the first three
convolutions and the segmentation head kept in fp32, which measured best); OpenVINO runs the same int8 graph.
Records the CPU model and its AVX-512 / AMX / VNNI flags.
Writes ``bench/results/precision.{json,md}``.

    python bench/precision.py                   # 30 validation photos, 32 calibration photos
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
from common import ROOT, machine, validation_photos, write_results
import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from parsing import Parser
from parsing.data.datamodule import ParsingDataModule
from parsing.model.backends import OnnxBackend, pad32
from parsing.model.openvino_backend import OpenVinoBackend

FLAGS = ("avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")


def cpu_flags() -> list[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return [f for f in FLAGS if f in line.split()]
    return []


def seconds(run: Callable[[np.ndarray], np.ndarray], xs: list[np.ndarray], repeats: int) -> float:
    """Seconds per photo, after one warm-up pass over every shape."""
    for x in {x.shape: x for x in xs}.values():
        run(x)
    start = time.perf_counter()
    for _ in range(repeats):
        for x in xs:
            run(x)
    return (time.perf_counter() - start) / repeats / len(xs)


def quantize(fp32: Path, folder: Path, calibration: list[np.ndarray]) -> Path:
    """The int8 QDQ graph of ``fp32`` (see the module's docstring)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre, out = folder / "pre.onnx", folder / "int8.onnx"
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.photos = iter(calibration)

        def get_next(self) -> dict | None:
            x = next(self.photos, None)
            return None if x is None else {"image": x}

    quantize_static(
        str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=convs[:3] + convs[-1:],
    )  # fmt: skip
    return out


def run(args: argparse.Namespace) -> dict:
    import onnxruntime as ort
    import openvino as ov

    torch.set_num_threads(args.threads)
    parser = Parser.load(device="cpu", backend="torch")
    model = parser.backend.model
    xs = [pad32(parser.preprocess(str(p)).x[None]) for p, _ in validation_photos(args.data_root, args.photos)]
    data = ParsingDataModule(root=args.data_root, num_workers=0)
    train = data.split(data.items())[0]
    step = max(1, len(train) // args.calibration)
    calibration = [pad32(parser.preprocess(str(p)).x[None]) for p, _ in train[::step][: args.calibration]]
    fp32 = OnnxBackend("shipped").path

    def torch_fp32(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.forward_with_presence(torch.from_numpy(x))[0].numpy()

    channels_last = None

    def torch_bf16(x: np.ndarray) -> np.ndarray:
        nonlocal channels_last
        channels_last = channels_last or model.to(memory_format=torch.channels_last)
        t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return channels_last.forward_with_presence(t)[0].float().numpy()

    def onnxruntime(path: Path) -> Callable:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {"image": x})[0].transpose(0, 3, 1, 2)

    core = ov.Core()

    def openvino(path: Path, hint: str) -> Callable:
        compiled: dict = {}

        def run_one(x: np.ndarray) -> np.ndarray:
            if x.shape not in compiled:
                graph = core.read_model(str(path))
                graph.reshape({"image": list(x.shape)})
                config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": args.threads,
                          "PERFORMANCE_HINT": "LATENCY"}  # fmt: skip
                compiled[x.shape] = core.compile_model(graph, "CPU", config)
            model = compiled[x.shape]
            out = model.create_infer_request().infer({"image": x}, share_outputs=True)
            return out[model.outputs[0]].transpose(0, 3, 1, 2)

        return run_one

    mixed = OpenVinoBackend("shipped", "mixed", threads=args.threads)
    int8_decoder = OpenVinoBackend("shipped", "int8", threads=args.threads)
    int8_f32 = OpenVinoBackend("shipped", "int8", threads=args.threads)  # as on a CPU with VNNI but no bf16 units:
    int8_f32._config["INFERENCE_PRECISION_HINT"] = "f32"  # what is not int8 in fp32 (the backend's choice there)
    int8_f32._compiled.clear()
    reference = [torch_fp32(x).argmax(1) for x in xs]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        int8 = quantize(fp32, Path(tmp), calibration)
        quantize_s = time.perf_counter() - start
        options = {
            "torch fp32 (eager)": torch_fp32,
            "torch bf16 (autocast, channels-last)": torch_bf16,
            "onnxruntime fp32": onnxruntime(fp32),
            "onnxruntime int8 (QDQ)": onnxruntime(int8),
            "OpenVINO fp32": openvino(fp32, "f32"),
            "OpenVINO mixed (encoder fp32, decoder bf16)": lambda x: mixed.forward(torch.from_numpy(x))[0].numpy(),
            "OpenVINO int8 decoder (the default: encoder fp32, decoder int8)": lambda x: int8_decoder.forward(
                torch.from_numpy(x)
            )[0].numpy(),
            "OpenVINO int8 decoder, fp32 between (the default on CPUs with VNNI but no bf16 units)": (
                lambda x: int8_f32.forward(torch.from_numpy(x))[0].numpy()
            ),
            "OpenVINO bf16": openvino(fp32, "bf16"),
            "OpenVINO int8 (the QDQ graph)": openvino(int8, "f32"),
        }
        for name, network in options.items():
            took = seconds(network, xs, args.repeats)
            same = sum(int((network(x).argmax(1) == r).sum()) for x, r in zip(xs, reference, strict=True))
            rows.append({"option": name, "s_per_photo": round(took, 4),
                         "agree": round(same / sum(r.size for r in reference), 5)})  # fmt: skip
            print(rows[-1], flush=True)
    for row in rows:
        row["x_torch_fp32"] = round(row["s_per_photo"] / rows[0]["s_per_photo"], 2)
    meta = {**machine(), "cpu_flags": cpu_flags(), "photos": len(xs), "calibration": len(calibration),
            "quantize_s": round(quantize_s, 1), "input": list(xs[0].shape[-2:]), "openvino": ov.__version__,
            "onnxruntime": ort.__version__}  # fmt: skip
    return {"meta": meta, "rows": rows}


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# The network past fp32: runtimes and precisions side by side",
        "",
        f"{meta['photos']} CCP validation photos fitted into the network box (batch 1), one run. CPU: {meta['cpu']}; "
        f"flags: {', '.join(meta['cpu_flags']) or 'none of ' + ', '.join(FLAGS)}. torch {meta['torch']}, "
        f"onnxruntime {meta['onnxruntime']}, OpenVINO {meta['openvino']}. int8: calibrated on {meta['calibration']} "
        f"CCP training photos ({meta['quantize_s']:.0f} s). Agreement: pixels whose argmax label is torch fp32's, "
        "before decoding and CRF. `python bench/precision.py`",
        "",
        "| option | s / photo | × torch fp32 | agrees with fp32 |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['option']} | {r['s_per_photo']:.3f} | {r['x_torch_fp32']:.2f} | {100 * r['agree']:.2f} % |"
        for r in result["rows"]
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "ccp"))
    ap.add_argument("--photos", type=int, default=30)
    ap.add_argument("--calibration", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    write_results(args.out, "precision", run(args), markdown)


if __name__ == "__main__":
    main()
