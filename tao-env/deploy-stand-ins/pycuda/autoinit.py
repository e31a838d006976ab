"""Stand-in for ``pycuda.autoinit`` (imported for its side effect of creating a CUDA context)."""
