"""Fixtures of `make e2e-cluster`: the cluster hack/e2e-cluster.sh started (cluster_helpers)."""

from __future__ import annotations

import pytest
from cluster_helpers import Cluster, read_env


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    return Cluster(read_env())
