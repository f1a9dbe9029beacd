"""LightningModule: the parsing network, its losses, optimiser and metrics at the photos' own resolution."""

from __future__ import annotations

import re
from typing import Any, Literal

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from segmentation_models_pytorch.losses import DiceLoss
from torch import nn

from parsing.encoder_weights import OFFLINE
from parsing.labels import CCP_LABELS, IGNORE_INDEX, default_palette
from parsing.metrics import confusion_matrix, scores
from parsing.model import Arch, build_model


def upsample_labels(logits: torch.Tensor, valid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """One photo's logits (K, H, W) at network size → label map (h, w) at the photo's size.

    The padded part is cropped away (``valid`` = the top-left (h', w') that holds the photo), then the logits
    are resized bilinearly, as the photo was resized, before the argmax.
    """
    vh, vw = valid
    cropped = logits[None, :, :vh, :vw].float()  # (1, K, h', w')
    return F.interpolate(cropped, size=size, mode="bilinear", align_corners=False)[0].argmax(0)  # (h, w)


class ParsingModule(pl.LightningModule):
    """Clothing parser.

    Args:
        arch: ``unet``, ``fpn``, ``deeplabv3plus`` or ``fcn8s``; encoder: any smp encoder name.
        encoder_weights: ``None``; ``"imagenet"`` (smp download, online); ``"imagenet-offline"`` (PyPI
            efficientnet-lite0/1/2 packages, for ``timm-tf_efficientnet_liteN``); or a path to a state_dict.
        num_classes, class_names, palette: the label set (linked from the datamodule by the CLI).
        loss: cross-entropy, or cross-entropy + ``dice_weight`` × Dice; class_weights: per-class CE weights.
        schedule: ``onecycle`` (warm-up then cosine annealing, per step), ``cosine`` or ``constant``.
        channels_last: NHWC memory layout (about 2× faster training on CPU for convolutional encoders).
        input_mean, input_std: override the normalisation that belongs to the encoder weights.
    """

    def __init__(
        self,
        arch: Arch = "fpn",
        encoder: str = "timm-tf_efficientnet_lite0",
        encoder_weights: str | None = OFFLINE,
        num_classes: int | None = None,
        class_names: list[str] | None = None,
        palette: list[list[int]] | None = None,
        loss: Literal["ce", "ce+dice"] = "ce",
        dice_weight: float = 0.5,
        class_weights: list[float] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        schedule: Literal["onecycle", "cosine", "constant"] = "onecycle",
        channels_last: bool = True,
        input_mean: tuple[float, float, float] | None = None,
        input_std: tuple[float, float, float] | None = None,
    ) -> None:
        super().__init__()
        if class_names is None:
            count = num_classes or len(CCP_LABELS)
            class_names = list(CCP_LABELS) if count == len(CCP_LABELS) else [f"class_{i}" for i in range(count)]
        if num_classes is not None and num_classes != len(class_names):
            raise ValueError(f"num_classes={num_classes} but {len(class_names)} class_names")
        self.save_hyperparameters()  # with the linked label set: a checkpoint rebuilds its model
        self.class_names = list(class_names)
        self.palette = palette or [list(c) for c in default_palette(class_names)]
        self.num_classes = len(class_names)
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    # --- configuration hooks -------------------------------------------------------------------------------
    def configure_models(self) -> None:
        hp = self.hparams
        self.net = build_model(hp.arch, hp.encoder, hp.encoder_weights, self.num_classes, hp.input_mean, hp.input_std)
        if hp.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)

    def configure_losses(self) -> None:
        hp = self.hparams
        weight = None
        if hp.class_weights is not None:
            if len(hp.class_weights) != self.num_classes:
                raise ValueError(f"{len(hp.class_weights)} class_weights for {self.num_classes} classes")
            weight = torch.tensor(hp.class_weights, dtype=torch.float32)
        self.ce = nn.CrossEntropyLoss(weight=weight, ignore_index=IGNORE_INDEX)
        self.dice = DiceLoss("multiclass", ignore_index=IGNORE_INDEX) if hp.loss == "ce+dice" else None

    def configure_metrics(self) -> None:
        self.val_cm = confusion_matrix(self.num_classes)
        self.test_cm = confusion_matrix(self.num_classes)

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.schedule == "constant":
            return {"optimizer": optimizer}
        steps = int(self.trainer.estimated_stepping_batches)
        if hp.schedule == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=hp.lr, total_steps=steps, pct_start=0.1)
        else:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # --- steps ---------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Photos (B, 3, H, W) in [0, 1] → logits (B, K, H, W)."""
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def compute_loss(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        loss = self.ce(logits, mask)
        if self.dice is not None:
            loss = loss + self.hparams.dice_weight * self.dice(logits, mask)
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.compute_loss(self(batch["image"]), batch["mask"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["image"]))
        return loss

    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        logits = self(batch["image"])
        self.log(f"{stage}/loss", self.compute_loss(logits, batch["mask"]), batch_size=len(logits), sync_dist=True)
        cm = self.val_cm if stage == "val" else self.test_cm
        for i in range(len(logits)):
            pred = upsample_labels(logits[i], batch["valid"][i], batch["size"][i])
            cm.update(pred.flatten(), batch["full_mask"][i].flatten())

    def _log_scores(self, stage: str) -> dict[str, torch.Tensor]:
        cm = self.val_cm if stage == "val" else self.test_cm
        result = scores(cm.compute())
        cm.reset()
        for key in ("pixel_acc", "fg_acc", "miou", "f1"):
            self.log(f"{stage}/{key}", result[key].float(), prog_bar=key in ("fg_acc", "miou"))
        return result

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        result = self._log_scores("test")
        for name, iou in zip(self.class_names, result["iou"].tolist(), strict=True):
            if iou == iou:  # classes that occur in the ground truth
                self.log(f"test/iou/{re.sub(r'[^0-9a-zA-Z_-]', '_', name)}", float(iou))

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """Label maps (h, w) uint8 at each photo's own size."""
        logits = self(batch["image"])
        return [
            {"path": path, "labels": upsample_labels(logits[i], batch["valid"][i], batch["size"][i]).to(torch.uint8)}
            for i, path in enumerate(batch["path"])
        ]
