"""``tao-kfp upload``: put the pipeline into a Kubeflow Pipelines API as a named version.

Modules, in the order a run visits them:
- ``command``: the flags, and one function per subcommand (upload, ``--verify-only``,
  ``--disable-recurring-run``);
- ``inputs``: every check made before the first request;
- ``api``: ``KfpApi``, the kfp Client with retries, messages and lookups, within one deadline;
- ``transport``: the kfp/urllib3 quirks ``KfpApi``'s client needs (timeouts, DNS, hard stop);
- ``reconcile``: pipelines, versions, experiments, runs and the recurring run;
- ``errors``: the failures it reports.
"""

from tao_kfp.upload.api import RetryPolicy
from tao_kfp.upload.command import add_arguments, main, run, run_with_policy
from tao_kfp.upload.errors import ApiRejected, UploadError
from tao_kfp.upload.inputs import check_run_params, version_name_for

__all__ = [
    "ApiRejected",
    "RetryPolicy",
    "UploadError",
    "add_arguments",
    "check_run_params",
    "main",
    "run",
    "run_with_policy",
    "version_name_for",
]
