"""``tao-kfp upload`` with one fix taken out again, as the code was before it.

The suite runs its own tests with this uploader (test_deliberate_failures.py) and requires them
to fail against KFP's own server: each fix is then proven needed by the real server, not by a
double. Usage: ``python pre_fix_upload.py FIX UPLOAD-FLAGS...`` with FIX one of ``PRE_FIX``.
"""

from __future__ import annotations

import sys
from typing import Any

from tao_kfp.upload import command, inputs, reconcile


def _delete_with_default_options(kfp, experiment, name: str, keep: Any, *_backend_and_grace):
    """Before issue 15: the replaced recurring runs were deleted with the API's default options,
    and Kubernetes' garbage collector then deleted the Workflows they owned."""
    for recurring in kfp.find_recurring_runs(experiment.experiment_id, name):
        rid = recurring.recurring_run_id
        if keep is None or rid != keep.recurring_run_id:
            kfp.call(f"delete recurring run {rid}", kfp.client.delete_recurring_run, rid)


_remove_recurring_runs = reconcile.remove_recurring_runs


def _delete_right_after_the_disable(kfp, experiment, name: str, keep: Any, backend: Any = None,
                                    *_grace):  # fmt: skip
    """Before the grace: disable, list the runs at once, delete if none was listed as going
    (the same steps with no wait), so a run the API did not list yet was deleted with it."""
    _remove_recurring_runs(kfp, experiment, name, keep, backend, 0.0)


def _cron_fields_only(cron: str) -> str:
    """Before the range check: only the 5-field form was turned into KFP's 6-field one."""
    return cron if len(cron.split()) == 6 else "0 " + cron


def _no_run_param_check(*_args: Any, **_kwargs: Any) -> None:
    """Before the type check: run parameters went to the server as given."""


PRE_FIX = {
    "schedule-delete": (reconcile, "remove_recurring_runs", _delete_with_default_options),
    "schedule-grace": (reconcile, "remove_recurring_runs", _delete_right_after_the_disable),
    "cron-ranges": (inputs, "normalise_cron", _cron_fields_only),
    "run-param-types": (inputs, "check_run_params", _no_run_param_check),
}

if __name__ == "__main__":
    module, attribute, replacement = PRE_FIX[sys.argv[1]]
    setattr(module, attribute, replacement)
    sys.exit(command.main(sys.argv[2:]))
