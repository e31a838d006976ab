"""Names the pipeline, the package rewriter and the step code must agree on, defined once.

No imports: the step code in the TAO images imports this too.
"""

# Environment variables holding credentials, set from Kubernetes Secrets on the steps that
# need them (values are redacted from every line tao_kfp.tao prints).
NGC_API_KEY_ENV = "NGC_CLI_API_KEY"
MODEL_KEY_ENV = "TAO_MODEL_KEY"
SECRET_ENV_NAMES = (NGC_API_KEY_ENV, MODEL_KEY_ENV)

# Environment variables of every GPU step naming TAO's commands and major version.
TAO_ENTRYPOINT_ENV = "TAO_ENTRYPOINT"
TAO_CONVERTER_ENV = "TAO_CONVERTER"
TAO_DEPLOY_ENTRYPOINT_ENV = "TAO_DEPLOY_ENTRYPOINT"
TAO_VERSION_ENV = "TAO_VERSION"

# TAO's data loaders use shared memory: GPU steps mount a memory emptyDir here.
SHM_MOUNT_PATH = "/dev/shm"

# Task and parameter names of the compiled package that tao_kfp.package rewrites.
# Every route's first task and run-form GPU count (tao_kfp.routes).
VALIDATE_TASK = "validate-inputs"
NUM_GPUS_PARAMETER = "num_gpus"
