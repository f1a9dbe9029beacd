"""Backends: what runs a ``ParsingModel``'s network. One small interface, ``x → logits, presence``:

    backend = load_backend("shipped", "auto", device="cpu")   # a checkpoint, or a ParsingModel
    logits, presence = backend.infer(x, tta="flip")   # (B, K, H, W), (B, K) presence logits or None
    backend.spec                                       # labels, exclusive pairs, decoding: what parsing reads

``TorchBackend`` runs the model itself (CPU or GPU). ``OnnxBackend`` runs it on onnxruntime (CPU): the network is
exported to ONNX (dynamic batch and size, logits channels-last, ``parsing.model.export``) on first use and cached in
``$PARSING_CACHE`` or ``~/.cache/parsing/onnx/<sha256 of the checkpoint file>-opset<N>-nhwc.onnx``, beside the torch
network's answer to a fixed probe (``….probe.npy``); a cached file is only trusted when onnxruntime loads it and
gives that answer, otherwise it is exported again. With a trusted cache the torch network is never built (nor smp,
timm and torchvision imported: start-up 1.3 s shorter); ``backend.model`` builds it on first use. Needs ``onnx``
and ``onnxruntime`` (the ``onnx`` extra). Both return logits laid out channels-last in memory, the layout the steps
after the network read fastest.
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from parsing.atomic import atomic_write
from parsing.model.checkpoint import checkpoint_path, read_checkpoint
from parsing.model.parsing_model import ParsingModel
from parsing.model.spec import ModelSpec

OPSET = 17
Outputs = tuple[torch.Tensor, torch.Tensor | None]  # logits (B, K, H, W), presence logits (B, K) or None


def with_tta(forward: Callable[[torch.Tensor], Outputs], x: torch.Tensor, tta: str = "none") -> Outputs:
    """``forward(x)``; with ``tta`` ``flip`` the mean over the photos (B, 3, H, W) and their mirror images (one
    pass over a batch of 2B): maps (B, C, H, W) are flipped back, vectors (B, D) averaged, None stays None. The one
    place test-time augmentation lives (backends and training's ``test``)."""
    if tta == "none":
        return forward(x)
    n = len(x)
    both = forward(torch.cat([x, x.flip(-1)]))  # each (2B, …)
    return tuple(
        None if out is None else (out[:n] + (out[n:].flip(-1) if out.ndim == 4 else out[n:])) / 2 for out in both
    )


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is a ValueError."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: no CUDA device is available")
    return device


class Backend:
    """Runs ``model``'s network: ``forward`` for one pass, ``infer`` with test-time augmentation.

    ``own_threads``: the network runs on threads of its own (not torch's), so it can run beside torch work (the
    parser then overlaps one photo's network with the previous photo's decoding, every call's network on one
    thread). Every backend takes concurrent calls."""

    name = "base"
    own_threads = False

    def __init__(self, spec: ModelSpec, device: str | torch.device = "cpu") -> None:
        self.spec, self.device = spec, torch.device(device)

    @property
    def model(self) -> ParsingModel:
        """The torch model (built on first use where the network runs elsewhere)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> Outputs:
        raise NotImplementedError

    def infer(self, x: torch.Tensor, tta: str = "none") -> Outputs:
        """(B, 3, H, W) → logits, presence logits; ``tta`` ``flip``: see ``with_tta``."""
        return with_tta(self.forward, x, tta)

    def for_stream(self) -> Backend:
        """The backend to run a stream's networks beside their decoding (OpenVINO: fewer threads); here, itself."""
        return self

    def embed(self, x: torch.Tensor, tta: str = "none") -> tuple[torch.Tensor | None, ...]:
        """(B, 3, H, W) → logits, presence logits, the decoder's features (B, C, H/4, W/4), the outfit encoder's
        hidden layer (B, D) or None (``ParsingNet.forward_embedded``); the torch backend's network."""
        raise ValueError(f"embeddings need the torch network: load with backend='torch' (not {self.name})")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self.device})"


class TorchBackend(Backend):
    """The model itself, in eval mode, on ``device``."""

    name = "torch"

    def __init__(self, model: ParsingModel, device: str | torch.device = "cpu") -> None:
        super().__init__(model.spec(), device)
        self._model = model.eval().to(device)

    @property
    def model(self) -> ParsingModel:
        return self._model

    def forward(self, x: torch.Tensor) -> Outputs:
        with torch.inference_mode():
            return self.model.forward_with_presence(x.to(self.device))

    def embed(self, x: torch.Tensor, tta: str = "none") -> tuple[torch.Tensor | None, ...]:
        def run(batch: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
            with torch.inference_mode():
                return self.model.net.forward_embedded(batch.to(self.device))

        return with_tta(run, x, tta)


def cache_dir() -> Path:
    return Path(os.environ.get("PARSING_CACHE", Path.home() / ".cache" / "parsing")) / "onnx"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:24]


