#!/usr/bin/env bash
# Print the source folder of MODULE_PATH as pinned by hack/cluster/MODULE_DIR/go.mod, downloading
# it (checked against that go.sum) when the module cache lacks it. `go list -m -f {{.Dir}}` alone
# prints an empty line for a module not yet downloaded: true on a fresh machine for a module
# nothing builds (hack/cluster/kfp, read for its manifests only) or after the cache was cleaned.
#
# Usage: hack/cluster/module-dir.sh MODULE_DIR MODULE_PATH     e.g. kfp github.com/kubeflow/pipelines
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/$1"
version="$(GOFLAGS=-mod=readonly go list -m -f '{{.Version}}' "$2")"
json="$(GOFLAGS=-mod=readonly go mod download -json "$2@$version")"
dir="$(sed -n 's/^\t"Dir": "\(.*\)",*$/\1/p' <<< "$json")"
if [[ -z "$dir" || ! -d "$dir" ]]; then
  echo "module-dir: $2@$version not available: $json" >&2
  exit 1
fi
echo "$dir"
