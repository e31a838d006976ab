"""``tao-kfp render``: adapt the precompiled pipeline to an environment config and write it.

What the upload Job uploads, for review or for uploading by hand (tao_kfp.package does the work).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tao_kfp.environment import ConfigError, EnvironmentConfig, load_config
from tao_kfp.kfp_backends import KfpBackend, adapt_for_backend
from tao_kfp.package import PackageError, adapt_package, dump_package, read_package


def add_arguments(parser) -> None:
    """Registers ``render --config ENV.yaml [--package PATH] [--out PATH|-]``."""
    parser.add_argument("--config", required=True, help="environment config YAML (camelCase keys)")
    parser.add_argument(
        "--package",
        help="compiled pipeline to adapt (default: the shipped package of tao.version's route)",
    )
    parser.add_argument("--out", default="-", help="where to write the result; - for stdout")
    parser.add_argument(
        "--kfp-version",
        help="KFP backend version that will run it (e.g. 2.15.0): drop what it cannot take "
        "and print what is lost (default: a backend that takes everything)",
    )


def for_package_route(env: EnvironmentConfig, docs) -> EnvironmentConfig:
    """``env`` for the route of the package, when ``env`` does not set tao.version itself.

    A config without tao.version (the KFP-backends harness's, hack/kfp-backends/env.yaml)
    adapts every route's package; one that sets it adapts only its route's (adapt_package
    refuses another's).
    """
    from tao_kfp.environment import Tao
    from tao_kfp.routes import route_of_package

    route = route_of_package(docs[0])
    if route is None or "version" in env.tao.model_fields_set or env.tao.version in route.versions:
        return env
    return env.model_copy(update={"tao": Tao(version=next(iter(route.versions)))})


def run(args) -> int:
    """Adapts the compiled package to the config and writes it (what the upload Job uploads)."""
    from tao_kfp.resources import shipped_file
    from tao_kfp.routes import route_for

    try:
        env = load_config(args.config)
        package = args.package or shipped_file(route_for(env.tao.version).package)
        _, docs = read_package(package)
        docs = adapt_package(docs, for_package_route(env, docs))
    except (ConfigError, PackageError) as error:
        print(f"tao-kfp render: {error}", file=sys.stderr)
        return 2
    if args.kfp_version:
        try:
            docs, lost = adapt_for_backend(docs, KfpBackend.parse(args.kfp_version))
        except ValueError as error:
            print(f"tao-kfp render: {error}", file=sys.stderr)
            return 2
        for line in lost or [f"KFP {args.kfp_version}: nothing lost"]:
            print(line, file=sys.stderr)
    text = dump_package(docs)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        try:
            Path(args.out).write_text(text)
        except OSError as error:
            print(f"tao-kfp render: --out {args.out}: {error.strerror}", file=sys.stderr)
            return 2
        print(f"wrote {args.out} (adapted from {package})", file=sys.stderr)
    return 0
