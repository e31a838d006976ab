#!/usr/bin/env bash
# Renders a local run's report.html in headless Chromium (Debian's `chromium` package) and
# writes a full-page PNG screenshot: hack/screenshot-report.sh [REPORT] [PNG] [WIDTH]
set -euo pipefail
report=$(realpath "${1:-.demo/report.html}")
png=$(realpath -m "${2:-${report%.html}.png}")
width=${3:-1400}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# Height: generous for the whole page; Chromium crops nothing it does not render.
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size="$width,${HEIGHT:-4200}" \
  --screenshot="$png" "file://$report" 2>/dev/null
echo "$png"