def model_digest(model: ParsingModel) -> str:
    """A digest of a model's weights and config, for a model with no checkpoint file."""
    buffer = io.BytesIO()
    torch.save({"config": model.config, "state": model.state_dict()}, buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()[:24]


class OnnxBackend(Backend):
    """The network on onnxruntime (CPU), exported once per checkpoint and cached. ``source``: the checkpoint file
    (its digest names the cached export; the torch model is read from it only when an export is needed) or a
    ``ParsingModel``. ``threads``: onnxruntime's intra-op threads (default: torch's count)."""

    name = "onnxruntime"
    own_threads = True  # onnxruntime's thread pool, not torch's: the network can run beside torch work

    def __init__(self, source: str | Path | ParsingModel, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("backend='onnxruntime' needs onnxruntime: pip install 'clothing-parsing[onnx]'") from None
        self._model: ParsingModel | None = None
        self._checkpoint: dict[str, Any] | None = None
        if isinstance(source, ParsingModel):
            self._model = source.eval().cpu()
            spec, self.digest = source.spec(), model_digest(source)
        else:
            path = checkpoint_path(source)
            self._checkpoint = read_checkpoint(path)
            spec, self.digest = ModelSpec.from_checkpoint(self._checkpoint), file_digest(path)
        super().__init__(spec, "cpu")
        self._ort = ort
        self._options = self._session_options(threads or torch.get_num_threads())
        self._stream: OnnxBackend | None = None
        self.path = cache_dir() / f"{self.digest}-opset{OPSET}-nhwc.onnx"
        self.probe_path = self.path.with_suffix(".probe.npy")
        self._session = self._load() or self._export()

    @property
    def model(self) -> ParsingModel:
        """The torch model, built from the checkpoint on first use (exports, parity checks, your own code)."""
        if self._model is None:
            self._model = ParsingModel.from_checkpoint(self._checkpoint)
        return self._model

    def _session_options(self, threads: int):  # noqa: ANN202
        options = self._ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        # No busy-waiting between runs: spinning threads took the cores from the torch steps after the network
        # (decode + CRF 0.12 → 0.21 s per photo with spinning on).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    def for_stream(self) -> OnnxBackend:
        """This backend for a stream of photos whose network runs beside the previous photo's decoding: a second
        session on half the threads (made on first use), so the two stop fighting over the cores."""
        threads = self._options.intra_op_num_threads
        if threads <= 1:
            return self
        if self._stream is None:
            stream = copy.copy(self)
            stream._options = self._session_options(threads // 2)
            stream._session = stream._new_session()
            self._stream = stream
        return self._stream

    def _new_session(self):  # noqa: ANN202
        return self._ort.InferenceSession(str(self.path), self._options, providers=["CPUExecutionProvider"])

    def _load(self):  # noqa: ANN202
        """The cached session, or None when there is none or it is unusable (then it is removed)."""
        if not self.path.is_file() or not self.probe_path.is_file():
            return None
        try:
            session = self._new_session()
            if self._agrees(session, np.load(self.probe_path)):
                return session
        except Exception:  # onnxruntime raises its own exception types for a corrupt file  # noqa: BLE001
            pass
        self.path.unlink(missing_ok=True)
        self.probe_path.unlink(missing_ok=True)
        return None

    def _export(self):  # noqa: ANN202
        from parsing.model.export import export_onnx

        def write(tmp: Path) -> None:  # the graph renamed into place last: then it always has its probe beside it
            export_onnx(self.model, tmp, (64, 64), OPSET, channels_last=True)
            session = self._ort.InferenceSession(str(tmp), self._options, providers=["CPUExecutionProvider"])
            reference = self._reference()
            if not self._agrees(session, reference):
                raise RuntimeError(f"{self.path}: the exported network does not match torch's")
            atomic_write(self.probe_path, lambda probe: np.save(probe, reference))

        atomic_write(self.path, write)
        for old in self.path.parent.glob(f"{self.digest}-*"):  # this checkpoint's exports of earlier versions
            if old not in (self.path, self.probe_path):
                old.unlink(missing_ok=True)
        return self._new_session()

    @staticmethod
    def _probe() -> torch.Tensor:
        return torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))  # fixed

    def _reference(self) -> np.ndarray:
        """The torch network's logits (1, K, 64, 96) on the probe."""
        with torch.inference_mode():
            return self.model.forward_with_presence(self._probe())[0].float().numpy()

    def _agrees(self, session, reference: np.ndarray) -> bool:  # noqa: ANN001
        """The probe through ``session``: logits within 1e-3 of ``reference``."""
        got = session.run(None, {"image": self._probe().numpy()})[0].transpose(0, 3, 1, 2)  # (B, H, W, K) → NCHW
        return got.shape == reference.shape and float(np.abs(got - reference).max()) < 1e-3

    def forward(self, x: torch.Tensor) -> Outputs:
        """(B, 3, H, W) → logits (B, K, H, W), presence logits (B, K) or None, as the torch network."""
        h, w = x.shape[-2:]
        padded = pad32(x)
        return from_graph(self._session.run(None, {"image": padded}), h, w)


def from_graph(outputs: list[np.ndarray], h: int, w: int) -> Outputs:
    """The exported graph's outputs → logits (B, K, h, w) (padding cropped), presence logits (B, K) or None.

    Logits come (B, H, W, K) from the graph and are seen as (B, K, H, W) channels-last like the torch network's: the
    steps after it (softmax over labels, merged groups) are written for that layout (on NCHW logits decode + CRF took
    0.16 instead of 0.11 s per photo), and transposing inside the graph costs ~5 ms, a copy here ~30."""
    logits = torch.from_numpy(outputs[0])[:, :h, :w].permute(0, 3, 1, 2)
    presence = torch.logit(torch.from_numpy(outputs[1]).double(), eps=1e-7).float() if len(outputs) > 1 else None
    return logits, presence


def pad32(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) → float32 numpy padded bottom/right with zeros to multiples of 32, as ``ParsingNet`` pads."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % 32, 0, -h % 32)).float().contiguous().cpu().numpy()
