"""Step implementations: plain functions the pipeline's components call.

Each module holds one step kind. Functions take paths and kfp artifact objects (anything with
``path``/``metadata``/``log_metric``) and return small dataclasses, so they can be unit-tested
without a cluster. TAO is always invoked through :func:`tao_kfp.tao.run_tao`.
"""
