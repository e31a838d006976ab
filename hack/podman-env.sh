#!/usr/bin/env bash
# Sourced by the container scripts: on a machine without a Docker engine, use podman with the
# project's settings (hack/containers.conf) unless the caller already chose CONTAINERS_CONF.
# shellcheck disable=SC2034  # CONTAINER_ENGINE is read by the scripts that source this file
if [[ -z "${CONTAINERS_CONF:-}" ]]; then
  CONTAINERS_CONF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf"
  export CONTAINERS_CONF
fi
