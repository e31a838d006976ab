"""CPU shim for NVIDIA's TAO PyTorch code (nvidia-tao-pytorch 7.3.0).

Active only when ``TAO_KFP_CPU_SHIM=1``. Put this folder on ``PYTHONPATH``: Python imports
``sitecustomize`` at start-up, in the launcher and in the ``python`` child it starts.

No spec key or override selects the CPU, so two GPU assumptions would stop every run here.
This file changes exactly those two, nothing else:

1. ``nvidia_tao_pytorch/core/initialize_experiments.py`` lines 117, 148 and 178 build the
   Lightning ``Trainer`` arguments with ``'accelerator': 'gpu'`` and ``devices`` set to the GPU
   ids (train, evaluate, inference; distill and quantize go through the same functions).
   Lightning then stops with "No supported gpu backend found!". The shim turns a Trainer asked
   for ``accelerator="gpu"`` into ``accelerator="cpu", devices=1``.
2. ``nvidia_tao_pytorch/cv/classification_pyt/scripts/export.py`` line 80 calls
   ``torch.cuda.set_device(export.gpu_id)`` even with ``export.on_cpu: true``. The shim makes
   ``torch.cuda.set_device`` a no-op.

Both patches are applied right after the module defining them is imported (a post-import
hook), so processes that never import torch or Lightning pay nothing.
"""

import importlib.abc
import importlib.util
import os
import sys

ENABLE_ENV = "TAO_KFP_CPU_SHIM"


def _patch_torch(torch):
    torch.cuda.set_device = lambda device: None  # export.py:80; no CUDA device to select


def _patch_lightning(pytorch_lightning):
    trainer_class = pytorch_lightning.trainer.trainer.Trainer
    original_init = trainer_class.__init__

    def __init__(self, *args, **kwargs):
        if kwargs.get("accelerator") == "gpu":  # initialize_experiments.py:117,148,178
            kwargs["accelerator"], kwargs["devices"] = "cpu", 1
        original_init(self, *args, **kwargs)

    trainer_class.__init__ = __init__


_PATCHES = {"torch": _patch_torch, "pytorch_lightning": _patch_lightning}


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds the real module spec, then runs its patch once the module has executed."""

    def find_spec(self, name, path=None, target=None):
        if name not in _PATCHES:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _PATCHES[name](module)

        spec.loader.exec_module = exec_and_patch
        return spec


if os.environ.get(ENABLE_ENV) == "1":
    sys.meta_path.insert(0, _PatchAfterImport())
