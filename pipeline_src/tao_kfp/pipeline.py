"""The TAO classification workflow as one KFP v2 pipeline.

``make_pipeline(env)`` builds the ``@dsl.pipeline`` function for an environment: the run form
holds only what a data scientist changes, and every cluster detail (images, workspace claim,
Secrets, GPU scheduling, timeouts, security context) is applied from the
:class:`~tao_kfp.environment.EnvironmentConfig` by one helper per step kind. The shipped
``files/pipelines/tao-classification.yaml`` is compiled from the default config;
:func:`tao_kfp.package.adapt_package` rewrites it for other environments, and a test
proves both routes give the same package.

Task display names are the task keys (``train``, not "4. Train"): KFP backends before 2.14.0
record each task in ML Metadata under its display name and look an input's producer up by task
key, so any other display name fails every downstream task there (kubeflow/pipelines 2.5.0
backend/src/v2/driver/driver.go:329 and :1828-1830; fixed in 2.14.0). The KFP UI shows the keys.

DAG (longest chain 7): validate -> prepare -> train -> prune -> retrain -> export-int8 ->
convert; download beside prepare; evaluate beside prune; re-evaluate, inference and the two
exports side by side after retraining; convert also takes export-fp32's model. The same DAG
serves both TAO routes; ``tao.version`` picks what steps 10-12 run (see tao_kfp.steps.export).
"""

from typing import Callable, Dict, Optional

from kfp import dsl, kubernetes

from tao_kfp import components as c
from tao_kfp.environment import EnvironmentConfig, step_image, tao_env_variables
from tao_kfp.names import ENGINE_TASK, MODEL_KEY_ENV, NGC_API_KEY_ENV, SHM_MOUNT_PATH

PIPELINE_NAME = "tao-classification"
WORKSPACE_VOLUME_SHM = "dshm"

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


def _common(task: dsl.PipelineTask, env: EnvironmentConfig, image: str, seconds: int) -> None:
    """Plumbing every step gets: image, workspace, pull secrets, deadline, user, no caching."""
    task.set_container_image(image)
    kubernetes.set_image_pull_policy(task, env.images.pull_policy)
    if env.secrets.image_pull_secrets:
        kubernetes.set_image_pull_secrets(task, list(env.secrets.image_pull_secrets))
    kubernetes.mount_pvc(task, env.workspace.claim_name, env.workspace.mount_path)
    kubernetes.set_timeout(task, seconds)
    kubernetes.set_security_context(
        task, run_as_user=env.workspace.run_as_user, run_as_group=env.workspace.run_as_group
    )
    # Every step's effects live on the workspace, which KFP's cache cannot see.
    task.set_caching_options(False)


def configure_cpu_step(
    task: dsl.PipelineTask,
    env: EnvironmentConfig,
    *,
    ngc_api_key: bool = False,
    model_key: bool = False,
) -> dsl.PipelineTask:
    """Applies the CPU step plumbing (tools image, no GPU scheduling) and returns the task.

    Args:
        task: The task to configure.
        env: Environment config.
        ngc_api_key: Expose the NGC API key Secret as ``NGC_CLI_API_KEY`` (download step only).
        model_key: Expose the model key Secret as ``TAO_MODEL_KEY`` (step 1 checks that TAO's
            launcher can carry it).

    Returns:
        Task object with the CPU plumbing applied.
    """
    _common(task, env, env.images.tools, env.timeouts.cpu_step_seconds)
    if ngc_api_key:
        ref = env.secrets.ngc_api_key
        # optional: public NGC models download without a key.
        kubernetes.use_secret_as_env(task, ref.name, {ref.key: NGC_API_KEY_ENV}, optional=True)
    if model_key:
        ref = env.secrets.model_key
        kubernetes.use_secret_as_env(task, ref.name, {ref.key: MODEL_KEY_ENV}, optional=True)
    return task


