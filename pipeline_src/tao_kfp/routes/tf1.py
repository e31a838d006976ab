"""The TF1 classification routes: TAO 3.x (``classification``) and 5.0 (``classification_tf1``).

What differs between the two lines is declared here once (:data:`LINES`, read through
:func:`line`), beside the route's DAG. The route's spec writer is :mod:`tao_kfp.spec` (TAO's
protobuf text spec, ``makenet/proto``), its output parsers :mod:`tao_kfp.parsers` (what TAO's
Keras commands print and write), its step implementations :mod:`tao_kfp.steps`, its KFP
components :mod:`tao_kfp.components` and its DAG :mod:`tao_kfp.routes.tf1_dag`.

DAG (longest chain 7): validate -> prepare -> train -> prune -> retrain -> export-int8 ->
convert; download beside prepare; evaluate beside prune; re-evaluate, inference and the two
exports side by side after retraining; convert also takes export-fp32's model. The same DAG
serves both lines; ``tao.version`` picks what steps 10-12 run (see tao_kfp.steps.export).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from tao_kfp.routes import Commands, ReportKeys, Route, step_version

PIPELINE_NAME = "tao-classification"
# The one step that runs in the tao-deploy image on the 5.x line (gen_trt_engine).
ENGINE_TASK = "convert-tensorrt"

# Task name (as compiled) -> step kind. CPU steps use the tools image; GPU steps the TAO image
# plus accelerator, node selector, tolerations and /dev/shm.
STEP_KINDS: Dict[str, str] = {
    "validate-inputs": "cpu",
    "prepare-dataset": "cpu",
    "download-pretrained": "cpu",
    "train": "gpu",
    "evaluate": "gpu",
    "prune": "gpu",
    "retrain": "gpu",
    "re-evaluate": "gpu",
    "inference": "gpu",
    "export-fp32": "gpu",
    "export-int8": "gpu",
    "convert-tensorrt": "gpu",
}


@dataclass(frozen=True)
class Line:
    """What one TF1 line's commands write and take (docs/tao-contract.md has the sources)."""

    # train and prune write .tlt (3.x) or .hdf5 (5.0's prune appends .hdf5 to any other -o:
    # tao_tensorflow1_backend 5.0 common/magnet_prune.py:231-245).
    checkpoint_extension: str
    # export writes UFF .etlt (3.x) or ONNX whatever the data type (5.0 common/export/app.py).
    export_extension: str
    # 5.0's export takes -e (app.py:138-142); 3.x's is called as the 3.x notebook does.
    export_takes_spec: bool
    # 5.0 builds the engine with tao-deploy's gen_trt_engine from the ONNX and a calibration
    # TensorFile; 3.x with converter from the INT8 .etlt and its calibration cache.
    engine_from_onnx: bool
    # 3.x evaluate and inference declare -k required; 5.0 takes it as optional.
    key_required: bool
    # Spec fields the line's proto calls otherwise: {field we refuse: the line's name}.
    renamed_spec_fields: Dict[str, str]


LINES: Dict[str, Line] = {
    "3": Line(".tlt", ".etlt", False, False, True, {}),
    "5": Line(".hdf5", ".onnx", True, True, False, {"use_imagenet_head": "retain_head"}),
}


def line(version: Optional[str] = None) -> Line:
    """The line of ``version``, default the step image's (``TAO_VERSION``)."""
    return LINES[version or step_version()]


ROUTE = Route(
    name="tf1",
    title="TAO 3.x / 5.0 TF1 classification (classification, classification_tf1)",
    versions={
        "3": Commands(entrypoint="classification", deploy_entrypoint="classification_tf1"),
        "5": Commands(
            entrypoint="classification_tf1",
            deploy_entrypoint="classification_tf1",
            deploy_image=True,
        ),
    },
    pipeline_name=PIPELINE_NAME,
    package="pipelines/tao-classification.yaml",
    step_kinds=STEP_KINDS,
    deploy_tasks=(ENGINE_TASK,),
    final_model_task="retrain",
    report=ReportKeys(
        accuracy_before="evaluate",
        accuracy_after="re-evaluate",
        compression="prune",
        parameters_after="retrain",
        sizes={
            "trained_model": ("train", "model_size_mb"),
            "pruned_model": ("prune", "pruned_size_mb"),
            "retrained_model": ("retrain", "model_size_mb"),
            "exported_fp32": ("export-fp32", "export_size_mb"),
            "exported_int8": ("export-int8", "export_size_mb"),
            "engine_int8": ("convert-tensorrt", "engine_size_mb"),
        },
    ),
    dag="tao_kfp.routes.tf1_dag:pipeline",
    # TAO's protobuf text spec (tao_kfp.spec); base_spec defaults to specs/classification_spec.cfg.
    workspace_spec="specs/classification_spec.cfg",
)
