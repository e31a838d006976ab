#!/usr/bin/env bash
# make kfp-backends-controls: negative controls for the harness. Each case feeds a backend the
# package as it was before the fix and must FAIL the named column; each backend then gets
# today's adapted package (as make kfp-backends does) and must pass. Results under
# out/kfp-backends-controls/<case>/. Versions the module proxy does not serve show n/a
# (KFP_BACKENDS_SRC, export-src.sh, runs them locally).
#   pre-fix   files/pipelines/ at the commit before task display names became the task keys
#             (c1b69aa^): display names differ from task keys, nothing adapted.
#   as-shipped today's package, not adapted (securityContext, optional Secrets, parameterised
#             names): what a backend gets when nothing adapts the package.
#   as-2.16   today's package adapted for 2.16: what the upload sent when healthz said
#             "unknown" and "unknown" meant "2.16 or newer" (securityContext, optional Secrets).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=hack/kfp-backends
out=out/kfp-backends-controls
pre_fix=c1b69aa^
rm -rf "$out"
mkdir -p "$out/pre-fix"
git show "$pre_fix:files/pipelines/tao-classification.yaml" > "$out/pre-fix/tao-classification.yaml" || {
  echo "kfp-backends-controls: needs the git history ($pre_fix); run in a full clone" >&2
  exit 1
}
# case version packages adapt column-that-must-fail
cases=(
  "2.0.5-pre-fix 2.0.5 $out/pre-fix none upstream lookups"
  "2.0.5-as-shipped 2.0.5 files/pipelines none driver pod spec"
  "2.5.0-pre-fix 2.5.0 $out/pre-fix none upstream lookups"
  "2.14.4-as-shipped 2.14.4 files/pipelines none run creation"
  "2.14.4-as-2.16 2.14.4 files/pipelines 2.16.0 run creation"
  "2.15.0-as-2.16 2.15.0 files/pipelines 2.16.0 run creation"
)
failed=0 summary=()
not_run() { grep -q '"unavailable"' "$1/result.json" 2> /dev/null; }
for c in "${cases[@]}"; do
  read -r name version packages adapt column <<< "$c"
  echo "== control $name: KFP $version, packages from $packages, adapt=$adapt: $column must FAIL" >&2
  if KFP_BACKENDS=$version KFP_BACKENDS_PACKAGES=$packages KFP_BACKENDS_ADAPT=$adapt \
      KFP_BACKENDS_OUT=$out/$name KFP_BACKENDS_EXPECT_FAIL=$column "$here/run.sh"; then
    if not_run "$out/$name/$version"; then
      summary+=("control $name: not run here (KFP $version not served by the module proxy)")
    else
      summary+=("control $name: $column FAILS as it must")
    fi
  else
    summary+=("control $name: DOES NOT FAIL $column (or could not run)")
    failed=1
  fi
done
for version in 2.0.5 2.5.0 2.14.4 2.15.0; do
  echo "== fixed $version: today's package, adapted: every column must pass" >&2
  if KFP_BACKENDS=$version KFP_BACKENDS_OUT=$out/$version-fixed "$here/run.sh"; then
    if not_run "$out/$version-fixed/$version"; then
      summary+=("fixed $version: not run here (KFP $version not served by the module proxy)")
    else
      summary+=("fixed $version: every column passes")
    fi
  else
    summary+=("fixed $version: FAILS (or could not run)")
    failed=1
  fi
done
printf '%s\n' "${summary[@]}"
exit "$failed"
