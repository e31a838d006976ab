"""Root conftest: skip `cluster`-marked tests when no Kubernetes API is reachable.

pytest-helm-charts' ``kube_cluster`` fixture raises when KUBECONFIG is unset, which would turn
every cluster test into an error on a laptop or in CI. Here such tests are skipped with a
one-line reason instead. Besides that, it only registers tests/tao_envs.py (the fixtures that
run NVIDIA's TAO wheels) for every test directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import pytest

pytest_plugins = ["tao_envs"]

_HOW_TO = "run hack/kind-up.sh, then make test-cluster"


def _kubeconfig(config: pytest.Config) -> Optional[str]:
    # Same precedence as pytest-helm-charts: its --kubeconfig option, then $KUBECONFIG.
    return config.getoption("kubeconfig", default=None) or os.environ.get("KUBECONFIG") or None


def _unreachable_reason(kubeconfig: Optional[str]) -> Optional[str]:
    """Returns why the cluster can't be used, or None when its API answers."""
    if not kubeconfig:
        return f"no cluster: KUBECONFIG is not set ({_HOW_TO})"
    if not Path(kubeconfig).is_file():
        return f"no cluster: KUBECONFIG={kubeconfig} is not one readable file ({_HOW_TO})"
    import pykube  # pytest-helm-charts' client; imported only when cluster tests are selected

    try:
        api = pykube.HTTPClient(pykube.KubeConfig.from_file(kubeconfig), timeout=5)
        api.session.get(f"{api.url}/version", timeout=5).raise_for_status()
    except Exception as error:  # any failure here means the same thing: no usable cluster
        first_line = (str(error).splitlines() or [type(error).__name__])[0][:160]
        return f"no cluster: the API in {kubeconfig} does not answer ({first_line})"
    return None


@pytest.hookimpl(trylast=True)  # after `-m` deselection: probe only if cluster tests remain
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks the selected `cluster` tests as skipped when no cluster answers."""
    cluster_items = [item for item in items if item.get_closest_marker("cluster")]
    if not cluster_items:
        return
    reason = _unreachable_reason(_kubeconfig(config))
    if reason:
        for item in cluster_items:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Remembers whether everything deselected was a `cluster` test (see sessionfinish)."""
    if items:
        session = items[0].session
        only_cluster = all(item.get_closest_marker("cluster") for item in items)
        session.stash[_ONLY_CLUSTER_DESELECTED] = (
            session.stash.get(_ONLY_CLUSTER_DESELECTED, True) and only_cluster
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """`pytest tests/cluster` without `-m cluster` deselects every test: that is not a failure.

    Pytest would exit 5 ("no tests collected"); when all that was dropped were `cluster` tests
    deselected by the default `-m 'not cluster'`, exit 0 instead.
    """
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session.stash.get(
        _ONLY_CLUSTER_DESELECTED, False
    ):
        session.exitstatus = pytest.ExitCode.OK


_ONLY_CLUSTER_DESELECTED = pytest.StashKey[bool]()
