"""tao_kfp.kfp_backends adapts the package to the KFP backend that will run it (upload, render).

make kfp-backends runs each backend's own code on the result (docs/kfp-backend-harness.md).
Which backend takes which field (kubeflow/pipelines, docs/kfp-backends.md):
- securityContext is applied from 2.16.0 (backend/src/v2/driver/k8s.go:724 at 2.16.0);
  2.14.x-2.15.x reject run creation with `unknown field "securityContext"` (strict
  protojson.Unmarshal in the API server's Argo compiler, backend/src/v2/compiler/argocompiler/
  container.go:285 at 2.14.0);
- secretAsEnv `optional` is applied from 2.15.0 (backend/src/v2/driver/k8s.go:340-341 at
  2.15.0, absent at 2.14.0);
- 2.4.1-2.5.x drop unknown fields silently (lenient driver, PR #11662);
- 2.0.0-2.4.0 parse strictly (every unknown field fails every step), so each field the backend's
  proto lacks is removed; 2.4.1 leaves {{$.pipeline_job_uuid}} as is, so step 1 names the run
  folder; before 2.4.0 the GPU count cannot come from a run parameter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import yaml

from helpers.packages import has_optional_secrets, has_security_context
from tao_kfp import compiler
from tao_kfp.kfp_backends import KfpBackend, adapt_for_backend
from tao_kfp.package import adapt_package, load_package
from tao_kfp.resources import shipped_file
from tao_kfp.routes import ROUTES

# Every route's package: the default install's (PyTorch, tao.version 6) and the TF1 routes'.
ROUTE_NAMES = [route.name for route in ROUTES]
# The tasks whose GPU limit is the num_gpus run parameter, in each route's DAG.
MULTI_GPU_TASKS = {"tf1": "train and retrain", "pyt": "train and compress"}


@pytest.fixture(scope="module", params=ROUTE_NAMES)
def route(request):
    return next(route for route in ROUTES if route.name == request.param)


@pytest.fixture(scope="module")
def adapted(route) -> List[dict]:
    return adapt_package(
        load_package(shipped_file(route.package)), compiler.route_environment(route)
    )


def test_the_shipped_package_uses_the_fields_that_need_new_backends(adapted):
    # Otherwise the tests below would pass for nothing.
    assert has_security_context(adapted) and has_optional_secrets(adapted)


@pytest.mark.parametrize(
    "version, security_context, optional, lost",
    [
        pytest.param("2.17.0", True, True, [], id="2.17: everything"),
        pytest.param("2.16.0", True, True, [], id="2.16: everything"),
        pytest.param("2.15.0", False, True, ["runAsUser"], id="2.15: no securityContext"),
        pytest.param("2.14.3", False, False, ["runAsUser", "optional"], id="2.14"),
        pytest.param("2.5.0", False, False, ["runAsUser", "optional"], id="2.5"),
        pytest.param("2.4.1", False, False, ["runAsUser", "optional", "run folder"], id="2.4.1"),
        pytest.param(
            "2.2.0",
            False,
            False,
            ["/dev/shm", "runAsUser", "optional", "num_gpus", "run folder"],
            id="2.2 (Kubeflow 1.9)",
        ),
        pytest.param(
            "2.0.5",
            False,
            False,
            [
                "image pull Secret",
                "pull policy",
                "deadline",
                "tolerations",
                "/dev/shm",
                "runAsUser",
                "optional",
                "num_gpus",
                "run folder",
            ],
            id="2.0.5 (Kubeflow 1.8)",
        ),
    ],
)
def test_each_backend_gets_only_what_it_can_take_and_the_loss_is_named(
    adapted, version, security_context, optional, lost
):
    docs, lines = adapt_for_backend(adapted, KfpBackend.parse(version))

    assert has_security_context(docs) is security_context
    assert has_optional_secrets(docs) is optional
    assert len(lines) == len(lost)
    for line, word in zip(lines, lost):
        assert line.startswith(f"KFP {version}") and word in line
    assert has_security_context(adapted), "the input must stay unchanged"


def test_adapt_package_takes_the_backend_in_the_same_pass(adapted, route):
    backend = KfpBackend.parse("2.15.0")
    env = compiler.route_environment(route)
    one_pass = adapt_package(load_package(shipped_file(route.package)), env, backend=backend)
    assert one_pass == adapt_for_backend(adapted, backend)[0]


@pytest.mark.parametrize("version", ["1.8.5", "1.0.0"])
def test_kfp_v1_backends_are_refused_naming_the_kubeflow_release(adapted, version):
    with pytest.raises(ValueError, match=r"upgrade to Kubeflow 1\.8 \(KFP 2\.0\.5\)"):
        adapt_for_backend(adapted, KfpBackend.parse(version))


def _executor_fields(docs) -> set:
    executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()
    return {field for config in executors for field in config}


def test_a_strict_old_driver_gets_only_fields_its_proto_has(adapted):
    # KFP 2.0.5's kubernetes_platform proto: secretAsVolume, secretAsEnv, pvcMount, nodeSelector.
    docs, _ = adapt_for_backend(adapted, KfpBackend.parse("2.0.5"))
    assert _executor_fields(docs) <= {"secretAsVolume", "secretAsEnv", "pvcMount", "nodeSelector"}
    executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()
    entries = [e for c in executors for f in ("pvcMount", "secretAsEnv") for e in c.get(f, [])]
    assert entries and not any(
        {"pvcNameParameter", "secretNameParameter"} & set(e) for e in entries
    )


def test_before_2_4_train_gets_a_fixed_gpu_count_and_step_one_names_the_run_folder(adapted):
    docs, _ = adapt_for_backend(adapted, KfpBackend.parse("2.2.0"))
    text = yaml.safe_dump(docs[0])
    assert "pipelinechannel--num_gpus']}}" not in text.split("resourceCount")[1]
    assert "{{$.pipeline_job_uuid}}" not in text
    train = docs[0]["root"]["dag"]["tasks"]["train"]["inputs"]["parameters"]
    assert train["num_gpus"] == {"runtimeValue": {"constant": "1"}}


def test_the_fixed_gpu_count_names_the_routes_own_multi_gpu_tasks(adapted, route):
    _, lines = adapt_for_backend(adapted, KfpBackend.parse("2.2.0"))
    (line,) = [line for line in lines if "num_gpus" in line]
    assert line.endswith(f"{MULTI_GPU_TASKS[route.name]} use gpu.count=1"), line


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("2.5.0", (2, 5, 0)),
        ("v2.16.1", (2, 16, 1)),
        ("2.15.0-rc.1", (2, 15, 0)),
        ("2.14", (2, 14, 0)),
    ],
)
def test_versions_parse_as_healthz_reports_them(text, parsed):
    assert KfpBackend.parse(text).version == parsed


@pytest.mark.parametrize("text", ["unknown", "", "master", "2"])
def test_what_is_not_a_version_is_refused_by_name(text):
    with pytest.raises(ValueError, match="is not a version"):
        KfpBackend.parse(text)


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "env.yaml"
    path.write_text("workspace:\n  claimName: team-claim\n")
    return path


def test_render_previews_the_same_adaptation(config):
    command = [sys.executable, "-m", "tao_kfp.cli", "render", "--config", str(config)]
    result = subprocess.run(
        [*command, "--kfp-version", "2.15.0"], capture_output=True, text=True, check=True
    )
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert not has_security_context(docs) and has_optional_secrets(docs)
    assert "KFP 2.15.0: runAsUser/runAsGroup not applied" in result.stderr

    refused = subprocess.run([*command, "--kfp-version", "1.8.5"], capture_output=True, text=True)
    assert refused.returncode == 2
    assert "Kubeflow 1.8 (KFP 2.0.5)" in refused.stderr and "Traceback" not in refused.stderr
