"""Segmentation scores derived from one confusion matrix accumulated over the whole dataset.

torchmetrics' ``MeanIoU`` averages per image and has no ignore index; a dataset-level
``MulticlassConfusionMatrix`` gives pixel accuracy, foreground accuracy, per-class IoU, mIoU and macro F1.
"""

from __future__ import annotations

import warnings

import torch
from torchmetrics import Metric
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.functional.classification import multilabel_average_precision, multilabel_f1_score
from torchmetrics.utilities import dim_zero_cat

from parsing.labels import IGNORE_INDEX


def confusion_matrix(num_classes: int) -> MulticlassConfusionMatrix:
    """Rows are ground truth, columns predictions; ``IGNORE_INDEX`` pixels are skipped."""
    return MulticlassConfusionMatrix(num_classes, ignore_index=IGNORE_INDEX, validate_args=False)


def scores(cm: torch.Tensor, background: int = 0) -> dict[str, torch.Tensor]:
    """Pixel acc, foreground acc (ground-truth background excluded), per-class IoU/F1, and their means over
    the classes present in the ground truth."""
    cm = cm.double()
    tp = cm.diag()
    gt = cm.sum(1)  # pixels of each class in the ground truth
    pred = cm.sum(0)
    union = gt + pred - tp
    present = gt > 0
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.zeros_like(tp))
    f1 = torch.where(gt + pred > 0, 2 * tp / (gt + pred).clamp(min=1), torch.zeros_like(tp))
    foreground = torch.ones_like(present)
    foreground[background] = False
    nan = torch.tensor(float("nan"), dtype=cm.dtype)
    return {
        "pixel_acc": tp.sum() / gt.sum() if gt.sum() > 0 else nan,
        "fg_acc": tp[foreground].sum() / gt[foreground].sum() if gt[foreground].sum() > 0 else nan,
        "miou": iou[present].mean() if present.any() else nan,
        "f1": f1[present].mean() if present.any() else nan,
        "iou": torch.where(present, iou, nan),  # (K,), NaN where the class never occurs
        "class_f1": torch.where(present, f1, nan),
    }


class PresenceScores(Metric):
    """Outfit-branch scores: mean AP over labels with at least one positive photo, and micro F1 of the
    predicted garment sets at ``threshold``. (torchmetrics' macro AP counts labels never present as 0.)"""

    full_state_update = False

    def __init__(self, num_labels: int, threshold: float = 0.5) -> None:
        super().__init__()
        self.num_labels, self.threshold = num_labels, threshold
        self.add_state("probs", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, probs: torch.Tensor, targets: torch.Tensor) -> None:
        self.probs.append(probs.detach().float())
        self.targets.append(targets.detach().long())

    def compute(self) -> dict[str, torch.Tensor]:
        probs, targets = dim_zero_cat(self.probs), dim_zero_cat(self.targets)
        positive = targets.sum(0) > 0
        with warnings.catch_warnings():  # labels without positives are dropped below
            warnings.filterwarnings("ignore", message="No positive samples found")
            ap = multilabel_average_precision(probs, targets, self.num_labels, average=None)
        f1 = multilabel_f1_score(probs, targets, self.num_labels, threshold=self.threshold, average="micro")
        return {"map": ap[positive].mean(), "f1": f1}
