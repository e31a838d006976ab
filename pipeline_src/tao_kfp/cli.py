"""The ``tao-kfp`` command line: one subcommand per module, each owning its flags.

Every subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from tao_kfp import __version__

DESCRIPTION = (
    "NVIDIA TAO image classification as a Kubeflow Pipelines v2 pipeline: run it on this "
    "machine's CPU (run-local), compile and upload it, prepare datasets and TAO specs."
)
EPILOG = "Each command has its own --help, e.g. tao-kfp run-local --help."

# subcommand -> (module, one-line help). Every module is imported to register its flags, so
# each keeps heavy imports (torch, the kfp compiler) inside its functions.
SUBCOMMANDS = {
    "compile": ("tao_kfp.compiler", "compile the pipeline to files/pipelines (or check sync)"),
    "render": ("tao_kfp.render", "adapt the precompiled pipeline to an environment config"),
    "spec": ("tao_kfp.spec", "render or validate a TAO experiment spec"),
    "upload": ("tao_kfp.upload", "upload the pipeline to a KFP API as a new pipeline version"),
    "run-local": ("tao_kfp.local_run", "run the whole pipeline locally on the CPU backend"),
    "prepare-data": ("tao_kfp.dataset", "write a class-folder dataset (digits, or VOC conversion)"),
    "workspace": ("tao_kfp.workspace", "lay out and check the shared workspace volume"),
    "check": ("tao_kfp.checks", "install checks used by helm test (secrets, GPU nodes)"),
    "lint-values": ("tao_kfp.lint_values", "check values files before helm install (dup keys too)"),
}


def build_parser() -> argparse.ArgumentParser:
    """Builds the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="tao-kfp", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``tao-kfp``."""
    args = build_parser().parse_args(argv)
    return importlib.import_module(args._module).run(args)


if __name__ == "__main__":
    sys.exit(main())
