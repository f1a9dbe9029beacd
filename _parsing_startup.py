"""Interpreter start-up hook (``parsing-torchvision.pth``, written by ``make install``): makes ``import torchvision``
work beside a CPU-only torch whatever is imported first (``pytorch_lightning``, ``timm``, ``torchmetrics``…).

It only waits for the first ``import torchvision`` and then imports ``parsing`` (whose ``_torchvision`` shim defines
the missing operator schemas) before torchvision loads; nothing else is imported at start-up.
"""

import sys


class _TorchvisionAfterParsing:
    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201
        if name == "torchvision":
            sys.meta_path.remove(self)
            import parsing  # noqa: F401  (the shim runs before torchvision's own import goes on)
        return None


sys.meta_path.insert(0, _TorchvisionAfterParsing())
