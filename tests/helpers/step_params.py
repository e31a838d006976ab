"""Valid arguments of step 1 (validate_inputs) for the tiny dataset, shared by step tests."""

from __future__ import annotations

from pathlib import Path


def run_params(workspace: Path, **changes) -> dict:
    """Valid arguments of steps.validate.validate_inputs for the tiny dataset, with changes."""
    values = dict(
        workspace=str(workspace),
        run_id="job-123",
        tao_version="3",
        dataset_path="datasets/tiny",
        dataset_format="class_folders",
        pretrained_model="",
        epochs=3,
        retrain_epochs=2,
        batch_size=4,
        learning_rate=0.01,
        prune_threshold=0.6,
        num_gpus="1",
        spec_overrides="",
        base_spec="specs/classification_spec.cfg",
    )
    values.update(changes)
    return values