def configure_gpu_step(
    task: dsl.PipelineTask, env: EnvironmentConfig, gpus=1, *, engine: bool = False
) -> dsl.PipelineTask:
    """Applies the GPU step plumbing: TAO image, accelerator, scheduling, shm, TAO commands.

    Args:
        task: The task to configure.
        env: Environment config.
        gpus: GPUs to request: 1, or the ``num_gpus`` run parameter (train/retrain, where
            TAO's ``--gpus`` gets the same value). That parameter must be a ``str``: KFP's
            driver reads a ``resourceCount`` placeholder with ``GetStringValue()``
            (kubeflow/pipelines backend/src/v2/driver/resolve.go:818-831), so a number
            would resolve to "" and the pod would get no GPU limit at all.
        engine: The TensorRT engine step, which runs in the tao-deploy image on TAO 5.x.

    Returns:
        Task object with the GPU plumbing applied.
    """
    _common(task, env, step_image(env, gpu=True, engine=engine), env.timeouts.gpu_step_seconds)
    task.set_accelerator_type(env.gpu.resource)
    task.set_accelerator_limit(gpus)
    for key, value in env.gpu.node_selector.items():
        kubernetes.add_node_selector(task, key, value)
    for toleration in env.gpu.tolerations:
        kubernetes.add_toleration(
            task,
            key=toleration.key,
            operator=toleration.operator,
            value=toleration.value,
            effect=toleration.effect,
            toleration_seconds=toleration.toleration_seconds,
        )
    # TAO's data loaders use shared memory; the 64Mi container default is too small.
    kubernetes.empty_dir_mount(
        task, WORKSPACE_VOLUME_SHM, SHM_MOUNT_PATH, medium="Memory", size_limit=env.gpu.shm_size
    )
    ref = env.secrets.model_key
    # optional: TAO 5 needs no model key; 3.x steps say so when it is missing.
    kubernetes.use_secret_as_env(task, ref.name, {ref.key: MODEL_KEY_ENV}, optional=True)
    for name, value in tao_env_variables(env).items():
        task.set_env_variable(name, value)
    return task


