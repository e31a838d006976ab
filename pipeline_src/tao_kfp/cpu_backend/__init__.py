"""CPU backend: a PyTorch stand-in for TAO 3.x image classification, for laptop pipeline runs.

It exists to exercise the pipeline end to end without a GPU, not to replace TAO. It accepts
TAO 3.x's ``classification`` subcommands and short flags (and tao-converter's), reads the same
protobuf-text experiment spec, trains a real ResNet-10/18 on CPU and writes the files TAO
writes, with TAO's printed layout. Differences (no encryption, the ``.etlt`` is ONNX, the
"engine" is an ONNX Runtime model, ResNet only) are listed in this folder's README.md.
"""

import os

# torch's OpenMP threads busy-wait between parallel regions. When two backend processes share
# the cores (kfp.local runs independent steps side by side) the spinning threads starve each
# other: on 2 cores a test training took 87 s instead of 7 s, and two concurrent trainings ran
# at 0.5 s/step each (ACTIVE) instead of 0.2 s (PASSIVE). Passive waiting costs ~20% when a
# process runs alone; set OMP_WAIT_POLICY=ACTIVE to prefer that. OpenMP reads the variable when
# torch loads it, so it is set here, before any module of the backend imports torch.
if not os.environ.get("OMP_WAIT_POLICY"):
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
