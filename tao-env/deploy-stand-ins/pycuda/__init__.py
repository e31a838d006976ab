"""Stand-in for PyCUDA (a test double).

The deploy entrypoint only counts GPUs before it starts
a script; see ``pycuda/driver.py``. PyCUDA needs the CUDA toolkit to build, absent here.
"""
