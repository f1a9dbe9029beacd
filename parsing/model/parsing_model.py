"""``ParsingModel``: the trained model as plain PyTorch — the network, its labels, exclusive pairs and decoding.

    model = ParsingModel.from_checkpoint("shipped")     # or a file from ``parsing pack`` or ``fit``
    logits, presence = model.forward_with_presence(x)  # (B, K, H, W), (B, K) or None
    model.save("my.ckpt")                               # rebuilt by ParsingModel.from_checkpoint("my.ckpt")

The model carries everything inference needs and nothing of training: ``ParsingModule`` (the LightningModule,
``parsing.training``) holds one and adds losses, optimiser and metrics. A saved model is the packed checkpoint
format (``hyper_parameters`` = the model's config, ``state_dict``, ``input_size``), which ``fit`` checkpoints share.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from parsing.labels import CCP_LABELS, palette_for
from parsing.model.checkpoint import DEFAULT_INPUT_SIZE, input_size, model_state, read_checkpoint
from parsing.model.spec import DecodeFrom, DecodeSettings, ModelSpec, split_config

if TYPE_CHECKING:
    from parsing.nn.model import Arch, Context, Outfit
    from parsing.nn.outfit import GateMode

__all__ = ["DecodeFrom", "DecodeSettings", "ParsingModel"]


class ParsingModel(nn.Module):
    """Photos (B, 3, H, W) in [0, 1] → label logits (B, K, H, W) and presence logits (B, K) or None.

    ``class_names``/``palette``: the labels; ``arch``/``encoder``/``outfit``/``gate_mode``/``context``: the network
    (``parsing.nn.model.ParsingNet``); ``encoder_weights``: the encoder's start (None when weights are loaded after);
    ``input_mean``/``input_std``: override the weights' normalisation; ``channels_last``: NHWC layout (faster on a
    CPU); ``decoding``: ``DecodeSettings``; ``input_size``: the network box (H, W) inference fits photos into.
    The ``exclusive`` buffer (K, K) holds the garment pairs never worn together.
    """

    def __init__(
        self,
        class_names: list[str] | None = None,
        palette: list[list[int]] | None = None,
        arch: Arch = "fpn",
        encoder: str = "timm-tf_efficientnet_lite0",
        encoder_weights: str | None = None,
        outfit: Outfit = "none",
        gate_mode: GateMode = "multiply",
        context: Context = "none",
        input_mean: tuple[float, float, float] | None = None,
        input_std: tuple[float, float, float] | None = None,
        channels_last: bool = True,
        decoding: DecodeSettings | None = None,
        input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
    ) -> None:
        super().__init__()
        self.class_names = list(class_names if class_names is not None else CCP_LABELS)
        self.palette = palette_for(self.class_names, palette)
        self.decoding = decoding or DecodeSettings()
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.config: dict[str, Any] = dict(
            class_names=self.class_names, palette=self.palette, arch=arch, encoder=encoder, outfit=outfit,
            gate_mode=gate_mode, context=context, input_mean=input_mean, input_std=input_std,
            channels_last=channels_last, **dataclasses.asdict(self.decoding),
        )  # fmt: skip
        from parsing.nn.model import build_model  # smp, timm: imported only where a network is built

        k = len(self.class_names)
        self.net = build_model(arch, encoder, encoder_weights, k, input_mean, input_std, outfit, gate_mode, context)
        self.channels_last = channels_last
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.register_buffer("exclusive", torch.zeros(k, k, dtype=torch.bool))  # (K, K) pairs never worn together

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def spec(self) -> ModelSpec:
        """What the model means without its network (labels, pairs, decoding, box): what parsing reads."""
        return ModelSpec(
            dict(self.config), list(self.class_names), [list(c) for c in self.palette],
            self.exclusive.detach().cpu().clone(), self.decoding, self.input_size,
        )  # fmt: skip

    def forward_with_presence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 3, H, W) → logits (B, K, H, W) (gated, if the outfit encoder gates), presence logits (B, K) or None."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net.forward_with_presence(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_presence(x)[0]

    # --- saving and loading ----------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict[str, Any], input_size: tuple[int, int] = DEFAULT_INPUT_SIZE) -> ParsingModel:
        """The model a config describes, fresh weights; keys it does not know (a fit's training options) are
        ignored, and so are missing ones (their defaults)."""
        known, decoding = split_config(config)
        return cls(**known, decoding=decoding, input_size=input_size)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path | dict[str, Any] = "shipped") -> ParsingModel:
        """The model in a checkpoint: ``"shipped"`` (the package's CCP model), a file from ``parsing pack``,
        ``ParsingModel.save`` or ``fit``, or such a file's dict. A missing file is a ``FileNotFoundError``, anything
        else unusable a ``CheckpointError``, each naming the file."""
        state = checkpoint if isinstance(checkpoint, dict) else read_checkpoint(checkpoint)
        model = cls.from_config(state["hyper_parameters"], input_size(state))
        model.load_weights(state["state_dict"])
        return model.eval()

    def load_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a checkpoint's ``state_dict`` (either naming, see ``model_state``); the unused EfficientNet head
        older checkpoints carry (``parsing.nn.model.UNUSED_HEADS``) is dropped."""
        from parsing.nn.model import UNUSED_HEADS

        state = model_state(state_dict)
        own = self.state_dict()
        for key in [k for k in state if k.startswith("net.seg.encoder.") and k not in own]:
            if key.split(".")[3] in UNUSED_HEADS:
                del state[key]
        state.setdefault("exclusive", self.exclusive.clone())
        self.load_state_dict(state)

    def checkpoint(self) -> dict[str, Any]:
        """The dict ``save`` writes: ``hyper_parameters`` (the config), ``state_dict`` and ``input_size``."""
        state = {key: value.contiguous() for key, value in self.state_dict().items()}
        return {"hyper_parameters": dict(self.config), "state_dict": state, "input_size": list(self.input_size)}

    def save(self, path: str | Path) -> Path:
        """Write the model to ``path`` (a packed checkpoint: ``ParsingModel.from_checkpoint`` and every command
        that takes ``--checkpoint`` read it)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.checkpoint(), path)
        return path
