"""The network on onnxruntime: ``Parser.load(…, backend="onnxruntime")`` / ``parsing-predict --backend``.

The checkpoint's network is exported to ONNX (dynamic batch and size, ``parsing.commands.export``, logits
channels-last) on first use and cached in ``$PARSING_CACHE`` or
``~/.cache/parsing/onnx/<sha256 of the checkpoint file>-opset<N>-nhwc.onnx``. A
cached file is only trusted when onnxruntime loads it and it answers a probe like the torch network; otherwise
it is exported again. Only the network moves: decoding, CRF, refocus… stay in torch (``OnnxModule`` hands
everything but ``infer`` to the ``ParsingModule``). Needs ``onnx`` and ``onnxruntime`` (the ``onnx`` extra);
where they are installed, ``backend="auto"``, the default, uses this on a CPU.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

OPSET = 17


def cache_dir() -> Path:
    return Path(os.environ.get("PARSING_CACHE", Path.home() / ".cache" / "parsing")) / "onnx"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:24]


class OnnxModule:
    """A ``ParsingModule`` whose ``infer`` runs on onnxruntime; every other attribute is the module's."""

    own_threads = True  # onnxruntime's thread pool, not torch's: the network can run beside torch work

    def __init__(self, module: Any, checkpoint: Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("backend='onnxruntime' needs onnxruntime: pip install 'clothing-parsing[onnx]'") from None
        self._module, self._ort = module, ort
        self._options = ort.SessionOptions()
        self._options.intra_op_num_threads = threads or torch.get_num_threads()
        self._options.inter_op_num_threads = 1
        # No busy-waiting between runs: spinning threads took the cores from the torch steps after the network
        # (decode + CRF 0.12 → 0.21 s per photo with spinning on).
        self._options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.digest = file_digest(Path(checkpoint))
        self.path = cache_dir() / f"{self.digest}-opset{OPSET}-nhwc.onnx"
        self._session = self._load() or self._export()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def _load(self) -> Any:
        """The cached session, or None when there is none or it is unusable (then it is removed)."""
        if not self.path.is_file():
            return None
        try:
            session = self._ort.InferenceSession(str(self.path), self._options, providers=["CPUExecutionProvider"])
            if self._agrees(session):
                return session
        except Exception:  # onnxruntime raises its own exception types for a corrupt file  # noqa: BLE001
            pass
        self.path.unlink(missing_ok=True)
        return None

    def _export(self) -> Any:
        from parsing.commands.export import export_onnx

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            export_onnx(self._module, tmp, (64, 64), OPSET, channels_last=True)
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        for old in self.path.parent.glob(f"{self.digest}-*.onnx"):  # this checkpoint's exports of earlier versions
            if old != self.path:
                old.unlink(missing_ok=True)
        session = self._ort.InferenceSession(str(self.path), self._options, providers=["CPUExecutionProvider"])
        if not self._agrees(session):
            raise RuntimeError(f"{self.path}: the exported network does not match torch's")
        return session

    def _agrees(self, session: Any) -> bool:
        """A probe (a fixed random 64×96 input): logits within 1e-3 of the torch network's."""
        x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            reference = self._module.forward_with_presence(x)[0].float().numpy()
        got = session.run(None, {"image": x.numpy()})[0].transpose(0, 3, 1, 2)  # (B, H, W, K) → (B, K, H, W)
        return got.shape == reference.shape and float(np.abs(got - reference).max()) < 1e-3

    def forward_with_presence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 3, H, W) → logits (B, K, H, W), presence logits (B, K) or None, as the torch network."""
        h, w = x.shape[-2:]
        padded = F.pad(x, (0, -w % 32, 0, -h % 32)).float().contiguous().cpu().numpy()  # zeros, as ParsingNet
        outputs = self._session.run(None, {"image": padded})
        # (B, H, W, K) from the graph, seen as (B, K, H, W) channels-last like the torch network's logits: the steps
        # after it (softmax over labels, merged groups) are written for that layout (on NCHW logits decode + CRF
        # took 0.16 instead of 0.11 s per photo), and transposing inside onnxruntime costs ~5 ms, a copy here ~30
        logits = torch.from_numpy(outputs[0])[:, :h, :w].permute(0, 3, 1, 2).to(x.device)
        presence = torch.logit(torch.from_numpy(outputs[1]).double(), eps=1e-7).float() if len(outputs) > 1 else None
        return logits, None if presence is None else presence.to(x.device)

    def infer(self, x: torch.Tensor, tta: str | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As ``ParsingModule.infer``: with ``tta`` ``flip`` the mean over the photos and their mirror images."""
        tta = self._module.tta if tta is None else tta
        if tta == "none":
            return self.forward_with_presence(x)
        logits, presence = self.forward_with_presence(torch.cat([x, x.flip(-1)]))
        n = len(x)
        logits = (logits[:n] + logits[n:].flip(-1)) / 2
        return logits, None if presence is None else (presence[:n] + presence[n:]) / 2


def network_on_onnxruntime(module: Any, checkpoint: Path, required: bool) -> Any:
    """The module with its network on onnxruntime (``OnnxModule``). Not ``required`` (``backend="auto"``): the torch
    module where onnx or onnxruntime is not installed (the ``onnx`` extra), or, with a warning, where it fails."""
    if not required and not all(importlib.util.find_spec(name) for name in ("onnx", "onnxruntime")):
        return module
    try:
        return OnnxModule(module, checkpoint)
    except Exception as err:  # an export or a cache that fails: any error of onnx, onnxruntime or the disk  # noqa: BLE001
        if required:
            raise
        warnings.warn(f"the network runs on torch: onnxruntime could not ({type(err).__name__}: {err})", stacklevel=3)
        return module
