"""Stand-in for TensorRT's Python module (a test double; it builds nothing).

NVIDIA's nvidia-tao-deploy code runs up to its first TensorRT call on a machine without it.

TensorRT's PyPI package only downloads from NVIDIA's own index, which CI cannot reach. The
deploy scripts import ``tensorrt`` at load time and read a few constants (``trt.Logger.INFO``,
base classes such as ``trt.IInt8EntropyCalibrator2``), so every attribute exists. A
``trt.Logger`` is an inert sink (one is even built at class definition,
inferencer/trt_inferencer.py:26); the first *call* of anything else - for gen_trt_engine
``trt.init_libnvinfer_plugins`` at nvidia_tao_deploy 7.3.0 engine/builder.py:100 - raises
:class:`TensorRTStandInReached` naming it, which tests assert on.
"""

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
