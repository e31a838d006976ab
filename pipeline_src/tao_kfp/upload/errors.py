"""The failures ``tao-kfp upload`` reports: one line that says what went wrong and what to check."""

from __future__ import annotations

REACHABILITY_CHECKS = (
    "Check that Kubeflow Pipelines is installed and its API pod is running "
    "(kubectl get pods -A -l app=ml-pipeline), that --host is the API service "
    "(for example http://ml-pipeline.kubeflow:8888), and that no NetworkPolicy or Istio "
    "AuthorizationPolicy/PeerAuthentication blocks this pod from reaching it."
)


class UploadError(Exception):
    """A failure whose message says what went wrong and what to check."""


class ApiRejected(UploadError):
    """The KFP API answered with a 4xx status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status
