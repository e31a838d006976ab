"""Stand-in for ``pycuda.driver`` (a test double).

nvidia_tao_deploy 7.3.0 cv/common/entrypoint/entrypoint_hydra.py:100-103 (and
entrypoint_proto.py:160-163) call ``cuda.init()`` and check the requested GPU ids against
``cuda.Device.count()``. The stand-in answers as a node with one GPU would, so the entrypoint's
own GPU-id check still runs. Anything that would touch device memory raises.
"""

from tensorrt import TensorRTStandInReached, _stand_in  # noqa: F401 - same "first call" rule


def init(flags=0):
    """CUDA initialises nothing here."""


class Device:
    """One GPU, as on a single-GPU node."""

    @staticmethod
    def count():
        """Number of devices."""
        return 1


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _stand_in(f"pycuda.driver.{name}")
