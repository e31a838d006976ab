"""``tao-kfp compile``: compile the pipeline to files/pipelines, or check the file is in sync.

The committed ``files/pipelines/tao-classification.yaml`` is what the chart ships and uploads;
it is compiled from the default :class:`~tao_kfp.environment.EnvironmentConfig`.
"""

from __future__ import annotations

import difflib
import sys
import tempfile
from pathlib import Path

from tao_kfp.environment import EnvironmentConfig
from tao_kfp.names import PIPELINE_PACKAGE
from tao_kfp.resources import SOURCE_FILES

DEFAULT_OUTPUT = SOURCE_FILES / PIPELINE_PACKAGE
FIX_COMMAND = "tao-kfp compile   (or: make compile), then commit " + f"files/{PIPELINE_PACKAGE}"


def compile_pipeline(out: str | Path, env: EnvironmentConfig | None = None) -> Path:
    """Compiles ``make_pipeline(env)`` (default config when None) to ``out``."""
    from kfp import compiler

    from tao_kfp.pipeline import make_pipeline

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(make_pipeline(env), str(out))
    return out


def compile_to_text(env: EnvironmentConfig | None = None) -> str:
    """Returns the compiled package as text."""
    with tempfile.TemporaryDirectory() as tmp:
        return compile_pipeline(Path(tmp) / "pipeline.yaml", env).read_text()


def add_arguments(parser) -> None:
    """Registers ``compile [--check] [--out PATH]``."""
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 when the committed file differs from a fresh compile",
    )
    parser.add_argument("--out", default=str(DEFAULT_OUTPUT), help="output file")


def run(args) -> int:
    """Compiles, or checks that the committed package is in sync."""
    out = Path(args.out)
    if not args.check:
        compile_pipeline(out)
        print(f"wrote {out}")
        return 0
    fresh = compile_to_text()
    current = out.read_text() if out.is_file() else ""
    if fresh == current:
        print(f"{out} is in sync with pipeline_src/")
        return 0
    diff = difflib.unified_diff(
        current.splitlines(keepends=True),
        fresh.splitlines(keepends=True),
        fromfile=f"{out} (committed)",
        tofile="fresh compile",
        n=1,
    )
    sys.stdout.writelines(list(diff)[:60])
    print(f"\n{out} is out of date with pipeline_src/. Fix: {FIX_COMMAND}", file=sys.stderr)
    return 1
