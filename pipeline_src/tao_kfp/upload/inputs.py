"""Every check ``tao-kfp upload`` makes before its first request, and the inputs they yield.

Bad flags, files and parameters fail here, naming the flag (and the chart value) and the fix,
before anything on the server changes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

from tao_kfp.upload.errors import UploadError

# Where the kubelet projects the ServiceAccount token for KFP (same env var and default as kfp).
TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"

DEFAULT_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"

TOKEN_AUDIENCE = "pipelines.kubeflow.org"


@dataclass(frozen=True)
class Inputs:
    """What the flags say, checked: the command runs on these, never on the raw flags."""

    host: str
    namespace: Optional[str]
    token_path: Optional[str]
    ca_bundle: Optional[str]
    deadline_seconds: float
    pipeline_name: str
    version_prefix: str
    description: Optional[str]
    # The package text to upload before any backend adaptation, and its documents.
    package_text: str
    package_docs: List[dict]
    experiment: Optional[str]
    run_first: bool
    run_params: Dict[str, Any]
    cron: Optional[str]
    stated_backend: Any
    upload_job: Optional[str]

    @property
    def experiment_name(self) -> str:
        """Runs and the schedule go into --experiment, by default named after the pipeline."""
        return self.experiment or self.pipeline_name


def check_inputs(args: argparse.Namespace) -> Inputs:
    """Checks everything local before touching the network. Fails with ``UploadError``."""
    from tao_kfp.package import dump_package

    check_host(args.host)
    if not args.deadline_seconds > 0:  # also refuses nan
        raise UploadError(f"--deadline-seconds must be > 0, got {args.deadline_seconds:g}")
    if args.ca_bundle and not Path(args.ca_bundle).is_file():
        raise UploadError(f"--ca-bundle {args.ca_bundle}: no such file")
    prefix = (args.version_prefix or "").strip()
    if not prefix:
        raise UploadError("--version-prefix is empty; pass the chart's appVersion, e.g. 0.1.0")
    # Column sizes of the real server (model/pipeline.go:44 varchar(128),
    # model/pipeline_version.go:37 varchar(127)); a longer name fails the insert with a 500.
    if len(version_name_for(prefix, "")) > 127:
        raise UploadError(f"--version-prefix is {len(prefix)} characters; KFP allows 116")
    if not args.pipeline_name.strip() or len(args.pipeline_name) > 128:
        raise UploadError(
            f"--pipeline-name must have 1 to 128 characters, got {len(args.pipeline_name)}"
        )
    text, docs = _read_package(Path(args.package))
    if args.config:
        env = _load_environment(Path(args.config))
        docs = _adapt(docs, env, Path(args.package), args.config)
        text = dump_package(docs)
    token_path = resolve_token_path(args.token_path)
    run_params = _parse_run_params(args.run_params)
    cron = normalise_cron(args.recurring_cron) if args.recurring_cron else None
    uploads = not (args.verify_only or args.disable_recurring_run)
    if uploads and (run_params or args.run_first or cron):
        check_run_params(run_params, docs[0], runs_start=bool(args.run_first or cron))
    stated = parse_backend(args.kfp_version, "--kfp-version") if args.kfp_version else None
    return Inputs(
        host=args.host,
        namespace=args.namespace or None,
        token_path=token_path,
        ca_bundle=args.ca_bundle,
        deadline_seconds=args.deadline_seconds,
        pipeline_name=args.pipeline_name,
        version_prefix=prefix,
        description=args.description,
        package_text=text,
        package_docs=docs,
        experiment=args.experiment,
        run_first=bool(args.run_first),
        run_params=run_params,
        cron=cron,
        stated_backend=stated,
        upload_job=args.upload_job,
    )


def version_name_for(prefix: str, package_text: str) -> str:
    """Returns the version name: KFP wants it unique per pipeline, the hash makes it so."""
    digest = hashlib.sha256(package_text.encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:10]}"


def check_host(host: str) -> None:
    """Refuses a --host that urllib3 could not connect to, with one line saying why."""
    example = "for example http://ml-pipeline.kubeflow:8888"
    if "://" not in host:
        raise UploadError(f"--host {host!r} needs a scheme, {example}")
    try:
        parts = urlsplit(host)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError as error:  # also an unclosed IPv6 bracket
        raise UploadError(f"--host {host!r} is not a valid URL ({error}), {example}") from error
    if parts.scheme not in ("http", "https"):
        raise UploadError(f"--host {host!r}: the scheme must be http or https, {example}")
    if not parts.hostname:
        raise UploadError(f"--host {host!r} has no host name, {example}")
    if port == 0:
        raise UploadError(f"--host {host!r}: port 0 is not a port, {example}")
    if any(char.isspace() for char in host):
        raise UploadError(f"--host {host!r} contains white space, {example}")


def check_multi_user_settings(namespace: Optional[str], token_path: Optional[str]) -> None:
    """A multi-user KFP needs a profile namespace and a ServiceAccount token."""
    if not namespace:
        raise UploadError(
            "The KFP API runs in multi-user mode: pass --namespace with the profile namespace "
            "the pipeline belongs to."
        )
    if not token_path:
        raise UploadError(
            "The KFP API runs in multi-user mode and needs a ServiceAccount token: mount a "
            f"projected token with audience {TOKEN_AUDIENCE} and pass --token-path (default "
            f"${TOKEN_PATH_ENV}, else {DEFAULT_TOKEN_PATH})."
        )


def _read_package(package: Path) -> tuple:
    from tao_kfp.package import PackageError, read_package

    try:
        return read_package(package)
    except PackageError as error:
        raise UploadError(str(error)) from error


def _load_environment(config: Path) -> Any:
    from tao_kfp.environment import ConfigError, load_config

    try:
        return load_config(config)
    except ConfigError as error:
        raise UploadError(" ".join(str(error).split())) from error


def _adapt(docs: List[dict], env: Any, package: Path, config: str) -> List[dict]:
    from tao_kfp.package import adapt_package

    try:
        return adapt_package(docs, env)
    except (ValueError, KeyError, TypeError, AttributeError) as error:  # not our pipeline's shape
        raise UploadError(
            f"Could not adapt --package {package} to --config {config} ({type(error).__name__}: "
            f"{error}): is it the package `tao-kfp compile` writes for this chart?"
        ) from error


def parse_backend(text: str, source: str) -> Any:
    """The ``KfpBackend`` ``text`` names; fails, naming ``source``, below the floor."""
    from tao_kfp.package import KfpBackend

    try:
        backend = KfpBackend.parse(text)
        backend.check_supported()
    except ValueError as error:
        raise UploadError(f"{source}: {error}") from error
    return backend


def resolve_token_path(explicit: Optional[str]) -> Optional[str]:
    """Returns the token file to use, or None for no auth (standalone KFP)."""
    if explicit:
        path, source = explicit, "--token-path"
    elif os.environ.get(TOKEN_PATH_ENV):
        path, source = os.environ[TOKEN_PATH_ENV], f"${TOKEN_PATH_ENV}"
    elif Path(DEFAULT_TOKEN_PATH).is_file():
        path, source = DEFAULT_TOKEN_PATH, "the default token path"
    else:
        return None
    try:
        has_token = bool(Path(path).read_text(encoding="utf-8").strip())
    except OSError as error:
        raise UploadError(
            f"{source} names {path}, which cannot be read ({error.strerror}). Mount a projected "
            f"ServiceAccount token with audience {TOKEN_AUDIENCE} there (multi-user Kubeflow), "
            "or unset it for a standalone KFP without auth."
        ) from error
    if not has_token:
        raise UploadError(f"{source} names {path}, which is empty")
    return path


def _parse_run_params(text: Optional[str]) -> Dict[str, Any]:
    if not text:
        return {}
    try:
        params = json.loads(text)
    except ValueError as error:
        raise UploadError(f"--run-params is not valid JSON ({error}): {text}") from error
    if not isinstance(params, dict):
        raise UploadError(f"--run-params must be a JSON object such as '{{\"a\": 1}}', got {text}")
    return params


def normalise_cron(cron: str) -> str:
    """Returns a 6-field cron expression (KFP's schedules have a leading seconds field)."""
    fields = cron.split()
    if len(fields) == 5:
        fields.insert(0, "0")
    if len(fields) != 6:
        raise UploadError(
            f"--recurring-cron {cron!r} has {len(fields)} fields; give 5 (minute hour day month "
            "weekday, e.g. '0 0 * * *') or KFP's 6 (seconds first, e.g. '0 0 0 * * *')."
        )
    return " ".join(fields)


# Python types a run parameter may have, per KFP parameterType (pipeline_spec.proto,
# ParameterType). bool is an int in Python, so it is ruled out for numbers explicitly.
_PARAMETER_TYPES = {
    "STRING": ((str,), "a string"),
    "NUMBER_INTEGER": ((int,), "an integer"),
    "NUMBER_DOUBLE": ((int, float), "a number"),
    "BOOLEAN": ((bool,), "true or false"),
    "LIST": ((list,), "a list"),
    "STRUCT": ((dict,), "a mapping"),
}


def check_run_params(params: Dict[str, Any], pipeline_spec: dict, *, runs_start: bool) -> None:
    """Checks run parameters against the pipeline's declared inputs: names, types, required.

    The chart checks the same at `helm install` (templates/validate-upload.yaml). Without it
    the API server takes the upload and then rejects the run, after the version exists.
    """
    declared = pipeline_spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    problems = []
    for name, value in params.items():
        spec = declared.get(name)
        if spec is None:
            problems.append(
                f"'{name}' is not a parameter of the pipeline (it has: "
                f"{', '.join(sorted(declared))})"
            )
            continue
        kind = spec.get("parameterType", "STRING")
        if kind not in _PARAMETER_TYPES:
            continue
        types, words = _PARAMETER_TYPES[kind]
        integral = isinstance(value, float) and value.is_integer()  # 5.0 from JSON/YAML
        fits = isinstance(value, types) or (kind == "NUMBER_INTEGER" and integral)
        if not fits or (isinstance(value, bool) and kind != "BOOLEAN"):
            problems.append(f"'{name}' must be {words}, got {json.dumps(value)}")
    if runs_start:
        problems += [
            f"'{name}' is required (the pipeline has no default for it)"
            for name, spec in sorted(declared.items())
            if not spec.get("isOptional") and "defaultValue" not in spec and name not in params
        ]
    if problems:
        raise UploadError(
            "--run-params (upload.runParams) does not fit the pipeline: " + "; ".join(problems)
        )
