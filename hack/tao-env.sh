#!/usr/bin/env bash
# Builds (once) and prints the path of a Python 3.12 environment holding NVIDIA's TAO code:
#   hack/tao-env.sh pyt     nvidia-tao-pytorch 7.3.0 + what classification_pyt imports
#   hack/tao-env.sh deploy  nvidia-tao-deploy 7.3.0 (no TensorRT; see tao-env/deploy-stand-ins)
#   hack/tao-env.sh NAME --check   print the path; exit 3 (build nothing) when it is not built
#   hack/tao-env.sh NAME --wheels  only fill the wheelhouse with NAME's wheels; print its path
#   hack/tao-env.sh NAME --python  print the prefix of the Python 3.12 the envs are made from
#                                  (images/tao-pyt copies it into a base without one)
# Every package is pinned in tao-env/<name>.txt and installed with --no-deps, so the env is the
# file. It lives outside the repo, keyed by a hash of that file, the build recipe and the
# Python version: ~/.cache/tao-kfp/tao-<name>-<hash>. Wheels are kept in ~/.cache/tao-kfp/wheelhouse,
# so a rebuild (new key, or a deleted env) installs offline. Progress goes to stderr, the path
# alone to stdout. TAO_ENV_PYTHON picks the interpreter (default: pyenv's 3.12.1, else python3.12).
set -euo pipefail
cd "$(dirname "$0")/.."

name=${1:?usage: hack/tao-env.sh pyt|deploy}
lock=tao-env/$name.txt
[[ -f $lock ]] || { echo "no such TAO environment: $name (expected $lock)" >&2; exit 2; }
python=${TAO_ENV_PYTHON:-}
if [[ -z $python ]]; then
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}/versions/3.12.1/bin/python3.12" python3.12; do
    if command -v "$candidate" >/dev/null; then python=$candidate; break; fi
  done
fi
[[ -n $python ]] || { echo "Python 3.12 not found: nvidia-tao-pytorch 7.3.0 is a cp312 wheel. Set TAO_ENV_PYTHON." >&2; exit 2; }
if [[ ${2:-} == --python ]]; then
  "$python" -c 'import sys; print(sys.base_prefix)'
  exit 0
fi

cache=${TAO_KFP_CACHE:-$HOME/.cache/tao-kfp}
# Bump when the way an env is built changes (not for comments): it is part of the key.
build_recipe=1
key=$({ cat "$lock"; echo "recipe $build_recipe"; "$python" -V; } | sha256sum | cut -c1-12)
env_dir=$cache/tao-$name-$key
if [[ -f $env_dir/.complete && ${2:-} != --wheels ]]; then
  echo "$env_dir"
  exit 0
fi
# --check: only say where the env would be; exit 3 when it is not built (tests skip on that).
[[ ${2:-} == --check ]] && { echo "$env_dir"; exit 3; }

start=$SECONDS
wheelhouse=$cache/wheelhouse
mkdir -p "$wheelhouse"
# nvidia-eff declares an old Requires-Python; without this pip silently takes a placeholder.
pip_opts=(--quiet --no-deps --ignore-requires-python --progress-bar off)
# A stamp per pin list: checking ~140 pins against the wheelhouse takes a minute even offline.
wheels_stamp=$wheelhouse/.complete-$name-$key
if [[ ! -f $wheels_stamp ]]; then
  # Offline first: with every wheel already kept, asking PyPI about each of ~140 pins is slow.
  if ! "$python" -m pip download "${pip_opts[@]}" --no-index --find-links "$wheelhouse" \
    -d "$wheelhouse" -r "$lock" >/dev/null 2>&1; then
    echo "tao-env: downloading the wheels of $lock into $wheelhouse (kept; about 3 GB for pyt)" >&2
    "$python" -m pip download "${pip_opts[@]}" --find-links "$wheelhouse" -d "$wheelhouse" -r "$lock" >&2
  fi
  # Sdists (antlr4-python3-runtime) are built to wheels here, online, so the install is offline.
  shopt -s nullglob
  sdists=("$wheelhouse"/*.tar.gz)
  if ((${#sdists[@]})); then
    "$python" -m pip wheel --quiet --no-deps -w "$wheelhouse" "${sdists[@]}" >&2
  fi
  touch "$wheels_stamp"
fi
download_s=$((SECONDS - start))
[[ ${2:-} == --wheels ]] && { echo "$wheelhouse"; exit 0; }

# Built in place (a venv records its path in its scripts); .complete marks a finished build,
# so an interrupted one is started over.
rm -rf "$env_dir"
"$python" -m venv "$env_dir"
echo "tao-env: installing into $env_dir (offline, from the wheelhouse)" >&2
"$env_dir/bin/python" -m pip install "${pip_opts[@]}" --no-index --only-binary=:all: --find-links "$wheelhouse" -r "$lock" >&2
touch "$env_dir/.complete"
echo "tao-env: $name ready in $((SECONDS - start)) s (download $download_s s), $(du -sh "$env_dir" | cut -f1) on disk" >&2
echo "$env_dir"
