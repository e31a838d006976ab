"""One rule set: the chart refuses exactly what the code reading the same value refuses.

values.schema.json uses the patterns of tao_kfp.environment verbatim, templates/_validate.tpl
its NVIDIA resource names, and the recurringCron pattern accepts only what `tao-kfp upload`
(normalise_cron) accepts. Mount paths are the chart's alone: local runs mount host paths.
Behaviour is compared case by case: the chart under Helm 4 (test_bad_values runs both Helms)
against EnvironmentConfig.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from chart_helpers import CI_DIR, REPO, template_args
from pydantic import ValidationError

from tao_kfp import environment as env
from tao_kfp.upload import UploadError
from tao_kfp.upload.inputs import normalise_cron

SCHEMA = json.loads((REPO / "values.schema.json").read_text())["properties"]
VALIDATE_TPL = (REPO / "templates/_validate.tpl").read_text()


def test_schema_uses_the_environment_patterns():
    gpu, workspace = SCHEMA["gpu"]["properties"], SCHEMA["workspace"]["properties"]
    assert gpu["resource"]["pattern"] == env.GPU_RESOURCE_PATTERN
    assert gpu["shmSize"]["pattern"] == env.QUANTITY_PATTERN
    assert workspace["size"]["pattern"] == env.QUANTITY_PATTERN
    assert workspace["existingClaim"]["pattern"] == "^$|" + env.DNS_LABEL_PATTERN
    assert workspace["existingClaim"]["maxLength"] == 63
    for labels in (gpu["nodeSelector"], SCHEMA["commonLabels"]):
        assert labels["propertyNames"]["pattern"] == env.LABEL_KEY_PATTERN
        assert labels["additionalProperties"]["pattern"] == env.LABEL_VALUE_PATTERN
    toleration = gpu["tolerations"]["items"]["properties"]
    assert toleration["key"]["pattern"] == env.LABEL_KEY_PATTERN
    assert toleration["value"]["pattern"] == env.LABEL_VALUE_PATTERN


def test_template_uses_the_environment_rules():
    # A Go template string literal doubles each backslash.
    assert json.dumps(env.NVIDIA_RESOURCE_PATTERN) in VALIDATE_TPL


def chart_accepts(helm, chart_dir, tmp_path, values: dict) -> bool:
    override = tmp_path / "case.yaml"
    override.write_text(yaml.safe_dump(values))
    result = helm.run(
        *template_args(chart_dir, [CI_DIR / "01-default-values.yaml", override]), check=False
    )
    return result.returncode == 0


def environment_accepts(section: str, values: dict) -> bool:
    try:
        env.EnvironmentConfig.model_validate({section: values})
    except ValidationError:
        return False
    return True


TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
CASES = [
    ("gpu", {"resource": "nvidia.com/gpu"}, True),
    ("gpu", {"resource": "nvidia.com/mig-1g.10gb"}, True),
    ("gpu", {"resource": "nvidia.com/mig-3g.40gb"}, True),
    ("gpu", {"resource": "amd.com/gpu"}, True),
    ("gpu", {"resource": "nvidia.com/mig-1c.3g.20gb"}, True),
    ("gpu", {"resource": "nvidia.com/gpu.shared"}, True),
    ("gpu", {"resource": "example.kubernetes.io/gpu"}, False),
    ("gpu", {"resource": "nvidia.com/gpus"}, False),
    ("gpu", {"resource": "nvidia.com/mig-1g"}, False),
    ("gpu", {"resource": "gpu"}, False),
    ("gpu", {"shmSize": "16Gi"}, True),
    ("gpu", {"shmSize": "512m"}, False),
    ("gpu", {"shmSize": "0"}, False),
    ("gpu", {"nodeSelector": {"pool": "gpu pool"}}, False),
    ("gpu", {"nodeSelector": {"-bad": "x"}}, False),
    ("gpu", {"nodeSelector": {"example.com/pool": "a100"}}, True),
    ("gpu", {"tolerations": [TOLERATION]}, True),
    ("gpu", {"tolerations": [{}]}, False),
    ("gpu", {"tolerations": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}, True),
    ("gpu", {"tolerations": [{"key": "dedicated", "operator": "Exists", "value": "gpu"}]}, False),
    ("gpu", {"tolerations": [dict(TOLERATION, value="x")]}, False),
    ("gpu", {"tolerations": [dict(TOLERATION, tolerationSeconds=30)]}, False),
    ("gpu", {"tolerations": [dict(TOLERATION, effect="NoExecute", tolerationSeconds=30)]}, True),
]


@pytest.mark.parametrize(
    "section, values, accepted", CASES, ids=[json.dumps(c[1], sort_keys=True) for c in CASES]
)
def test_chart_and_environment_agree(helm4, chart_dir, tmp_path, section, values, accepted):
    assert chart_accepts(helm4, chart_dir, tmp_path, {section: values}) is accepted
    assert environment_accepts(section, values) is accepted


def test_environment_refuses_a_claim_name_kfp_cannot_use_as_volume_name():
    for name in ("team.data", "x" * 64):
        with pytest.raises(ValidationError):
            env.Workspace(claim_name=name)
    assert env.Workspace(claim_name="1234").claim_name == "1234"


CRON_PATTERN = SCHEMA["upload"]["properties"]["recurringCron"]["pattern"]


@pytest.mark.parametrize(
    "cron",
    ["0 0 * * *", "0 0 2 * * *", "*/15 * * * *", "0 9-17 * * MON-FRI", "0 0 1,15 * ?", ""],
)
def test_every_cron_the_schema_accepts_the_upload_accepts(cron):
    assert re.search(CRON_PATTERN, cron)
    if cron:
        assert len(normalise_cron(cron).split()) == 6


@pytest.mark.parametrize("cron", ["@hourly", "@daily", "nightly", "0 0 * *"])
def test_crons_the_upload_refuses_the_schema_refuses(cron):
    assert not re.search(CRON_PATTERN, cron)
    if cron.startswith("@") or len(cron.split()) not in (5, 6):
        with pytest.raises(UploadError):
            normalise_cron(cron)
