"""LightningModule: the parsing network, its losses, optimiser and metrics at the photos' own resolution."""

from __future__ import annotations

import re
from typing import Any, Literal

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_info
from segmentation_models_pytorch.losses import LovaszLoss
from torch import nn
from torchmetrics import MeanMetric

from parsing.inference.crf_params import CRFKind, CRFParams
from parsing.inference.decode import decoding_source, parse_photo, pooled_presence
from parsing.inference.exclusions import (
    exclusion_matrix,
    exclusion_pairs,
    learn_exclusions,
    violations,
)
from parsing.inference.label_view import LabelView
from parsing.labels import CCP_LABELS, IGNORE_INDEX, garments_in
from parsing.model.backends import with_tta
from parsing.model.checkpoint import model_state
from parsing.model.parsing_model import DecodeFrom, ParsingModel
from parsing.model.spec import split_config
from parsing.nn.encoder_weights import OFFLINE
from parsing.nn.losses import cross_entropy, dice_loss, log_probs
from parsing.nn.model import Arch, Context, Outfit
from parsing.nn.outfit import GateMode
from parsing.training.metrics import PresenceScores, confusion_matrix, scores
from parsing.training.transfer import init_from


class ParsingModule(pl.LightningModule):
    """Trains a ``ParsingModel`` (``self.model``, plain PyTorch): its losses, optimiser and metrics.

    Args:
        arch: ``unet``, ``fpn``, ``deeplabv3plus`` or ``fcn8s``; encoder: any smp encoder name.
        encoder_weights: ``None``; ``"imagenet"`` (smp download, online); ``"imagenet-offline"`` (PyPI
            efficientnet-lite0/1/2 packages, for ``timm-tf_efficientnet_liteN``); or a path to a state_dict.
        num_classes, class_names, palette: the label set (linked from the datamodule by the CLI).
        loss: cross-entropy, or cross-entropy + ``dice_weight`` × Dice, or cross-entropy + ``lovasz_weight`` ×
            Lovász-softmax (a surrogate of the mean IoU over the labels in the batch; computed on every
            ``lovasz_stride``-th pixel of each axis, as its sort over all pixels costs as much as the network on a
            CPU). class_weights: per-class CE weights.
        schedule: ``onecycle`` (warm-up then cosine annealing, per step), ``cosine`` or ``constant``.
        channels_last: NHWC memory layout (faster training on CPU for convolutional encoders).
        input_mean, input_std: override the normalisation that belongs to the encoder weights.
        outfit: the outfit encoder: ``none``, ``aux`` (trained on presence only) or ``gate`` (it also gates the
            logits; ``gate_mode`` ``multiply`` is the paper's G_c = g_c · F_c, ``log`` adds log g_c).
        context: ``attention`` adds a self-attention block over the deepest features (``parsing.nn.context``): every
            cell sees the whole outfit before the decoder names it. Starts as the identity.
        presence_weight: weight of the presence BCE next to the segmentation loss.
        pooled_weight: image-level supervision of the segmentation itself: each label's softmax probability,
            pooled over the photo's pixels (mean of the top ``min_fraction`` share, on a 4× coarser grid), is
            trained with BCE towards the label's presence. This is how tag-only photos (``data.tag_ratio``) teach
            the decoder which garments a photo does *not* hold. 0 = off.
        trainable: ``all``, or ``outfit`` to train only the outfit encoder (the paper's second stage).
        init_from: a checkpoint whose weights start this fit (e.g. stage 1 → stage 2), or ``shipped`` (the package's
            model); with other labels than this model's, output rows carry over for labels named alike
            (``parsing.training.transfer``); missing keys stay new.
        exclusions: garment pairs that cannot be worn together, e.g. ``[[dress, skirt]]``; when unset they are
            learned from the training masks (``exclusion_min_count``, ``exclusion_min_expected``,
            ``exclusion_max_ratio``: see ``parsing.inference.exclusions.learn_exclusions``). Stored in the checkpoint.
        decode: decode a garment set that respects the exclusions and suppress the labels it excludes before
            the argmax. ``decode_from``: the outfit encoder's presence probabilities (``presence``, labels above
            ``presence_threshold``), the segmentation's own label shares (``pixels``), its pooled label
            probabilities (``pooled``, see ``pooled_presence``, above ``presence_threshold``), or ``auto``:
            presence when the model has an outfit encoder, else pixels.
        min_fraction: a label counts as present in a label map when it covers at least this share.
        crf: dense CRF after the network in ``test`` and ``predict`` (validation during fit stays without):
            ``none``, ``dense`` (pydensecrf, the reference; needs the ``crf`` extra) or ``fast`` (batched torch
            mean-field); it sees each photo at its original resolution. crf_params: see ``inference.crf.CRFParams``.
        tta: test-time augmentation in ``test`` and ``predict``: ``none`` or ``flip`` (the mean of the logits of
            the photo and of its mirror image; twice the network's time).
        tags_from_masks: in ``test``, allow each photo only the garments its mask holds (as ``parsing-predict
            --tags`` would): the upper bound of parsing with a known garment list.
    """

    def __init__(
        self,
        arch: Arch = "fpn",
        encoder: str = "timm-tf_efficientnet_lite0",
        encoder_weights: str | None = OFFLINE,
        num_classes: int | None = None,
        class_names: list[str] | None = None,
        palette: list[list[int]] | None = None,
        loss: Literal["ce", "ce+dice", "ce+lovasz"] = "ce",
        dice_weight: float = 0.5,
        lovasz_weight: float = 0.5,
        lovasz_stride: int = 2,
        class_weights: list[float] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        schedule: Literal["onecycle", "cosine", "constant"] = "onecycle",
        channels_last: bool = True,
        input_mean: tuple[float, float, float] | None = None,
        input_std: tuple[float, float, float] | None = None,
        outfit: Outfit = "none",
        gate_mode: GateMode = "multiply",
        context: Context = "none",
        presence_weight: float = 0.5,
        pooled_weight: float = 0.0,
        trainable: Literal["all", "outfit"] = "all",
        init_from: str | None = None,
        exclusions: list[list[str]] | None = None,
        exclusion_min_count: int = 15,
        exclusion_min_expected: float = 3.0,
        exclusion_max_ratio: float = 0.0,
        decode: bool = True,
        decode_from: DecodeFrom = "auto",
        presence_threshold: float = 0.5,
        min_fraction: float = 0.001,
        crf: CRFKind = "none",
        crf_params: CRFParams | None = None,
        tta: Literal["none", "flip"] = "none",
        tags_from_masks: bool = False,
    ) -> None:
        super().__init__()
        if class_names is None:
            count = num_classes or len(CCP_LABELS)
            class_names = list(CCP_LABELS) if count == len(CCP_LABELS) else [f"class_{i}" for i in range(count)]
        if num_classes is not None and num_classes != len(class_names):
            raise ValueError(f"num_classes={num_classes} but {len(class_names)} class_names")
        if trainable == "outfit" and outfit == "none":
            raise ValueError("trainable='outfit' needs an outfit encoder (outfit: aux or gate)")
        # With the linked label set: a checkpoint rebuilds its model. The CRF is an inference option: not stored, so
        # `test --ckpt_path … --model.crf fast` is not overridden by the checkpoint (LightningCLI loads its hparams).
        self.save_hyperparameters(ignore=["crf", "crf_params", "tta", "tags_from_masks"])
        self.crf = crf
        self.crf_params = crf_params or CRFParams()
        self.tags_from_masks = tags_from_masks
        if tta not in ("none", "flip"):
            raise ValueError(f"unknown tta {tta!r}; choose none or flip")
        self.tta = tta
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    # --- configuration hooks -------------------------------------------------------------------------------
    def configure_models(self) -> None:
        hp = self.hparams
        decoding = split_config(hp)[1]
        self.model = ParsingModel(
            hp.class_names, hp.palette, hp.arch, hp.encoder, hp.encoder_weights, hp.outfit, hp.gate_mode, hp.context,
            hp.input_mean, hp.input_std, hp.channels_last, decoding,
        )  # fmt: skip
        if hp.trainable == "outfit":
            self.net.seg.requires_grad_(False)
            if self.net.context is not None:
                self.net.context.requires_grad_(False)
        if hp.exclusions is not None:
            self.exclusive.copy_(exclusion_matrix(hp.exclusions, self.class_names))

    # The model's parts, named as before the trainer held a ParsingModel.
    @property
    def net(self) -> nn.Module:
        return self.model.net

    @property
    def exclusive(self) -> torch.Tensor:
        return self.model.exclusive  # (K, K) garment pairs that cannot be worn together

    @property
    def class_names(self) -> list[str]:
        return self.model.class_names

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    def configure_losses(self) -> None:
        hp = self.hparams
        weight = None
        if hp.class_weights is not None:
            if len(hp.class_weights) != self.num_classes:
                raise ValueError(f"{len(hp.class_weights)} class_weights for {self.num_classes} classes")
            weight = torch.tensor(hp.class_weights, dtype=torch.float32)
        # CE and Dice read one shared log-softmax (parsing.nn.losses); ``ce`` keeps the class weights (as before).
        self.ce = nn.CrossEntropyLoss(weight=weight, ignore_index=IGNORE_INDEX)
        self.lovasz = LovaszLoss("multiclass", ignore_index=IGNORE_INDEX) if hp.loss == "ce+lovasz" else None

    def configure_metrics(self) -> None:
        def stage_metrics() -> nn.ModuleDict:
            return nn.ModuleDict(
                {
                    "cm": confusion_matrix(self.num_classes),
                    "presence": PresenceScores(self.num_classes, self.hparams.presence_threshold),
                    "violations": MeanMetric(),
                    "violations_gt": MeanMetric(),
                }
            )

        self.stage_metrics = nn.ModuleDict({"val": stage_metrics(), "test": stage_metrics()})

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.schedule == "constant":
            return {"optimizer": optimizer}
        steps = int(self.trainer.estimated_stepping_batches)
        if hp.schedule == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=hp.lr, total_steps=steps, pct_start=0.1)
        else:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def setup(self, stage: str) -> None:
        hp = self.hparams
        if stage == "fit" and hp.init_from:
            for line in init_from(self.model, hp.init_from):
                rank_zero_info(line)
        datamodule = getattr(self.trainer, "datamodule", None)
        learn = stage != "predict" and hp.exclusions is None and not self.exclusive.any()
        if learn and hasattr(datamodule, "presence_table"):  # a ParsingDataModule: it has the label set too
            learned = learn_exclusions(
                datamodule.presence_table(),
                torch.from_numpy(datamodule.label_set.garments),
                hp.exclusion_min_count,
                hp.exclusion_min_expected,
                hp.exclusion_max_ratio,
            )
            self.exclusive.copy_(learned)
            pairs = exclusion_pairs(self.exclusive, self.class_names)
            rank_zero_info(f"learned {len(pairs)} exclusive garment pairs: {pairs}")

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Any parsing checkpoint (``ParsingModel.load_weights``): tensors named as before 0.5 (``net.*``) are
        renamed under ``model.``; without rules it keeps the rules configured or learned in ``setup``."""
        state = checkpoint["state_dict"]
        weights = model_state(state)
        if "exclusive" not in weights or not weights["exclusive"].any():
            weights["exclusive"] = self.exclusive.clone()
        self.model.load_weights(weights)
        checkpoint["state_dict"] = {
            **{key: value for key, value in state.items() if not key.startswith(("net.", "model.", "exclusive"))},
            **{f"model.{key}": value for key, value in self.model.state_dict().items()},
        }

    def on_train_epoch_start(self) -> None:
        if self.hparams.trainable == "outfit":
            self.net.seg.eval()  # frozen segmentation: keep its batch-norm statistics too

    # --- steps ---------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Photos (B, 3, H, W) in [0, 1] → logits (B, K, H, W) (gated, if the outfit encoder gates)."""
        return self.forward_with_presence(x)[0]

    def forward_with_presence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.model.forward_with_presence(x)

    def infer(self, x: torch.Tensor, tta: str | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Evaluation forward (B, 3, H, W) → logits (B, K, H, W), presence logits (B, K) or None; ``tta``
        (default: the module's) as ``parsing.model.backends.with_tta``."""
        return with_tta(self.forward_with_presence, x, self.tta if tta is None else tta)

    def segmentation_loss(
        self,
        logits: torch.Tensor,
        mask: torch.Tensor,
        lp: torch.Tensor | None = None,
        probs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """CE (+ Dice or Lovász) of logits (B, K, H, W) against a mask (B, H, W); ``lp`` / ``probs``: their
        ``parsing.nn.losses.log_probs`` (B, H, W, K) and its exp, when the step already has them."""
        if not (mask != IGNORE_INDEX).any():  # a batch of tag-only photos
            return logits.sum() * 0.0
        lp = log_probs(logits) if lp is None else lp
        loss = cross_entropy(lp, mask, self.ce.weight)
        if self.hparams.loss == "ce+dice":
            loss = loss + self.hparams.dice_weight * dice_loss(lp.exp() if probs is None else probs, mask)
        if self.lovasz is not None:
            k = self.hparams.lovasz_stride
            loss = loss + self.hparams.lovasz_weight * self.lovasz(logits[..., ::k, ::k], mask[..., ::k, ::k])
        return loss

    def presence_loss(self, presence: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """BCE over the known presence targets (tag-only photos know only their garments)."""
        known = batch["known"].float()
        bce = F.binary_cross_entropy_with_logits(presence, batch["presence"], weight=known, reduction="sum")
        return bce / known.sum().clamp(min=1)

    def pooled_presence(
        self, logits: torch.Tensor, region: torch.Tensor | None = None, probs: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, K) image-level label probabilities (``parsing.inference.decode.pooled_presence``)."""
        return pooled_presence(logits, self.hparams.min_fraction, region, probs)

    def pooled_loss(
        self, logits: torch.Tensor, batch: dict[str, Any], probs: torch.Tensor | None = None
    ) -> torch.Tensor:
        """BCE of the pooled label probabilities against the known presence targets (``probs``: as above)."""
        pooled = self.pooled_presence(logits, batch.get("region"), probs).clamp(1e-6, 1 - 1e-6)
        known = batch["known"].float()
        # as logits: binary_cross_entropy on probabilities is refused under autocast (mixed precision on a GPU)
        bce = F.binary_cross_entropy_with_logits(torch.logit(pooled), batch["presence"], weight=known, reduction="sum")
        return bce / known.sum().clamp(min=1)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits, presence = self.forward_with_presence(batch["image"])
        n = len(logits)
        hp = self.hparams
        lp = log_probs(logits)  # (B, H, W, K) one softmax for every loss below
        probs = lp.exp() if hp.loss == "ce+dice" or hp.pooled_weight > 0 else None
        loss = self.segmentation_loss(logits, batch["mask"], lp, probs)
        self.log("train/seg_loss", loss, batch_size=n)
        if hp.pooled_weight > 0:
            pooled = self.pooled_loss(logits, batch, probs.movedim(-1, 1))
            self.log("train/pooled_loss", pooled, batch_size=n)
            loss = loss + hp.pooled_weight * pooled
        if presence is not None:
            bce = self.presence_loss(presence, batch)
            self.log("train/presence_loss", bce, batch_size=n)
            loss = loss + hp.presence_weight * bce
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        return loss

    def label_maps(
        self, logits: torch.Tensor, presence: torch.Tensor | None, batch: dict[str, Any], crf: CRFKind = "none"
    ) -> list[torch.Tensor]:
        """Label maps (h, w) at each photo's own size (see ``parse_photo``)."""
        hp = self.hparams  # decoding follows the hyperparameters (the CLI and tests may change them)
        self.model.decoding = split_config(hp)[1]
        decoding_source(hp.decode_from, presence)  # a clear error for decode_from=presence without the branch
        images = batch.get("full_image", [None] * len(logits))
        views = [None] * len(logits)
        if self.tags_from_masks and "full_mask" in batch:
            model = self.model
            views = [
                LabelView.build(
                    model.class_names, model.palette, self.exclusive, None, garments_in(m.cpu(), model.class_names)
                )
                for m in batch["full_mask"]
            ]
        return [
            parse_photo(
                self.model,
                logits[i, :, :vh, :vw],
                None if presence is None else presence[i],
                batch["size"][i],
                images[i],
                crf,
                views[i],
                self.crf_params,
            )[0]
            for i, (vh, vw) in enumerate(batch["valid"])
        ]

    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        logits, presence = self.infer(batch["image"], self.tta if stage == "test" else "none")
        n = len(logits)
        self.log(f"{stage}/loss", self.segmentation_loss(logits, batch["mask"]), batch_size=n, sync_dist=True)
        metrics = self.stage_metrics[stage]
        crf = self.crf if stage == "test" else "none"
        for pred, truth in zip(self.label_maps(logits, presence, batch, crf), batch["full_mask"], strict=True):
            metrics["cm"].update(pred.flatten(), truth.flatten())
            if self.exclusive.any():
                k, mf = self.num_classes, self.hparams.min_fraction
                metrics["violations"].update(float(violations(pred, self.exclusive, k, mf)))
                metrics["violations_gt"].update(float(violations(truth, self.exclusive, k, mf)))
        if presence is not None:
            metrics["presence"].update(torch.sigmoid(presence), batch["presence"])

    def _log_scores(self, stage: str) -> dict[str, torch.Tensor]:
        metrics = self.stage_metrics[stage]
        result = scores(metrics["cm"].compute())
        for key in ("pixel_acc", "fg_acc", "miou", "f1"):
            self.log(f"{stage}/{key}", result[key].float(), prog_bar=key in ("fg_acc", "miou"))
        if metrics["violations"].update_count:
            self.log(f"{stage}/violation_rate", metrics["violations"].compute())
            self.log(f"{stage}/violation_rate_gt", metrics["violations_gt"].compute())
        if metrics["presence"].update_count:
            presence = metrics["presence"].compute()
            self.log(f"{stage}/presence_map", presence["map"])
            self.log(f"{stage}/presence_f1", presence["f1"])
        for metric in metrics.values():
            metric.reset()
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
