"""Training: the LightningModule (fit/validate/test), checkpoints, weight transfer between label sets, metrics."""
