"""Interpreter start-up hook (``parsing-torchvision.pth``, written by ``make install``): makes ``import torchvision``
work beside a CPU-only torch whatever is imported first (``pytorch_lightning``, ``timm``, ``torchmetrics``…).

It only waits for the first ``import torchvision`` and then runs ``parsing._torchvision``'s shim (which defines the
missing operator schemas) before torchvision loads; nothing else is imported at start-up.
"""

import sys


class _TorchvisionAfterParsing:
    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201
        if name == "torchvision":
            sys.meta_path.remove(self)
            from parsing._torchvision import ensure_torchvision_importable

            ensure_torchvision_importable()  # the op schemas, before torchvision's own import goes on
        return None


sys.meta_path.insert(0, _TorchvisionAfterParsing())
