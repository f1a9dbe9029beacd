import math

import torch

from parsing.labels import IGNORE_INDEX
from parsing.training.metrics import confusion_matrix, scores


def test_scores_from_a_known_confusion():
    gt = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, IGNORE_INDEX])
    pred = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 1])
    cm = confusion_matrix(4)
    cm.update(pred, gt)
    s = scores(cm.compute())
    assert math.isclose(s["pixel_acc"], 6 / 8)
    assert math.isclose(s["fg_acc"], 3 / 4)  # ground-truth background pixels excluded
    # IoU: class 0 = 3/4, class 1 = 1/3, class 2 = 2/3; class 3 absent from the ground truth
    assert math.isclose(s["miou"], (3 / 4 + 1 / 3 + 2 / 3) / 3)
    assert math.isclose(s["f1"], (6 / 7 + 2 / 4 + 4 / 5) / 3)
    assert math.isnan(s["iou"][3])


def test_all_background_prediction_scores_zero_foreground():
    gt = torch.tensor([0, 0, 0, 1])
    cm = confusion_matrix(2)
    cm.update(torch.zeros(4, dtype=torch.long), gt)
    s = scores(cm.compute())
    assert math.isclose(s["pixel_acc"], 0.75) and s["fg_acc"] == 0
