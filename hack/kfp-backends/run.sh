#!/usr/bin/env bash
# make kfp-backends: every compiled package in files/pipelines/, adapted for each KFP backend
# by `tao-kfp render --kfp-version` (the one adapt path), run through that backend's own code
# (run-version.sh), then the matrix (matrix.py). Results: out/kfp-backends/<version>/.
# KFP_BACKENDS="2.5.0 2.17.0" picks versions; KFP_BACKENDS_ADAPT=none runs the packages as
# shipped (what a backend gets when the version is unknown and nothing is adapted), and
# KFP_BACKENDS_ADAPT=2.16.0 adapts them for that version instead (a wrong guess).
# KFP_BACKENDS_PACKAGES=DIR takes the packages from DIR instead of files/pipelines/;
# KFP_BACKENDS_EXPECT_FAIL=COLUMN inverts the verdict (negative controls, controls.sh).
# KFP_BACKENDS_SRC=DIR (local only): KFP's code from release-commit trees (export-src.sh).
# When every version ran, the README's backend table is rewritten from the results.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=hack/kfp-backends
versions=${KFP_BACKENDS:-$(sed -n 's/^\([0-9][0-9.]*\) .*/\1/p' "$here/versions.txt" | tr '\n' ' ')}
out=${KFP_BACKENDS_OUT:-out/kfp-backends}
[[ $out == /* ]] || out=$PWD/$out
tao_kfp=${TAO_KFP:-.venv/bin/tao-kfp}
mkdir -p "$out"
start=$SECONDS
for version in $versions; do
  packages=$out/$version/packages
  rm -rf "$packages"
  mkdir -p "$packages"
  for package in "${KFP_BACKENDS_PACKAGES:-files/pipelines}"/*.yaml; do
    name=$(basename "$package" .yaml)
    if [[ ${KFP_BACKENDS_ADAPT:-} == none ]]; then
      cp "$package" "$packages/$name.yaml"
      echo "KFP $version: package as shipped (not adapted)" > "$packages/$name.render.log"
    elif ! "$tao_kfp" render --config "$here/env.yaml" --package "$package" --kfp-version "${KFP_BACKENDS_ADAPT:-$version}" \
        --out "$packages/$name.yaml" 2> "$packages/$name.render.log"; then
      rm -f "$packages/$name.yaml"
    fi
  done
  t0=$SECONDS
  if compgen -G "$packages/*.yaml" > /dev/null; then
    "$here/run-version.sh" "$version" "$packages" "$out/$version" || true
  fi
  echo "kfp-backends $version: $((SECONDS - t0)) s" >&2
done
echo "kfp-backends: $((SECONDS - start)) s for $versions" >&2
args=()
if [[ -n ${KFP_BACKENDS_EXPECT_FAIL:-} ]]; then
  args=(--expect-fail "$KFP_BACKENDS_EXPECT_FAIL")
elif [[ -z ${KFP_BACKENDS:-}${KFP_BACKENDS_ADAPT:-}${KFP_BACKENDS_PACKAGES:-} ]]; then
  args=(--readme README.md) # full runs only
fi
# shellcheck disable=SC2086 # one word per version
.venv/bin/python "$here/matrix.py" "$out" $versions "${args[@]}"
