#!/usr/bin/env bash
# Install a pinned checkov into its own virtualenv at DEST (DEST/bin/checkov).
#
# Usage: hack/get-checkov.sh VERSION DEST
#
# checkov pins old versions of libraries kfp also uses, so it must never share .venv.
# Idempotent: an existing DEST with the same checkov version is kept.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 VERSION DEST   (e.g. $0 3.3.30 .tools/checkov)" >&2
  exit 2
fi
version="$1"
dest="$2"
python="${PYTHON:-python3}"

if [[ -x "$dest/bin/checkov" ]] && [[ "$("$dest/bin/checkov" --version 2>/dev/null)" == "$version" ]]; then
  echo "get-checkov: $dest/bin/checkov is already checkov $version"
  exit 0
fi

echo "get-checkov: creating virtualenv $dest with $python"
"$python" -m venv --clear "$dest"
"$dest/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
echo "get-checkov: installing checkov==$version (a few minutes: many dependencies)"
"$dest/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$version"
echo "get-checkov: installed checkov $("$dest/bin/checkov" --version) at $dest/bin/checkov"
