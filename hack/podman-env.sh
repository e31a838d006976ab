#!/usr/bin/env bash
# Sourced by the container scripts. On a machine without systemd (the CI and development
# machines: no systemd cgroup manager, no journald, hybrid cgroups that crun refuses), point
# podman at the project's settings in hack/containers.conf through CONTAINERS_CONF, unless the
# caller chose a file already. A machine with systemd and a normal engine is left as it is.
if [[ -z "${CONTAINERS_CONF:-}" && ! -d /run/systemd/system ]]; then
  CONTAINERS_CONF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf"
  export CONTAINERS_CONF
fi
