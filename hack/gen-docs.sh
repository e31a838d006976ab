#!/usr/bin/env bash
# Regenerate the "## Parameters" section of README.md from the `## @param` comments in
# values.yaml, with @bitnami/readme-generator-for-helm (pinned in the Makefile, installed into
# .tools/ by `make tools`; runs offline).
#
# Usage: hack/gen-docs.sh           rewrite README.md's Parameters section
#        hack/gen-docs.sh --check   fail when README.md and values.yaml disagree (CI)
#
# The generator only rewrites the "## Parameters" section; the rest of README.md is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."

generator="${README_GENERATOR:-$PWD/.tools/node_modules/.bin/readme-generator}"
if [[ ! -x "$generator" ]]; then
  echo "gen-docs: $generator not found: run \`make tools\` (or set README_GENERATOR)" >&2
  exit 1
fi

check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

if ! grep -q '^## Parameters' README.md; then
  echo "gen-docs: README.md has no '## Parameters' section for the values table" >&2
  exit 1
fi

if $check; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cp README.md "$work/README.md"
  echo "gen-docs: checking README.md against values.yaml"
  "$generator" --values values.yaml --readme "$work/README.md" >/dev/null
  if ! diff -u README.md "$work/README.md"; then
    echo "gen-docs: README.md Parameters section is stale: run \`make docs\` (hack/gen-docs.sh)" >&2
    exit 1
  fi
  echo "gen-docs: README.md is up to date"
else
  echo "gen-docs: writing README.md Parameters section from values.yaml"
  "$generator" --values values.yaml --readme README.md
fi
