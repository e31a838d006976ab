#!/usr/bin/env bash
# Runs the harness (harness/harness_test.go) with KFP's backend code at one version.
# Usage: run-version.sh VERSION PACKAGES_DIR OUT_DIR
# The version's module (hack/kfp-backends/VERSION/go.mod + go.sum) pins kubeflow/pipelines at
# the release commit. Go refuses overlays beneath GOMODCACHE, so the checksum-verified module
# is copied once (backend/ and go.mod only) into a build cache outside the repo, a temporary
# modfile points the module at that copy, and the harness files are overlaid into its
# backend/src/v2/driver package. No KFP code enters the repository.
# KFP_BACKENDS_SRC=DIR (local only, see export-src.sh): where the proxy does not serve the
# commit, take KFP's code from DIR/VERSION, a `git archive` of the release commit; result.json
# then says so ("source"). The proxy always wins where it serves the commit.
set -euo pipefail
version=$1 packages=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
module_dir=$here/$version
# harness.conf: the files under harness/ that adapt the harness to this version's signatures.
adapters=$(sed -n 's/^adapter *= *//p' "$module_dir/harness.conf")
cache=${TAO_KFP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tao-kfp}/kfp-backends

cd "$module_dir"
pin=$(sed -n 's|^require github.com/kubeflow/pipelines \(v[^ ]*\)$|\1|p' go.mod)
local_src=${KFP_BACKENDS_SRC:+$KFP_BACKENDS_SRC/$version}
mkdir -p "$out"
if download=$(go mod download -json github.com/kubeflow/pipelines@"$pin" 2>&1); then
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
  source=proxy
else
  # The module proxy here serves only some KFP commits (docs/kfp-backend-harness.md).
  reason=$(printf '%s\n' "$download" | sed -n 's/^\t"Error": "\(.*\)",*$/\1/p' | head -1 | sed 's/\\n\\t/ /g')
  if [[ -z $local_src || ! -f $local_src/SOURCE ]]; then
    python3 -c 'import json,sys; print(json.dumps({"version": sys.argv[1], "unavailable": sys.argv[2]}))' \
      "$version" "${reason:-$download}" > "$out/result.json"
    echo "kfp-backends $version: KFP source not served: ${reason:-$download}" >&2
    exit 3
  fi
  commit=$(sed -n 's/^commit //p' "$local_src/SOURCE")
  if [[ $commit != "${pin##*-}"* ]]; then
    echo "kfp-backends $version: $local_src/SOURCE is commit $commit, go.mod pins $pin" >&2
    exit 2
  fi
  echo "kfp-backends $version: proxy refused ($reason); KFP code from $local_src" >&2
  copy=$local_src
  source="local source tree at commit $commit (tag $version)"
fi
work=$cache/$version/work
mkdir -p "$work"
cp go.mod "$work/go.mod"
if [[ -f go.sum ]]; then cp go.sum "$work/go.sum"; else : > "$work/go.sum"; fi
go mod edit -modfile="$work/go.mod" -replace "github.com/kubeflow/pipelines=$copy"
if [[ $source != proxy ]]; then
  # The nested modules our go.mod replaces with the same commit (from 2.5.0) come from the
  # tree too; at 2.0.5 and 2.2.0 the tag's own pins are served by the proxy.
  for nested in api kubernetes_platform; do
    if grep -q "^[[:space:]]*github.com/kubeflow/pipelines/$nested =>" go.mod; then
      go mod edit -modfile="$work/go.mod" -replace "github.com/kubeflow/pipelines/$nested=$local_src/$nested"
    fi
  done
fi
driver=$copy/backend/src/v2/driver
{
  printf '{"Replace": {\n  "%s": "%s"' "$driver/zz_taokfp_harness_test.go" "$here/harness/harness_test.go"
  for file in $adapters; do
    printf ',\n  "%s": "%s"' "$driver/zz_taokfp_${file%.go}_test.go" "$here/harness/$file"
  done
  # KFP's own tests in that package are left out ("" deletes a file in an overlay): they are
  # not what we run, and at 2.16.1 they do not build (new(int64(1)) needs go 1.26 there).
  for file in "$driver"/*_test.go; do
    printf ',\n  "%s": ""' "$file"
  done
  printf '\n}}\n'
} > "$work/overlay.json"
rm -rf "$out/pods" "$out/workflows" "$out/result.json" "$out/go-test.log"
TAOKFP_SOURCE=$source TAOKFP_VERSION=$version TAOKFP_PACKAGES=$packages TAOKFP_OUT=$out \
  go test -mod=mod -modfile="$work/go.mod" -overlay "$work/overlay.json" -run '^TestTaoKfpBackend$' -count=1 \
  github.com/kubeflow/pipelines/backend/src/v2/driver > "$out/go-test.log" 2>&1 || status=$?
if [[ ! -f $out/result.json ]]; then
  tail -30 "$out/go-test.log" >&2
  exit 2
fi
exit "${status:-0}"
