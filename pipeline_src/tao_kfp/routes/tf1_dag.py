"""The TF1 route's DAG (declared in tao_kfp.routes.tf1): its KFP pipeline for an environment.

No ``from __future__ import annotations``: kfp reads the pipeline signature's annotations.
"""

from typing import Callable

from kfp import dsl

from tao_kfp import components as c
from tao_kfp.pipeline import configure_cpu_step, configure_gpu_step, data_steps
from tao_kfp.routes.tf1 import ENGINE_TASK, PIPELINE_NAME


def pipeline(env) -> Callable:
    """The route's ``@dsl.pipeline`` function for an EnvironmentConfig (see tao_kfp.pipeline)."""

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

        data, pretrained = data_steps(plan, env, dataset_format)
        dataset_dir = data.outputs["dataset_dir"]

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
        configure_gpu_step(engine, env, deploy=True)
        assert engine.name == ENGINE_TASK  # ROUTE.deploy_tasks names it

        return retrained.outputs["model"]

    return tao_classification
