#!/bin/sh
# ENTRYPOINT of the tools image. `docker run IMAGE --help` or `docker run IMAGE upload ...`
# runs tao-kfp; a command that exists (sh, python3, ... as kfp.local's DockerRunner passes
# them, which set only the container's CMD) runs as given. The docker-library images use the
# same convention (e.g. postgres' docker-entrypoint.sh: "if first arg is `-f` or `--some-option`").
# Kubernetes pods replace the ENTRYPOINT with their `command:` (the chart sets command: [tao-kfp]).
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ] || ! command -v "$1" > /dev/null 2>&1; then
  set -- tao-kfp "$@"
fi
exec "$@"
