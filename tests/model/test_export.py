"""ONNX and TorchScript export of a model with the outfit gate: parity with torch on a real photo, any /32 size."""

import numpy as np
import pytest
import torch

from parsing.commands.export import photo_input
from parsing.model import ParsingModel
from parsing.model.export import export_onnx, export_torchscript, onnx_parity, torchscript_parity


@pytest.fixture(scope="module")
def gated():
    torch.manual_seed(0)
    module = ParsingModel(outfit="gate", channels_last=False).eval()
    with torch.no_grad():  # a non-trivial gate: presence biases spread over (-3, 3)
        module.net.outfit.out.bias.copy_(torch.linspace(-3, 3, module.num_classes))
    return module


@pytest.fixture(scope="module")
def photo(ccp_root):
    return photo_input(ccp_root / "photos" / "0009.jpg", (384, 256))  # (1, 3, 384, 256)


def test_onnx_matches_torch_on_a_real_photo_at_any_multiple_of_32(gated, photo, tmp_path):
    import onnxruntime as ort

    path = export_onnx(gated, tmp_path / "model.onnx", (384, 256))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["logits", "presence"]
    assert onnx_parity(gated, path, photo) < 1e-3
    other = torch.nn.functional.interpolate(photo, size=(320, 448), mode="bilinear")  # another /32 size, batch 2
    batch = torch.cat([other, other.flip(-1)])
    assert onnx_parity(gated, path, batch) < 1e-3
    logits, presence = session.run(None, {"image": batch.numpy()})
    assert logits.shape == (2, 59, 320, 448) and presence.shape == (2, 59)
    assert np.all((presence > 0) & (presence < 1))


def test_torchscript_matches_torch(gated, photo, tmp_path):
    path = export_torchscript(gated, tmp_path / "model.pt", (384, 256))
    assert torchscript_parity(gated, path, photo) < 1e-4
    assert torchscript_parity(gated, path, torch.rand(1, 3, 256, 320)) < 1e-4


def test_onnx_with_outfit_context_at_two_sizes(photo, tmp_path):
    torch.manual_seed(0)
    module = ParsingModel(context="attention", channels_last=False).eval()
    with torch.no_grad():  # a block that is not the identity
        module.net.context.out.weight.normal_(0, 0.1)
    path = export_onnx(module, tmp_path / "model.onnx", (384, 256))
    assert onnx_parity(module, path, photo) < 1e-3
    other = torch.nn.functional.interpolate(photo, size=(320, 448), mode="bilinear")  # another number of cells
    assert onnx_parity(module, path, other) < 1e-3
