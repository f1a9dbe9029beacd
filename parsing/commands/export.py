"""``parsing export CKPT OUT.onnx [--torchscript OUT.pt]``: the network, outfit gate included, for deployment.

The exported graph takes photos (B, 3, H, W) float RGB in [0, 1], H and W any multiples of 32 (fit and pad a
photo as ``parsing.data.transforms.eval_transform`` does), normalises them itself and returns ``logits`` (B, K, H, W)
— gated by the outfit encoder when the model gates — and, when it has an outfit encoder, ``presence``
(B, K) probabilities. Decoding, the CRF and resizing to the photo stay in Python (``parsing-predict``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from parsing.commands.help import plain
from parsing.model.checkpoint import SHIPPED


def photo_input(photo: str | Path, size: tuple[int, int]):  # noqa: ANN201
    """A photo fitted and padded to ``size`` as in evaluation: (1, 3, H, W)."""
    from parsing.data.io import read_image
    from parsing.data.transforms import eval_transform

    return eval_transform(size)(image=read_image(photo))["image"][None]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="parsing export", description=plain(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", nargs="?", default=str(SHIPPED))
    parser.add_argument("output", help="the .onnx file to write")
    parser.add_argument("--torchscript", help="also write a TorchScript .pt here")
    parser.add_argument("--check", help="a photo: report the max abs logit difference against torch")
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args(argv)

    from parsing.model import ParsingModel
    from parsing.model.export import export_onnx, export_torchscript, onnx_parity, output_names, torchscript_parity

    model = ParsingModel.from_checkpoint(args.checkpoint)
    size = model.input_size
    export_onnx(model, args.output, size, args.opset)
    print(f"{args.output}: outputs {output_names(model)}, input (B, 3, H, W), H and W multiples of 32")
    if args.torchscript:
        export_torchscript(model, args.torchscript, size)
        print(f"{args.torchscript}: TorchScript")
    if args.check:
        x = photo_input(args.check, size)
        print(f"max |onnx - torch| on {args.check}: {onnx_parity(model, args.output, x):.2e}")
        if args.torchscript:
            print(f"max |torchscript - torch|: {torchscript_parity(model, args.torchscript, x):.2e}")


if __name__ == "__main__":
    main()
