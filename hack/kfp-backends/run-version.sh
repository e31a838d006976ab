#!/usr/bin/env bash
# Runs the harness (harness/harness_test.go) with KFP's backend code at one version.
# Usage: run-version.sh VERSION PACKAGES_DIR OUT_DIR
# The version's module (hack/kfp-backends/VERSION/go.mod + go.sum) pins kubeflow/pipelines at
# the release commit. Go refuses overlays beneath GOMODCACHE, so the checksum-verified module
# is copied once (backend/ and go.mod only) into a build cache outside the repo, a temporary
# modfile points the module at that copy, and the harness files are overlaid into its
# backend/src/v2/driver package. No KFP code enters the repository.
set -euo pipefail
version=$1 packages=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
module_dir=$here/$version
adapter=$(sed -n 's/^adapter *= *//p' "$module_dir/harness.conf")
cache=${TAO_KFP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tao-kfp}/kfp-backends

cd "$module_dir"
pin=$(sed -n 's|^require github.com/kubeflow/pipelines \(v[^ ]*\)$|\1|p' go.mod)
if ! download=$(go mod download -json github.com/kubeflow/pipelines@"$pin" 2>&1); then
  # The module proxy here serves only some KFP commits (docs/kfp-backend-harness.md).
  reason=$(printf '%s\n' "$download" | sed -n 's/^\t"Error": "\(.*\)",*$/\1/p' | head -1)
  mkdir -p "$out"
  python3 -c 'import json,sys; print(json.dumps({"version": sys.argv[1], "unavailable": sys.argv[2]}))' \
    "$version" "${reason:-$download}" > "$out/result.json"
  echo "kfp-backends $version: KFP source not served: ${reason:-$download}" >&2
  exit 3
fi
src=$(printf '%s\n' "$download" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
copy=$cache/$version/pipelines@$pin
if [[ ! -f $copy/.complete ]]; then
  rm -rf "$copy"
  mkdir -p "$copy"
  cp -r "$src/go.mod" "$src/backend" "$copy/"
  [[ -f $src/go.sum ]] && cp "$src/go.sum" "$copy/"
  chmod -R u+w "$copy"
  touch "$copy/.complete"
fi
work=$cache/$version/work
mkdir -p "$work"
cp go.mod "$work/go.mod"
cp go.sum "$work/go.sum"
go mod edit -modfile="$work/go.mod" -replace "github.com/kubeflow/pipelines=$copy"
driver=$copy/backend/src/v2/driver
cat > "$work/overlay.json" <<JSON
{"Replace": {
  "$driver/zz_taokfp_harness_test.go": "$here/harness/harness_test.go",
  "$driver/zz_taokfp_adapter_test.go": "$here/harness/adapter_$adapter.go"
}}
JSON
rm -rf "$out/pods" "$out/workflows" "$out/result.json" "$out/go-test.log"
mkdir -p "$out"
TAOKFP_VERSION=$version TAOKFP_PACKAGES=$packages TAOKFP_OUT=$out \
  go test -mod=mod -modfile="$work/go.mod" -overlay "$work/overlay.json" -run '^TestTaoKfpBackend$' -count=1 \
  github.com/kubeflow/pipelines/backend/src/v2/driver > "$out/go-test.log" 2>&1 || status=$?
if [[ ! -f $out/result.json ]]; then
  tail -30 "$out/go-test.log" >&2
  exit 2
fi
exit "${status:-0}"
