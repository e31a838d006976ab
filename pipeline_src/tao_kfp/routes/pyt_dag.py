"""The PyTorch route's KFP components and DAG (declared in tao_kfp.routes.pyt).

Components are thin wrappers around tao_kfp.routes.pyt_steps, as tao_kfp.components are for the
TF1 route; prepare-dataset and download-pretrained are shared (tao_kfp.pipeline.data_steps). No
``from __future__ import annotations``: kfp reads the signatures' annotations. Never write the
word for the Python 3 interpreter's executable inside a body: kfp.local rewrites it.
"""

from typing import Callable, NamedTuple

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Markdown, Metrics, Model, Output

from tao_kfp.environment import Images
from tao_kfp.pipeline import configure_cpu_step, configure_gpu_step, data_steps
from tao_kfp.routes.pyt import DEFAULT_BACKBONE, PIPELINE_NAME

CPU_IMAGE = Images().tools
GPU_IMAGE = Images().tao


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def validate_inputs(
    workspace: str,
    run_id: str,
    tao_version: str,
    dataset_path: str,
    dataset_format: str,
    pretrained_model: str,
    epochs: int,
    compress_epochs: int,
    batch_size: int,
    learning_rate: float,
    compression: str,
    student_backbone: str,
    engine_precision: str,
    num_gpus: str,
    spec_overrides: str,
) -> NamedTuple(
    "RunPlan",
    [
        ("run_dir", str),
        ("dataset_source", str),
        ("dataset_dir", str),
        ("specs_dir", str),
        ("pretrained_source", str),
        ("pretrained_cache", str),
    ],
):
    """Validates the inputs, writes every spec and checks it (see routes.pyt_steps)."""
    from tao_kfp.routes.pyt_steps import validate_inputs as implementation

    plan = implementation(
        workspace=workspace,
        run_id=run_id,
        tao_version=tao_version,
        dataset_path=dataset_path,
        dataset_format=dataset_format,
        pretrained_model=pretrained_model,
        epochs=epochs,
        compress_epochs=compress_epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        compression=compression,
        student_backbone=student_backbone,
        engine_precision=engine_precision,
        num_gpus=num_gpus,
        spec_overrides=spec_overrides,
    )
    return (
        plan.run_dir,
        plan.dataset_source,
        plan.dataset_dir,
        plan.specs_dir,
        plan.pretrained_source,
        plan.pretrained_cache,
    )


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def train(
    specs_dir: str, dataset_dir: str, pretrained_model: str, num_gpus: str, metrics: Output[Metrics]
) -> str:
    """Trains with classification_pyt train (see routes.pyt_steps)."""
    from tao_kfp.routes.pyt_steps import run_train

    print(f"dataset: {dataset_dir}")
    return run_train(
        specs_dir=specs_dir, pretrained_model=pretrained_model, num_gpus=num_gpus, metrics=metrics
    )


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def evaluate(
    specs_dir: str,
    model_path: str,
    metrics: Output[Metrics],
    confusion_matrix: Output[ClassificationMetrics],
):
    """Evaluates the trained model (see routes.pyt_steps)."""
    from tao_kfp.routes.pyt_steps import run_evaluate

    run_evaluate(
        specs_dir=specs_dir,
        step="evaluate",
        model_path=model_path,
        metrics=metrics,
        confusion_matrix=confusion_matrix,
    )


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def compress(
    specs_dir: str,
    compression: str,
    model_path: str,
    num_gpus: str,
    model: Output[Model],
    metrics: Output[Metrics],
) -> str:
    """Distills or quantizes the trained model; publishes it as a Model (see routes.pyt_steps)."""
    import shutil
    from pathlib import Path

    from tao_kfp.routes.pyt_steps import run_compress

    compressed = run_compress(
        specs_dir=specs_dir,
        compression=compression,
        model_path=model_path,
        num_gpus=num_gpus,
        metrics=metrics,
    )
    Path(model.path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(compressed, model.path)
    model.metadata.update({"workspace_path": compressed, "compression": compression})
    return compressed


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def evaluate_compressed(
    specs_dir: str,
    model_path: str,
    metrics: Output[Metrics],
    confusion_matrix: Output[ClassificationMetrics],
):
    """Evaluates the compressed model (see routes.pyt_steps)."""
    from tao_kfp.routes.pyt_steps import run_evaluate

    run_evaluate(
        specs_dir=specs_dir,
        step="evaluate_compressed",
        model_path=model_path,
        metrics=metrics,
        confusion_matrix=confusion_matrix,
    )


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def inference(
    specs_dir: str,
    model_path: str,
    predictions_table: Output[Markdown],
    predictions: Output[Dataset],
):
    """Classifies the test images with the compressed model (see routes.pyt_steps)."""
    from tao_kfp.routes.pyt_steps import run_inference

    run_inference(
        specs_dir=specs_dir,
        model_path=model_path,
        table=predictions_table,
        predictions=predictions,
    )


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def export_onnx(specs_dir: str, model_path: str, metrics: Output[Metrics]) -> str:
    """Exports the ONNX model the engine is built from (see routes.pyt_steps)."""
    from tao_kfp.routes.pyt_steps import run_export

    return run_export(specs_dir=specs_dir, model_path=model_path, metrics=metrics)


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def gen_trt_engine(specs_dir: str, onnx_model: str, metrics: Output[Metrics]) -> str:
    """Builds the TensorRT engine in tao-deploy (see routes.pyt_steps)."""
    from tao_kfp.routes.pyt_steps import run_gen_trt_engine

    return run_gen_trt_engine(specs_dir=specs_dir, onnx_model=onnx_model, metrics=metrics)


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def evaluate_engine(specs_dir: str, engine: str, metrics: Output[Metrics]):
    """Evaluates the TensorRT engine in tao-deploy (see routes.pyt_steps)."""
    from tao_kfp.routes.pyt_steps import run_evaluate_engine

    run_evaluate_engine(specs_dir=specs_dir, engine=engine, metrics=metrics)


def pipeline(env) -> Callable:
    """The route's ``@dsl.pipeline`` function for an EnvironmentConfig (see tao_kfp.pipeline)."""

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description=(
            "NVIDIA TAO (6.x, PyTorch) image classification: validate, prepare data, train, "
            "evaluate, distill or quantize, evaluate, infer, export ONNX, build and evaluate a "
            "TensorRT engine."
        ),
    )
    def tao_classification_pyt(
        dataset_path: str,
        dataset_format: str = "class_folders",
        pretrained_model: str = "",
        epochs: int = 80,
        compress_epochs: int = 40,
        batch_size: int = 64,
        learning_rate: float = 0.001,
        compression: str = "quantize",
        student_backbone: str = DEFAULT_BACKBONE,
        engine_precision: str = "fp16",
        num_gpus: str = str(env.gpu.count),
        spec_overrides: str = "",
    ) -> dsl.Model:
        """TAO 6.x PyTorch classification on a class-folder (or Pascal VOC 2012) dataset.

        Args:
            dataset_path: Dataset folder, relative to the workspace (or absolute inside it):
                train/, val/ and test/ with one folder per class, or a VOC2012 folder.
            dataset_format: class_folders, or voc to convert Pascal VOC 2012 first
                (seeded 70/10/20 split per class).
            pretrained_model: Empty to train from scratch, a .pth/.ckpt backbone on the
                workspace, or an NGC model reference.
            epochs: Training epochs.
            compress_epochs: Epochs of distillation (compression distill).
            batch_size: Images per GPU per batch (also the engine's batch size).
            learning_rate: Learning rate of train.optim (and of distillation).
            compression: distill (into student_backbone) or quantize (torchao weight-only
                int8 PTQ).
            student_backbone: The smaller backbone distill trains (model.backbone.type).
            engine_precision: TensorRT engine precision: fp16 or fp32.
            num_gpus: GPUs for training and compression (a whole number 1-16, given as text
                because KFP resolves GPU counts from text parameters only).
            spec_overrides: Extra Hydra spec keys as YAML/JSON, laid over every training
                spec, e.g. {"model": {"backbone": {"type": "efficientvit_b1"}}}.

        Returns:
            The compressed model.
        """
        plan = validate_inputs(
            workspace=env.workspace.mount_path,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            tao_version=env.tao.version,
            dataset_path=dataset_path,
            dataset_format=dataset_format,
            pretrained_model=pretrained_model,
            epochs=epochs,
            compress_epochs=compress_epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            compression=compression,
            student_backbone=student_backbone,
            engine_precision=engine_precision,
            num_gpus=num_gpus,
            spec_overrides=spec_overrides,
        )
        configure_cpu_step(plan, env, model_key=True)
        specs_dir = plan.outputs["specs_dir"]

        data, pretrained = data_steps(plan, env, dataset_format)

        trained = train(
            specs_dir=specs_dir,
            dataset_dir=data.outputs["dataset_dir"],
            pretrained_model=pretrained.outputs["model_path"],
            num_gpus=num_gpus,
        )
        configure_gpu_step(trained, env, gpus=num_gpus)

        evaluated = evaluate(specs_dir=specs_dir, model_path=trained.outputs["Output"])
        configure_gpu_step(evaluated, env)

        compressed = compress(
            specs_dir=specs_dir,
            compression=compression,
            model_path=trained.outputs["Output"],
            num_gpus=num_gpus,
        )
        configure_gpu_step(compressed, env, gpus=num_gpus)
        compressed_model = compressed.outputs["Output"]

        re_evaluated = evaluate_compressed(specs_dir=specs_dir, model_path=compressed_model)
        configure_gpu_step(re_evaluated, env)

        inferred = inference(specs_dir=specs_dir, model_path=compressed_model)
        configure_gpu_step(inferred, env)

        exported = export_onnx(specs_dir=specs_dir, model_path=compressed_model)
        configure_gpu_step(exported, env)

        engine = gen_trt_engine(specs_dir=specs_dir, onnx_model=exported.outputs["Output"])
        configure_gpu_step(engine, env, deploy=True)

        engine_evaluated = evaluate_engine(specs_dir=specs_dir, engine=engine.outputs["Output"])
        configure_gpu_step(engine_evaluated, env, deploy=True)

        return compressed.outputs["model"]

    return tao_classification_pyt
