"""Stand-in for TensorRT's Python module (a test double; it builds nothing).

NVIDIA's nvidia-tao-deploy code runs up to its first TensorRT call on a machine without it.

TensorRT's PyPI package only downloads from NVIDIA's own index, which CI cannot reach. The
deploy scripts import ``tensorrt`` at load time and read a few constants (``trt.Logger.INFO``,
base classes such as ``trt.IInt8EntropyCalibrator2``), so every attribute exists. A
``trt.Logger`` is an inert sink (one is even built at class definition,
inferencer/trt_inferencer.py:26); the first *call* of anything else - for gen_trt_engine
``trt.init_libnvinfer_plugins`` at nvidia_tao_deploy 7.3.0 engine/builder.py:100 - raises
:class:`TensorRTStandInReached` naming it, which tests assert on.

With ``TAO_KFP_STAND_IN_REPORT=<file>`` set, the stand-in also writes there, as JSON, what
NVIDIA's code held at that moment: the frames of ``nvidia_tao_deploy`` on the stack (file
inside the wheel, line, function) with their local variables (an argparse namespace as a dict,
a protobuf message as its text, other objects as ``repr``). Tests assert on it.
"""

import json
import os
import sys

REPORT_ENV = "TAO_KFP_STAND_IN_REPORT"

# nvidia_tao_deploy/utils/__init__.py:12 picks the API by version; the deploy image has
# TensorRT 10, so the stand-in reports 10 to follow the same (non-legacy) code path.
__version__ = "10.0.0"


class TensorRTStandInReached(RuntimeError):
    """NVIDIA's code made its first TensorRT call: everything before it ran for real."""


class _StandInType(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _stand_in(f"{cls.__qualname__}.{name}")


class _StandIn(metaclass=_StandInType):
    def __init__(self, *args, **kwargs):
        _report(type(self).__qualname__)
        raise TensorRTStandInReached(f"{type(self).__qualname__}() called: no TensorRT here")


class Logger(metaclass=_StandInType):
    """TensorRT's log sink: holds a severity, does nothing else."""

    def __init__(self, min_severity=None):
        self.min_severity = min_severity


def _stand_in(qualname):
    return _StandInType(qualname.rsplit(".", 1)[-1], (_StandIn,), {"__qualname__": qualname})


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _stand_in(f"tensorrt.{name}")


def _plain(value, depth=0):
    """A JSON-ready copy of ``value``: containers and namespaces recursively, else text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth > 4:
        return repr(value)
    if type(value).__name__ == "Namespace":  # argparse
        return {key: _plain(item, depth + 1) for key, item in vars(value).items()}
    if isinstance(value, dict):
        return {str(key): _plain(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item, depth + 1) for item in value]
    if hasattr(value, "DESCRIPTOR") and hasattr(value, "ListFields"):  # a protobuf message
        from google.protobuf import text_format

        return text_format.MessageToString(value)
    return repr(value)


def _report(call):
    """Writes NVIDIA's frames and their locals to $TAO_KFP_STAND_IN_REPORT (when set)."""
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    frames = []
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if "nvidia_tao_deploy" in filename:
            frames.append(
                {
                    "file": filename[filename.rindex("nvidia_tao_deploy") :],
                    "line": frame.f_lineno,
                    "function": frame.f_code.co_name,
                    "locals": {key: _plain(item) for key, item in frame.f_locals.items()},
                }
            )
        frame = frame.f_back
    with open(path, "w", encoding="utf-8") as report:
        json.dump({"call": call, "frames": frames}, report, indent=1)
