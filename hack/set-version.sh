#!/usr/bin/env bash
# Set the project's version: Chart.yaml `version` and `appVersion` (kept equal). Everything
# else follows from Chart.yaml: the package version (hatch), image tags (make images), the
# pipeline version names (the upload prefixes them with the chart version).
#
# Usage: hack/set-version.sh NEW_VERSION     (MAJOR.MINOR.PATCH, e.g. 0.2.0)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -ne 1 ]]; then
  echo "usage: $0 NEW_VERSION   (e.g. $0 0.2.0)" >&2
  exit 2
fi
new="$1"
# Plain MAJOR.MINOR.PATCH only: it is the one form SemVer (Helm) and PEP 440 (the wheel) spell
# identically; a pre-release such as 0.2.0-rc.1 becomes 0.2.0rc1 in the wheel and the image
# and package version checks would no longer match.
if [[ ! "$new" =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$ ]]; then
  echo "set-version: '$new' is not MAJOR.MINOR.PATCH (e.g. 0.2.0)" >&2
  exit 1
fi

old="$(sed -n 's/^version: *//p' Chart.yaml)"
echo "set-version: Chart.yaml version/appVersion $old -> $new"
sed -i.bak -e "s/^version: .*/version: $new/" -e "s/^appVersion: .*/appVersion: \"$new\"/" Chart.yaml
rm -f Chart.yaml.bak
grep -E '^(version|appVersion):' Chart.yaml

cat <<NEXT
Next:
  1. make setup      # reinstall the package so tao_kfp.__version__ is $new (editable installs
                     # read the version at install time)
  2. make compile    # recompile files/pipelines/tao-classification.yaml: its images carry the tag
  3. CHANGELOG.md    # move the [Unreleased] entries under a new "## [$new] - $(date +%Y-%m-%d)"
  4. make test       # tests/release/test_versions.py checks all of the above agree
NEXT
