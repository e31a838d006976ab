"""The plumbing every route's KFP v2 pipeline shares, and the entry point that builds one.

``make_pipeline(env)`` builds the ``@dsl.pipeline`` function of the route ``env.tao.version``
selects (tao_kfp.routes): the run form holds only what a data scientist changes, and every
cluster detail (images, workspace claim, Secrets, GPU scheduling, timeouts, security context)
is applied from the :class:`~tao_kfp.environment.EnvironmentConfig` by one helper per step kind
below. Each route's package in ``files/pipelines`` is compiled from the default config of its
first ``tao.version``; :func:`tao_kfp.package.adapt_package` rewrites it for other environments,
and a test proves both paths give the same package.

Task display names are the task keys (``train``, not "4. Train"): KFP backends before 2.14.0
record each task in ML Metadata under its display name and look an input's producer up by task
key, so any other display name fails every downstream task there (kubeflow/pipelines 2.5.0
backend/src/v2/driver/driver.go:329 and :1828-1830; fixed in 2.14.0). The KFP UI shows the keys.
"""

from typing import Callable, Optional, Tuple

from kfp import dsl, kubernetes

from tao_kfp.environment import EnvironmentConfig, step_image, tao_env_variables
from tao_kfp.names import MODEL_KEY_ENV, NGC_API_KEY_ENV, SHM_MOUNT_PATH
from tao_kfp.routes import route_for

WORKSPACE_VOLUME_SHM = "dshm"


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
    task: dsl.PipelineTask, env: EnvironmentConfig, gpus=1, *, deploy: bool = False
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
        deploy: One of the route's deploy tasks, which run in the tao-deploy image where the
            route's commands say so (routes.Commands.deploy_image).

    Returns:
        Task object with the GPU plumbing applied.
    """
    _common(task, env, step_image(env, gpu=True, deploy=deploy), env.timeouts.gpu_step_seconds)
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


def data_steps(
    plan: dsl.PipelineTask, env: EnvironmentConfig, dataset_format
) -> Tuple[dsl.PipelineTask, dsl.PipelineTask]:
    """Steps 2 and 3 of every route, on CPU after step 1: prepare the dataset, fetch the model.

    ``plan`` is step 1, whose outputs name the dataset source and folder, the pretrained
    model's source and the shared cache.
    """
    from tao_kfp import components

    data = components.prepare_dataset(
        dataset_format=dataset_format,
        source=plan.outputs["dataset_source"],
        dataset_dir=plan.outputs["dataset_dir"],
    )
    configure_cpu_step(data, env)
    pretrained = components.download_pretrained(
        source=plan.outputs["pretrained_source"], cache_root=plan.outputs["pretrained_cache"]
    )
    configure_cpu_step(pretrained, env, ngc_api_key=True)
    return data, pretrained


def make_pipeline(env: Optional[EnvironmentConfig] = None) -> Callable:
    """The ``@dsl.pipeline`` function of ``env``'s route (tao.version), built for ``env``."""
    env = env or EnvironmentConfig()
    return route_for(env.tao.version).pipeline(env)
