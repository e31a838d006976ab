"""Run parameters of the PyTorch route's step 1 (tao_kfp.routes.pyt_steps.validate_inputs)."""

from __future__ import annotations

from typing import Any, Dict


def step_one_params(**changes: Any) -> Dict[str, Any]:
    """A valid set for a tiny class-folder dataset at ``datasets/tiny``, with ``changes``."""
    values: Dict[str, Any] = dict(
        run_id="run-1",
        tao_version="6",
        dataset_path="datasets/tiny",
        dataset_format="class_folders",
        pretrained_model="",
        epochs=2,
        compress_epochs=1,
        batch_size=2,
        learning_rate=0.001,
        compression="quantize",
        student_backbone="efficientvit_b0",
        engine_precision="fp16",
        num_gpus="1",
        spec_overrides="",
    )
    values.update(changes)
    return values
