"""Callbacks for tests that run the CLI in a subprocess (``PYTHONPATH=tests``)."""

import json
import os
import signal

import pytorch_lightning as pl


class DumpMetrics(pl.Callback):
    """Write ``trainer.callback_metrics`` and the global step as JSON on rank 0 when fit/validate/test ends."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _dump(self, trainer: pl.Trainer) -> None:
        if trainer.is_global_zero:
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
            with open(self.path, "w") as fh:
                json.dump({"metrics": metrics, "global_step": trainer.global_step, "world": trainer.world_size}, fh)

    def on_fit_end(self, trainer, pl_module):  # noqa: ANN001
        self._dump(trainer)

    def on_validation_end(self, trainer, pl_module):  # noqa: ANN001
        if not trainer.training:
            self._dump(trainer)

    def on_test_end(self, trainer, pl_module):  # noqa: ANN001
        self._dump(trainer)


class KillAt(pl.Callback):
    """SIGKILL this process after training batch ``step`` (no clean-up: as if the machine died)."""

    def __init__(self, step: int, record: str) -> None:
        self.step = step
        self.record = record

    def on_train_start(self, trainer, pl_module):  # noqa: ANN001
        with open(self.record, "a") as fh:
            fh.write(f"start {trainer.global_step}\n")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):  # noqa: ANN001
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)
