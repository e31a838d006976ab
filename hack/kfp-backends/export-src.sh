#!/usr/bin/env bash
# Local only (never run by CI): exports kubeflow/pipelines at each release commit pinned in
# hack/kfp-backends/<version>/go.mod from a git clone or bare mirror, for machines whose Go
# module proxy does not serve those commits (docs/kfp-backend-harness.md).
# Usage: export-src.sh GIT_DIR [DEST] [VERSION...]
#   DEST defaults to ~/.cache/tao-kfp/kfp-backends-src; then
#   KFP_BACKENDS_SRC=DEST make kfp-backends
# Each version's tag must resolve to the commit (and commit time) its go.mod pseudo-version
# names, or nothing is exported for it. DEST/<version>/SOURCE records tag and commit.
set -euo pipefail
git_dir=${1:?usage: export-src.sh GIT_DIR [DEST] [VERSION...]}
dest=${2:-${TAO_KFP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tao-kfp}/kfp-backends-src}
shift $(($# < 2 ? $# : 2))
here=$(cd "$(dirname "$0")" && pwd)
versions=${*:-$(sed -n 's/^\([0-9][0-9.]*\) .*/\1/p' "$here/versions.txt")}
git() { command git --git-dir="$git_dir" "$@"; }
mkdir -p "$dest"
for version in $versions; do
  pin=$(sed -n 's|^require github.com/kubeflow/pipelines \(v[^ ]*\)$|\1|p' "$here/$version/go.mod")
  [[ $pin =~ ^v0\.0\.0-([0-9]{14})-([0-9a-f]{12})$ ]] || {
    echo "export-src $version: no pseudo-version pin in $version/go.mod" >&2
    exit 1
  }
  pin_time=${BASH_REMATCH[1]} pin_hash=${BASH_REMATCH[2]}
  commit=$(git rev-parse --verify -q "refs/tags/$version^{commit}") || {
    echo "export-src $version: tag $version not in $git_dir" >&2
    exit 1
  }
  time=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S "$commit")
  if [[ $commit != "$pin_hash"* || $time != "$pin_time" ]]; then
    echo "export-src $version: tag $version is $commit ($time), go.mod pins $pin" >&2
    exit 1
  fi
  if [[ -f $dest/$version/SOURCE ]] && grep -qx "commit $commit" "$dest/$version/SOURCE"; then
    echo "export-src $version: $dest/$version already at $commit" >&2
    continue
  fi
  rm -rf "${dest:?}/$version" "$dest/$version.part"
  mkdir -p "$dest/$version.part"
  # What the harness builds: the root module's backend/ and the nested modules it replaces.
  paths=(go.mod go.sum backend api kubernetes_platform)
  git archive --format=tar "$commit" "${paths[@]}" | tar -x -C "$dest/$version.part"
  printf 'tag %s\ncommit %s\n' "$version" "$commit" > "$dest/$version.part/SOURCE"
  mv "$dest/$version.part" "$dest/$version"
  echo "export-src $version: $dest/$version from tag $version, commit $commit ($(du -sh "$dest/$version" | cut -f1))" >&2
done
