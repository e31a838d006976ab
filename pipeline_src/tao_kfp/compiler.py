"""``tao-kfp compile``: compile each route's pipeline into files/pipelines, or check it is in sync.

Each route (tao_kfp.routes) ships one compiled package, ``files/<route.package>``, which the
chart uploads when ``tao.version`` selects that route. It is compiled from the default
:class:`~tao_kfp.environment.EnvironmentConfig` with the route's first ``tao.version``.
"""

from __future__ import annotations

import difflib
import sys
import tempfile
from pathlib import Path
from typing import Optional

from tao_kfp.environment import EnvironmentConfig
from tao_kfp.resources import SOURCE_FILES
from tao_kfp.routes import ROUTES, Route, route_for

# The package of the default install (the default config's tao.version: current TAO's route).
DEFAULT_ROUTE = route_for(EnvironmentConfig().tao.version)
DEFAULT_OUTPUT = SOURCE_FILES / DEFAULT_ROUTE.package
FIX_COMMAND = "tao-kfp compile   (or: make compile), then commit files/pipelines/"


def route_environment(route: Route) -> EnvironmentConfig:
    """The default config with the route's first ``tao.version``: what its package is built for."""
    return EnvironmentConfig.model_validate({"tao": {"version": next(iter(route.versions))}})


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
    """Registers ``compile [--check] [--out PATH --tao-version V]``."""
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 when a committed package differs from a fresh compile",
    )
    parser.add_argument(
        "--out",
        help="output file of one route's package (default: every route's files/pipelines/ file)",
    )
    parser.add_argument(
        "--tao-version",
        default=None,
        help="with --out: the tao.version whose route to compile (default: the default "
        "install's, tao.version " + EnvironmentConfig().tao.version + ")",
    )


def _check(route: Route, out: Path) -> bool:
    fresh = compile_to_text(route_environment(route))
    current = out.read_text() if out.is_file() else ""
    if fresh == current:
        print(f"{out} is in sync with pipeline_src/")
        return True
    diff = difflib.unified_diff(
        current.splitlines(keepends=True),
        fresh.splitlines(keepends=True),
        fromfile=f"{out} (committed)",
        tofile="fresh compile",
        n=1,
    )
    sys.stdout.writelines(list(diff)[:60])
    print(f"\n{out} is out of date with pipeline_src/. Fix: {FIX_COMMAND}", file=sys.stderr)
    return False


def run(args) -> int:
    """Compiles, or checks that the committed packages are in sync."""
    targets: list[tuple[Route, Path]]
    if args.out:
        route: Optional[Route] = route_for(args.tao_version) if args.tao_version else DEFAULT_ROUTE
        targets = [(route, Path(args.out))]
    else:
        targets = [(route, SOURCE_FILES / route.package) for route in ROUTES]
    if args.check:
        results = [_check(route, out) for route, out in targets]  # every route reported
        return 0 if all(results) else 1
    for route, out in targets:
        compile_pipeline(out, route_environment(route))
        print(f"wrote {out} ({route.title})")
    return 0
