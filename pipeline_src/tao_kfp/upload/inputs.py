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

from tao_kfp import value_rules
from tao_kfp.upload.errors import UploadError

# Where the kubelet projects the ServiceAccount token for KFP (same env var and default as kfp).
TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"

DEFAULT_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"

TOKEN_AUDIENCE = "pipelines.kubeflow.org"

# The longest --deadline-seconds taken: a day. setitimer refuses inf and values past time_t
# (OverflowError); the chart allows up to 3600 (upload.deadlineSeconds).
MAX_DEADLINE_SECONDS = 86400.0


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
    schedule_grace_seconds: float
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
    check_deadline_seconds(args.deadline_seconds)
    if args.ca_bundle:
        check_input_file(args.ca_bundle, "--ca-bundle")
    prefix = (args.version_prefix or "").strip()
    if not prefix:
        raise UploadError("--version-prefix is empty; pass the chart's appVersion, e.g. 0.1.0")
    check_name(prefix, "--version-prefix")
    # Column sizes of the real server (model/pipeline.go:44 varchar(128),
    # model/pipeline_version.go:37 varchar(127)); a longer name fails the insert with a 500.
    if len(version_name_for(prefix, "")) > 127:
        raise UploadError(f"--version-prefix is {len(prefix)} characters; KFP allows 116")
    check_name(args.pipeline_name, "--pipeline-name", max_length=128)
    if args.experiment is not None:
        check_name(args.experiment, "--experiment", max_length=128)
    text, docs = _read_package(check_input_file(args.package, "--package"))
    if args.config:
        env = _load_environment(check_input_file(args.config, "--config"))
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
        schedule_grace_seconds=check_schedule_grace_seconds(args.schedule_grace_seconds),
        stated_backend=stated,
        upload_job=args.upload_job,
    )


def check_schedule_grace_seconds(seconds: float) -> float:
    """A finite number of seconds, 0 or more (0: delete a replaced schedule without waiting)."""
    if not 0 <= seconds <= MAX_DEADLINE_SECONDS:  # False for nan and inf too
        raise UploadError(
            f"--schedule-grace-seconds must be a number of seconds from 0 to "
            f"{MAX_DEADLINE_SECONDS:g}, got {seconds:g}"
        )
    return seconds


def check_deadline_seconds(seconds: float) -> None:
    """A finite number of seconds in (0, MAX_DEADLINE_SECONDS]; nan and inf are refused."""
    if not 0 < seconds <= MAX_DEADLINE_SECONDS:  # False for nan and inf too
        raise UploadError(
            f"--deadline-seconds must be a number of seconds above 0 and at most "
            f"{MAX_DEADLINE_SECONDS:g} (a day), got {seconds:g}"
        )


def check_name(value: str, flag: str, max_length: Optional[int] = None) -> None:
    """A name KFP shows on one line: not blank, no line break or control character."""
    if not value.strip():
        raise UploadError(f"{flag} is blank; give a name, e.g. tao-classification")
    bad = sorted({repr(char) for char in value if ord(char) < 32 or ord(char) == 127})
    if bad:
        raise UploadError(
            f"{flag} {value!r} contains {', '.join(bad)}: names are one line without control "
            "characters"
        )
    if max_length is not None and len(value) > max_length:
        # Column sizes of the real server (model/pipeline.go:44 varchar(128)).
        raise UploadError(f"{flag} has {len(value)} characters; KFP allows {max_length}")


def check_input_file(path: str, flag: str) -> Path:
    """``path`` as a Path when it is a readable regular file; one line naming ``flag`` if not."""
    problem = input_file_problem(Path(path))
    if problem:
        raise UploadError(f"{flag} {path}: {problem}")
    return Path(path)


def input_file_problem(file: Path) -> Optional[str]:
    """Why ``file`` cannot be read as an input file, or None.

    A directory, a FIFO (reading it blocks) or a device such as /dev/zero (reading it never
    ends) is refused before any read.
    """
    import stat

    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as error:
        return str(error.strerror or error)
    if stat.S_ISDIR(mode):
        return "is a directory; pass a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a FIFO, socket or device)"
    if not os.access(file, os.R_OK):
        return f"permission denied for UID {os.geteuid()}; make it readable"
    return None


def version_name_for(prefix: str, package_text: str) -> str:
    """Returns the version name: KFP wants it unique per pipeline, the hash makes it so."""
    digest = hashlib.sha256(package_text.encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:10]}"


def check_host(host: str) -> None:
    """Refuses a --host that urllib3 could not connect to, with one line saying why."""
    # First, before any message repeats the host (the chart refuses the same kfp.host).
    credentials = value_rules.kfp_host_problems(host, "--host (kfp.host)")
    if credentials:
        raise UploadError(credentials[0])
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
    from tao_kfp.kfp_backends import KfpBackend

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
    problem = input_file_problem(Path(path))
    if problem:
        raise UploadError(
            f"{source} names {path}: {problem}. Mount a projected ServiceAccount token with "
            f"audience {TOKEN_AUDIENCE} there (multi-user Kubeflow), or unset it for a "
            "standalone KFP without auth."
        )
    try:
        has_token = bool(Path(path).read_text(encoding="utf-8").strip())
    except UnicodeDecodeError as error:
        raise UploadError(
            f"{source} names {path}, which is not a text token (byte {error.start} is not "
            "UTF-8): mount the projected ServiceAccount token there."
        ) from None
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
    """The 6-field form KFP stores (seconds first), refused as KFP's robfig cron parser would.

    The chart applies the same rule at install (tao_kfp.value_rules.cron_problems); a date that
    never comes (``0 0 31 2 *``) is accepted with a warning, as KFP accepts it.
    """
    try:
        normalised = value_rules.normalise_cron(cron, "--recurring-cron (upload.recurringCron)")
    except ValueError as error:
        raise UploadError(str(error)) from error
    if value_rules.cron_never_fires(cron):
        print(
            f"Warning: --recurring-cron {cron!r} names a day none of its months has: KFP accepts "
            "it, but the recurring run never starts."
        )
    return normalised


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

    The chart checks the same at `helm install` (templates/_validate.tpl,
    tao-kfp.validate.runParams). Without it the API server takes the upload and then rejects the
    run, after the version exists.
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
