"""Prediction writer for ``parsing predict``: palette PNG label maps at each photo's own size."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter
from pytorch_lightning.utilities import rank_zero_warn

from parsing.io import write_mask_png


class MaskWriter(BasePredictionWriter):
    """Writes ``output_dir/<stem>.png`` (pixel value = label index, coloured by the model's palette).

    An existing file is kept (and reported) unless ``overwrite``; inputs are never touched.
    """

    def __init__(self, output_dir: str = "predictions", overwrite: bool = False) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.overwrite = overwrite

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: list[dict[str, Any]],
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        palette = [c for rgb in pl_module.palette for c in rgb]
        palette += [0] * (768 - len(palette))
        for item in prediction:
            target = self.output_dir / f"{Path(item['path']).stem}.png"
            if target.exists() and not self.overwrite:
                rank_zero_warn(f"{target}: exists, kept (set overwrite to replace it)")
                continue
            write_mask_png(target, item["labels"].cpu().numpy(), palette)