def make_pipeline(env: Optional[EnvironmentConfig] = None) -> Callable:
    """Returns the ``@dsl.pipeline`` function built for ``env`` (default config when None)."""
    env = env or EnvironmentConfig()

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description=(
            "NVIDIA TAO image classification: validate, prepare data, train, evaluate, prune, "
            "retrain, evaluate, infer, export (fp32, INT8) and build a TensorRT engine."
        ),
    )
    def tao_classification(
        dataset_path: str,
        dataset_format: str = "class_folders",
        pretrained_model: str = "nvidia/tao/pretrained_classification:resnet18",
        epochs: int = 80,
        retrain_epochs: int = 80,
        batch_size: int = 64,
        learning_rate: float = 0.006,
        prune_threshold: float = 0.6,
        num_gpus: str = str(env.gpu.count),
        spec_overrides: str = "",
        base_spec: str = "specs/classification_spec.cfg",
    ) -> dsl.Model:
        """TAO classification on a class-folder (or Pascal VOC 2012) dataset.

        Args:
            dataset_path: Dataset folder, relative to the workspace (or absolute inside it):
                train/, val/ and test/ with one folder per class, or a VOC2012 folder.
            dataset_format: class_folders, or voc to convert Pascal VOC 2012 first
                (seeded 70/10/20 split per class).
            pretrained_model: Empty to train from scratch, a .hdf5/.tlt file on the workspace,
                or an NGC model such as nvidia/tao/pretrained_classification:resnet18.
            epochs: Training epochs.
            retrain_epochs: Epochs to retrain the pruned model.
            batch_size: Images per GPU per batch (also the INT8 calibration batch).
            learning_rate: Peak learning rate of the spec's lr_config scheduler.
            prune_threshold: Pruning threshold in (0, 1]; higher prunes more.
            num_gpus: GPUs for training and retraining (a whole number 1-16, given as text
                because KFP resolves GPU counts from text parameters only). The other GPU
                steps use one GPU: TAO runs only train on several GPUs.
            spec_overrides: Extra spec fields as YAML/JSON, e.g.
                {"train_config": {"mixup_alpha": 0.2}}.
            base_spec: Base spec file, relative to the workspace.

        Returns:
            The retrained (pruned) model.
        """
        plan = c.validate_inputs(
            workspace=env.workspace.mount_path,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            tao_version=env.tao.version,
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
        configure_cpu_step(plan, env, model_key=True)
        run_dir = plan.outputs["run_dir"]

        data = c.prepare_dataset(
            dataset_format=dataset_format,
            source=plan.outputs["dataset_source"],
            dataset_dir=plan.outputs["dataset_dir"],
        )
        configure_cpu_step(data, env)
        dataset_dir = data.outputs["dataset_dir"]

        pretrained = c.download_pretrained(
            source=plan.outputs["pretrained_source"], cache_root=plan.outputs["pretrained_cache"]
        )
        configure_cpu_step(pretrained, env, ngc_api_key=True)

        trained = c.train(
            spec_path=plan.outputs["train_spec"],
            run_dir=run_dir,
            dataset_dir=dataset_dir,
            pretrained_model=pretrained.outputs["model_path"],
            num_gpus=num_gpus,
        )
        configure_gpu_step(trained, env, gpus=num_gpus)

        evaluated = c.evaluate(
            spec_path=plan.outputs["train_spec"],
            model_path=trained.outputs["model_path"],
            classmap=trained.outputs["classmap"],
            run_dir=run_dir,
        )
        configure_gpu_step(evaluated, env)

        pruned = c.prune(
            model_path=trained.outputs["model_path"],
            output_path=plan.outputs["pruned_model"],
            threshold=prune_threshold,
            run_dir=run_dir,
        )
        configure_gpu_step(pruned, env)

        retrained = c.retrain(
            spec_path=plan.outputs["retrain_spec"],
            run_dir=run_dir,
            dataset_dir=dataset_dir,
            pruned_model=pruned.outputs["Output"],
            num_gpus=num_gpus,
        )
        configure_gpu_step(retrained, env, gpus=num_gpus)
        final_model = retrained.outputs["model_path"]

        re_evaluated = c.re_evaluate(
            spec_path=plan.outputs["retrain_spec"],
            model_path=final_model,
            classmap=retrained.outputs["classmap"],
            run_dir=run_dir,
        )
        configure_gpu_step(re_evaluated, env)

        inferred = c.inference(
            model_path=final_model,
            spec_path=plan.outputs["retrain_spec"],
            classmap=retrained.outputs["classmap"],
            dataset_dir=dataset_dir,
            run_dir=run_dir,
        )
        configure_gpu_step(inferred, env)

        fp32 = c.export_fp32(
            model_path=final_model, spec_path=plan.outputs["retrain_spec"], run_dir=run_dir
        )
        configure_gpu_step(fp32, env)

        int8 = c.export_int8(
            model_path=final_model, spec_path=plan.outputs["retrain_spec"], run_dir=run_dir
        )
        configure_gpu_step(int8, env)

        # TAO 3.x converts step 11's INT8 .etlt with its cache; TAO 5.x builds from step 10's
        # ONNX (exported once) with gen_trt_engine, calibrating on step 11's TensorFile.
        engine = c.convert_tensorrt(
            int8_model=int8.outputs["exported_model"],
            cal_cache=int8.outputs["cal_cache"],
            fp32_model=fp32.outputs["Output"],
            cal_data_file=int8.outputs["cal_data_file"],
            spec_path=plan.outputs["retrain_spec"],
            run_dir=run_dir,
        )
        configure_gpu_step(engine, env, engine=True)
        assert engine.name == ENGINE_TASK  # package.adapt_package finds it by this name

        return retrained.outputs["model"]

    return tao_classification
