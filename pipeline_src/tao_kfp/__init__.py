"""NVIDIA TAO image classification on Kubeflow Pipelines v2."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tao-kfp")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
