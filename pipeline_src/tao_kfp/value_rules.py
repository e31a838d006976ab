"""Rules on values that both the chart and tao-kfp apply, written once on the Python side.

The chart applies the same rules at `helm install` (values.schema.json uses these patterns in its
``definitions``; templates/_validate.tpl the credential, NFS, cron and cluster-role rules), and
tests/chart/test_rule_parity.py runs one case list through both. tao-kfp applies them before any
API call (the upload's input checks, the environment config) and in `tao-kfp lint-values`.
Messages name the key and the fix, and never repeat a credential.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

# Image references (distribution/reference grammar, reference/regexp.go): a lower-case path with
# an optional registry host[:port], a tag of up to 128 word characters, a sha256 digest.
IMAGE_REPOSITORY_PATTERN = (
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(:[0-9]+)?/)?[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*$"
)
IMAGE_TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
IMAGE_DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
IMAGE_REPOSITORY_MAX_LENGTH = 255


def image_reference_problems(key: str, reference: str) -> List[str]:
    """Why ``reference`` (repository[:tag][@digest]) is not an image reference ([] if it is).

    The chart checks each of repository, tag and digest with the same patterns (the schema's
    ``imageRepository``, ``imageTag`` and ``imageDigest`` definitions).
    """
    rest, _, digest = reference.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    repository, tag = (rest[:colon], rest[colon + 1 :]) if colon > slash else (rest, "")
    problems = []
    if not re.match(IMAGE_REPOSITORY_PATTERN, repository) or len(repository) > 255:
        problems.append(
            f"{key}: {repository!r} is not an image repository: [registry[:port]/]path with a "
            "lower-case path, e.g. nvcr.io/nvidia/tao/tao-toolkit (the tag goes after ':')"
        )
    if tag and not re.match(IMAGE_TAG_PATTERN, tag):
        problems.append(
            f"{key}: tag {tag!r} is not an image tag (letters, digits, _ . -; 128 at most)"
        )
    if "@" in reference and not re.match(IMAGE_DIGEST_PATTERN, digest):
        problems.append(f"{key}: digest {digest!r} is not sha256:<64 lower-case hex digits>")
    return problems


# A Secret or ConfigMap key (apimachinery IsConfigMapKey), without ".." anywhere: the chart
# mounts some of them as files (values.schema.json definitions.configMapKey).
SECRET_KEY_PATTERN = r"^\.?[-_A-Za-z0-9]+(\.[-_A-Za-z0-9]+)*$"


# Credentials in URLs: a user name or password before the host, or a token or signature in the
# query string (S3 and GCS presigned URLs, Azure SAS, ?token=). templates/_validate.tpl
# (tao-kfp.urlCredentials) uses the same two patterns.
URL_USERINFO_PATTERN = r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@"
URL_CREDENTIAL_QUERY_PATTERN = (
    r"(?i)[?&](token|access_token|id_token|auth|password|passwd|pwd|secret|api_key|apikey|key|sig"
    r"|signature|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature"
    r"|x-goog-credential)="
)


def url_credentials(url: str) -> Optional[str]:
    """What credentials ``url`` carries, in words for a message (None when none)."""
    if re.match(URL_USERINFO_PATTERN, url):
        return "a user name or password (user:password@host)"
    found = re.search(URL_CREDENTIAL_QUERY_PATTERN, url)
    if found:
        return f"a credential in its query string ({found.group(0)[1:]}...)"
    return None


def redact_url(url: str) -> str:
    """``url`` with any user information and credential query values replaced by ***."""
    url = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1***@", url)
    return re.sub(
        URL_CREDENTIAL_QUERY_PATTERN + r"[^&#]*", lambda m: m.group(0).split("=")[0] + "=***", url
    )


def kfp_host_problems(host: str, key: str = "kfp.host") -> List[str]:
    """Refuses credentials in the KFP API URL (they would be printed everywhere)."""
    found = url_credentials(host)
    if not found:
        return []
    return [
        f"{key} carries {found}, which would be printed with every message and log line: give "
        "the bare API URL (e.g. http://ml-pipeline.kubeflow:8888); multi-user KFP authenticates "
        "with a projected ServiceAccount token (--token-path, kfp.mode=multiUser), never a "
        "token in the URL"
    ]


def dataset_url_problems(url: str, key: str = "workspace.init.datasetUrl") -> List[str]:
    """Refuses credentials in the dataset archive URL (printed and stored by the init Job)."""
    found = url_credentials(url)
    if not found:
        return []
    return [
        f"{key} carries {found}, which the init Job would print and store in the workspace: "
        "serve the archive from a URL without credentials (e.g. a bucket readable from the "
        "cluster), or copy the dataset into the workspace's data/ yourself"
    ]


# Kubernetes mounts <server>:<path> (bracketing an IPv6 address), so "host:2049" breaks the mount.
NFS_SERVER_WITH_PORT_PATTERN = r"^([^:\[\]]+|\[[^\]]*\]):[0-9]*$"


def nfs_server_problems(server: str, key: str = "workspace.nfs.server") -> List[str]:
    """Refuses an NFS server given with a port (host:2049)."""
    if not re.match(NFS_SERVER_WITH_PORT_PATTERN, server):
        return []
    return [
        f"{key}={server} has a port: Kubernetes mounts <server>:<path> and NFSv4 uses port "
        "2049; give the host name or IP only (a port other than 2049 goes in "
        "workspace.nfs.mountOptions as port=N)"
    ]


# Cron, as KFP's API server parses it: github.com/robfig/cron v1.2.0 cron.Parse (kubeflow/
# pipelines 2.15.0 backend/src/apiserver/server/api_converter.go:1974; 2.0.5 line 1919; 2.17.0
# line 2088). Its default parser (robfig/cron v1.2.0 parser.go:174-176) takes 5 or 6 fields,
# seconds first, so our 5-field form (minute hour day month weekday) gets a leading "0".
# Bounds and names: spec.go:17-46; getRange (parser.go:207-270) refuses a number outside them,
# a start after the end and a step of 0; "N/step" runs to the field's maximum.
CRON_FIELD_PATTERN = r"(\*|\?|[0-9]{1,4}(-[0-9]{1,4})?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/[0-9]{1,4})?"
# The schema's upload.recurringCron: 5 or 6 fields of comma-separated CRON_FIELD_PATTERN items.
CRON_PATTERN = (
    rf"^$|^{CRON_FIELD_PATTERN}(,{CRON_FIELD_PATTERN})*( +{CRON_FIELD_PATTERN}"
    rf"(,{CRON_FIELD_PATTERN})*){{4,5}}$"
)
_CRON_PLACES = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    ),
    ("day of week", 0, 6, {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}),
)
# February has 29 days in leap years, within robfig's five-year search.
_DAYS_IN_MONTH = dict(enumerate((31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), start=1))


def _cron_fields(cron: str) -> Tuple[List[str], List[Tuple[set, bool]]]:
    """Problems of ``cron``, and per field its values and whether it holds * or ?."""
    text = cron.strip()
    fields = text.split()
    if text.startswith("@") or len(fields) not in (5, 6):
        return [
            f"it has {len(fields)} fields; give 5 (minute hour day month weekday, e.g. "
            "'0 0 * * *') or KFP's 6 (seconds first, e.g. '0 0 0 * * *'); no @macros"
        ], []
    if not re.match(CRON_PATTERN, text):
        return ["each field is *, ?, a number, a range, a step, a list or a 3-letter name"], []
    if len(fields) == 5:
        fields.insert(0, "0")
    problems: List[str] = []
    parsed = []
    for field, (place, low, high, names) in zip(fields, _CRON_PLACES):
        values: set = set()
        star = False
        for part in field.split(","):
            range_text, _, step_text = part.partition("/")
            bounds = range_text.split("-")
            if bounds[0] in ("*", "?"):
                start, end, star = low, high, True
            else:
                numbers = []
                for word in bounds:
                    if word.lower() in names:
                        numbers.append(names[word.lower()])
                    elif word.isdigit():
                        numbers.append(int(word))
                    else:
                        problems.append(
                            f"{word!r} in the {place} field is neither a number nor a name of "
                            "that field"
                        )
                if len(numbers) != len(bounds):
                    continue
                start, end = numbers[0], numbers[-1]
                if len(bounds) == 1 and not step_text:
                    end = start
            step = int(step_text) if step_text else 1
            sunday = " (Sunday is 0 or sun)" if place == "day of week" else ""
            if start < low or end > high:
                problems.append(
                    f"{part!r} is outside the {place} field's range {low}-{high}{sunday}"
                )
            elif start > end:
                problems.append(f"{part!r} in the {place} field starts after it ends")
            elif step == 0:
                problems.append(f"{part!r} in the {place} field has a step of 0")
            else:
                values.update(range(start, end + 1, step))
        parsed.append((values, star))
    return problems, parsed


def cron_problems(cron: str, key: str = "upload.recurringCron") -> List[str]:
    """Why KFP's API server would refuse ``cron`` as a recurring run's schedule ([] if not)."""
    problems, _ = _cron_fields(cron)
    return [f"{key} {cron!r}: {problem}" for problem in problems]


def cron_never_fires(cron: str) -> bool:
    """True when ``cron`` is valid but names a day no chosen month has (``0 0 31 2 *``).

    robfig's Next gives up after five years (spec.go:70-76), and a restricted day of month with
    a * day of week must match the date itself (dayMatches, spec.go:149-158).
    """
    problems, parsed = _cron_fields(cron)
    if problems:
        return False
    (days, days_star), (months, _), (_, weekdays_star) = parsed[3], parsed[4], parsed[5]
    if days_star or not weekdays_star:
        return False
    return min(days) > max(_DAYS_IN_MONTH[month] for month in months)


def normalise_cron(cron: str, key: str = "--recurring-cron") -> str:
    """The 6-field form KFP stores; raises ValueError naming ``key`` if KFP would refuse it."""
    problems = cron_problems(cron, key)
    if problems:
        raise ValueError("; ".join(problems))
    fields = cron.split()
    return " ".join(["0", *fields] if len(fields) == 5 else fields)


# KFP's own role for what the upload does (kubeflow/pipelines 2.15.0 manifests/kustomize/base/
# installs/multi-user/view-edit-cluster-roles.yaml:12). Any other role needs an explicit opt-in,
# and these are refused even then: cluster-wide admin roles and Kubeflow's kubeflow-edit (Secrets,
# pods/exec, ServiceAccount impersonation).
KFP_CLUSTER_ROLES = ("kubeflow-pipelines-edit",)
BROAD_CLUSTER_ROLES = ("cluster-admin", "admin", "edit", "kubeflow-admin", "kubeflow-edit")

# A model key TAO's launchers can carry: they re-split the command line (bash -c '... {args}'
# through shlex.split; NVIDIA/tao_deploy nvidia_tao_deploy/cv/common/entrypoint/
# entrypoint_proto.py:229-244): only what shlex.quote leaves unquoted survives.
LAUNCHER_SAFE_PATTERN = r"^[A-Za-z0-9_@%+=:,./-]+$"


def spec_field_table() -> Dict[str, Dict[str, Any]]:
    """The spec's fields per message, as the chart reads them (files/specs/spec-fields.json).

    Written from the protobuf descriptor of tao_kfp.spec, so the chart checks specs.overrides
    against the same fields as `tao-kfp spec render` (tests/chart/test_rule_parity.py).
    """
    from google.protobuf.descriptor import FieldDescriptor

    from tao_kfp import spec

    scalars = {
        FieldDescriptor.CPPTYPE_BOOL: "bool",
        FieldDescriptor.CPPTYPE_UINT32: "uint",
        FieldDescriptor.CPPTYPE_FLOAT: "float",
        FieldDescriptor.CPPTYPE_STRING: "string",
        FieldDescriptor.CPPTYPE_ENUM: "enum",
    }

    def describe(field: Any) -> Dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            return {"kind": "map", "value": describe(field.message_type.fields_by_name["value"])}
        entry: Dict[str, Any]
        if field.message_type is not None:
            entry = {"kind": "message", "message": field.message_type.name}
        else:
            entry = {"kind": scalars[field.cpp_type]}
            if field.enum_type is not None:
                entry["values"] = [value.name for value in field.enum_type.values]
        if field.is_repeated:
            entry["repeated"] = True
        if field.containing_oneof is not None:
            entry["oneof"] = field.containing_oneof.name
        return entry

    table: Dict[str, Dict[str, Any]] = {}

    def visit(descriptor: Any) -> None:
        if descriptor.name in table or descriptor.GetOptions().map_entry:
            return
        table[descriptor.name] = {field.name: describe(field) for field in descriptor.fields}
        for field in descriptor.fields:
            if field.message_type is not None:
                visit(field.message_type)

    visit(spec.ExperimentSpec.DESCRIPTOR)
    return table


def spec_override_problems(overrides: Mapping) -> List[str]:
    """Why `tao-kfp spec render` would refuse ``overrides`` on the shipped spec ([] if not)."""
    from tao_kfp import spec

    try:
        spec.apply_overrides(spec.default_spec(), overrides)
    except spec.SpecError as error:
        return [f"specs.overrides: {error}"]
    return []


def _dig(values: Mapping, path: str, default: Any = None) -> Any:
    for part in path.split("."):
        if not isinstance(values, Mapping) or part not in values:
            return default
        values = values[part]
    return values


def values_problems(values: Mapping) -> Tuple[List[str], List[str]]:
    """(errors, warnings) of the rules above on merged chart values (`tao-kfp lint-values`)."""
    errors: List[str] = []
    warnings: List[str] = []
    app_version = "latest"
    for name in ("tools", "tao", "taoDeploy"):
        image = _dig(values, f"images.{name}") or {}
        if not isinstance(image, Mapping) or not image.get("repository"):
            continue
        reference = str(image["repository"])
        if image.get("digest"):
            reference += f"@{image['digest']}"
        else:
            reference += f":{image.get('tag') or app_version}"
        errors += image_reference_problems(f"images.{name}", reference)
    errors += nfs_server_problems(str(_dig(values, "workspace.nfs.server", "") or ""))
    errors += dataset_url_problems(str(_dig(values, "workspace.init.datasetUrl", "") or ""))
    errors += kfp_host_problems(str(_dig(values, "kfp.host", "") or ""))
    cron = str(_dig(values, "upload.recurringCron", "") or "")
    if cron:
        errors += cron_problems(cron)
        if cron_never_fires(cron):
            warnings.append(
                f"upload.recurringCron {cron!r} names a day none of its months has: the "
                "recurring run never starts"
            )
    if _dig(values, "kfp.mode") == "multiUser":
        role = str(_dig(values, "kfp.clusterRole", "") or "")
        if role in BROAD_CLUSTER_ROLES or role.startswith("system:"):
            errors.append(f"kfp.clusterRole={role} would give the upload Job broad rights")
        elif role not in KFP_CLUSTER_ROLES and not _dig(values, "kfp.customClusterRole"):
            errors.append(
                f"kfp.clusterRole={role} is not KFP's role kubeflow-pipelines-edit: use it, or set "
                "kfp.customClusterRole=true"
            )
    model_key = str(_dig(values, "ngc.modelKey", "") or "")
    if model_key and not re.match(LAUNCHER_SAFE_PATTERN, model_key):
        errors.append(
            "ngc.modelKey holds a character TAO's launchers cannot carry (white space, a quote, "
            "or one bash interprets): use only letters, digits and _ @ % + = : , . / -"
        )
    overrides = _dig(values, "specs.overrides") or {}
    version = str(_dig(values, "tao.version", ""))
    if overrides and version and workspace_spec_of(version) == "":
        errors.append(
            f"specs.overrides sets fields of the TF1 spec file, but tao.version {version}'s route "
            "reads no spec from the workspace (step 1 writes every Hydra spec of a run): give "
            "Hydra keys per run in the spec_overrides run parameter"
        )
    elif overrides and _dig(values, "workspace.init.enabled", True):
        errors += spec_override_problems(overrides)
    return errors, warnings


def workspace_spec_of(version: str) -> Optional[str]:
    """The spec the init Job renders for ``tao.version``, "" for none (tao-kfp.workspaceSpec).

    None when the version is not a route (the schema refuses it).
    """
    from tao_kfp import routes

    if version not in routes.VERSIONS:
        return None
    return routes.route_for(version).workspace_spec


if __name__ == "__main__":  # python -m tao_kfp.value_rules > files/specs/spec-fields.json
    import json

    print(json.dumps(spec_field_table(), indent=1, sort_keys=True))
