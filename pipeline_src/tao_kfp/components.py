"""The pipeline's components: thin KFP v2 lightweight wrappers around ``tao_kfp.steps``.

Each body imports its step implementation and calls it; the logic lives in plain,
unit-tested functions. ``install_kfp_package=False``: nothing is pip-installed when a step
starts, because both step images already carry kfp and this package.

Why TAO runs as a subprocess: TAO 3.x images ship Python 3.6, while kfp's executor needs
Python >= 3.9. The TAO step image (``images/``) therefore adds an isolated Python with kfp
and ``tao_kfp`` that comes first on ``PATH``, so the KFP launcher's interpreter runs these
components, and the step code calls TAO's own ``classification`` command (or
``classification_tf1``, from ``TAO_ENTRYPOINT``) via :func:`tao_kfp.tao.run_tao`. The same
mechanism lets local runs point ``TAO_ENTRYPOINT`` at the CPU backend.

evaluate/re_evaluate and train/retrain share their step implementation but stay separate
components: KFP names a task after its component, and distinct names keep the compiled DAG,
the run view and every test readable (a reused component would compile as "evaluate-2").

The base images below are the defaults; the pipeline sets each task's image from the
environment config (tools image for CPU steps, TAO image for GPU steps). Component sources
are embedded in the compiled YAML, so keep bodies short, and never write the word for the
Python 3 interpreter's executable inside them: kfp.local's SubprocessRunner rewrites it.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Markdown, Metrics, Model, Output

from tao_kfp.environment import Images

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
    retrain_epochs: int,
    batch_size: int,
    learning_rate: float,
    prune_threshold: float,
    num_gpus: str,
    spec_overrides: str,
    base_spec: str,
) -> NamedTuple(
    "RunPlan",
    [
        ("run_dir", str),
        ("dataset_source", str),
        ("dataset_dir", str),
        ("train_spec", str),
        ("retrain_spec", str),
        ("pruned_model", str),
        ("pretrained_source", str),
        ("pretrained_cache", str),
    ],
):
    """Validates the run's inputs and renders its spec files (see tao_kfp.steps.validate)."""
    from tao_kfp.steps.validate import validate_inputs as implementation

    plan = implementation(
        workspace=workspace,
        run_id=run_id,
        tao_version=tao_version,
        dataset_path=dataset_path,
        dataset_format=dataset_format,
        pretrained_model=pretrained_model,
        epochs=epochs,
        retrain_epochs=retrain_epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        prune_threshold=prune_threshold,
        num_gpus=num_gpus,
        spec_overrides=spec_overrides,
        base_spec=base_spec,
    )
    return (
        plan.run_dir,
        plan.dataset_source,
        plan.dataset_dir,
        plan.train_spec,
        plan.retrain_spec,
        plan.pruned_model,
        plan.pretrained_source,
        plan.pretrained_cache,
    )


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def prepare_dataset(dataset_format: str, source: str, dataset_dir: str) -> NamedTuple(
    "Prepared", [("dataset_dir", str), ("status", str)]
):
    """Converts VOC to class folders, or reports "skipped" (see tao_kfp.steps.prepare)."""
    from tao_kfp.steps.prepare import prepare_dataset as implementation

    result = implementation(dataset_format=dataset_format, source=source, dataset_dir=dataset_dir)
    return (result.dataset_dir, result.status)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def download_pretrained(source: str, cache_root: str) -> NamedTuple(
    "Pretrained", [("model_path", str), ("status", str)]
):
    """Fetches the pretrained model into the shared cache (see tao_kfp.steps.pretrained)."""
    from tao_kfp.steps.pretrained import fetch_pretrained

    result = fetch_pretrained(source, cache_root)
    return (result.model_path, result.status)


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def train(
    spec_path: str,
    run_dir: str,
    dataset_dir: str,
    pretrained_model: str,
    num_gpus: str,
    metrics: Output[Metrics],
    report: Output[HTML],
) -> NamedTuple("Trained", [("model_path", str), ("classmap", str)]):
    """Trains with TAO (see tao_kfp.steps.train)."""
    from tao_kfp.steps.common import run_subdir
    from tao_kfp.steps.train import run_train

    result = run_train(
        spec_path=spec_path,
        results_dir=str(run_subdir(run_dir, "train")),
        dataset_dir=dataset_dir,
        pretrained_model=pretrained_model,
        num_gpus=num_gpus,
        metrics=metrics,
        report_html=report,
        title="Training",
    )
    return (result.model_path, result.classmap)


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def evaluate(
    spec_path: str,
    model_path: str,
    classmap: str,
    run_dir: str,
    metrics: Output[Metrics],
    confusion_matrix: Output[ClassificationMetrics],
):
    """Evaluates the trained model on the test split (see tao_kfp.steps.evaluate)."""
    from tao_kfp.steps.common import run_subdir
    from tao_kfp.steps.evaluate import run_evaluate

    run_evaluate(
        spec_path=spec_path,
        model_path=model_path,
        results_dir=str(run_subdir(run_dir, "evaluate")),
        classmap=classmap,
        metrics=metrics,
        classification_metrics=confusion_matrix,
    )


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def prune(
    model_path: str, output_path: str, threshold: float, run_dir: str, metrics: Output[Metrics]
) -> str:
    """Prunes the trained model to the path decided in step 1 (see tao_kfp.steps.prune)."""
    from tao_kfp.steps.common import run_subdir
    from tao_kfp.steps.prune import run_prune

    result = run_prune(
        model_path=model_path,
        output_path=output_path,
        threshold=threshold,
        results_dir=str(run_subdir(run_dir, "prune")),
        metrics=metrics,
    )
    return result.pruned_model


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def retrain(
    spec_path: str,
    run_dir: str,
    dataset_dir: str,
    pruned_model: str,
    num_gpus: str,
    model: Output[Model],
    metrics: Output[Metrics],
    report: Output[HTML],
) -> NamedTuple("Retrained", [("model_path", str), ("classmap", str)]):
    """Retrains the pruned model and publishes it as a Model artifact (see steps.train)."""
    from tao_kfp.steps.common import run_subdir
    from tao_kfp.steps.train import publish_model, run_train

    result = run_train(
        spec_path=spec_path,
        results_dir=str(run_subdir(run_dir, "retrain")),
        dataset_dir=dataset_dir,
        pretrained_model=pruned_model,
        num_gpus=num_gpus,
        metrics=metrics,
        report_html=report,
        title="Retraining the pruned model",
    )
    publish_model(model, result)
    return (result.model_path, result.classmap)


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def re_evaluate(
    spec_path: str,
    model_path: str,
    classmap: str,
    run_dir: str,
    metrics: Output[Metrics],
    confusion_matrix: Output[ClassificationMetrics],
):
    """Evaluates the retrained model on the test split (see tao_kfp.steps.evaluate)."""
    from tao_kfp.steps.common import run_subdir
    from tao_kfp.steps.evaluate import run_evaluate

    run_evaluate(
        spec_path=spec_path,
        model_path=model_path,
        results_dir=str(run_subdir(run_dir, "re_evaluate")),
        classmap=classmap,
        metrics=metrics,
        classification_metrics=confusion_matrix,
    )


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def inference(
    model_path: str,
    spec_path: str,
    classmap: str,
    dataset_dir: str,
    run_dir: str,
    predictions_table: Output[Markdown],
    predictions: Output[Dataset],
):
    """Classifies the test images (see tao_kfp.steps.inference)."""
    from tao_kfp.steps.common import run_subdir
    from tao_kfp.steps.inference import run_inference

    run_inference(
        model_path=model_path,
        spec_path=spec_path,
        classmap=classmap,
        test_dir=dataset_dir + "/test",
        results_dir=str(run_subdir(run_dir, "inference")),
        table=predictions_table,
        predictions=predictions,
    )


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def export_fp32(model_path: str, spec_path: str, run_dir: str, metrics: Output[Metrics]) -> str:
    """Exports the retrained model in fp32 (see tao_kfp.steps.export)."""
    from tao_kfp.steps.common import run_subdir
    from tao_kfp.steps.export import run_export_fp32

    result = run_export_fp32(
        model_path=model_path,
        spec_path=spec_path,
        results_dir=str(run_subdir(run_dir, "export")),
        metrics=metrics,
    )
    return result.exported_model


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def export_int8(
    model_path: str, spec_path: str, run_dir: str, metrics: Output[Metrics]
) -> NamedTuple(
    "Int8Export", [("exported_model", str), ("cal_cache", str), ("cal_data_file", str)]
):
    """Writes INT8 calibration data; on TAO 3.x also the INT8 export (see steps.export)."""
    from tao_kfp.steps.common import run_subdir
    from tao_kfp.steps.export import run_export_int8

    result = run_export_int8(
        model_path=model_path,
        spec_path=spec_path,
        results_dir=str(run_subdir(run_dir, "export_int8")),
        metrics=metrics,
    )
    return (result.exported_model, result.cal_cache, result.cal_tensorfile)


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def convert_tensorrt(
    int8_model: str,
    cal_cache: str,
    fp32_model: str,
    cal_data_file: str,
    spec_path: str,
    run_dir: str,
    metrics: Output[Metrics],
) -> str:
    """Builds the INT8 TensorRT engine: converter (3.x) or gen_trt_engine (5.x)."""
    from tao_kfp.steps.common import run_subdir
    from tao_kfp.steps.export import run_build_engine

    return run_build_engine(
        int8_model=int8_model,
        cal_cache=cal_cache,
        fp32_model=fp32_model,
        cal_data_file=cal_data_file,
        spec_path=spec_path,
        results_dir=str(run_subdir(run_dir, "tensorrt")),
        metrics=metrics,
    )
