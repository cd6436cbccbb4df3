#!/usr/bin/env bash
# Build llama-cpp-python from source once and keep the wheel outside the clone.
# PyPI serves only its source package for 0.3.x; the build takes about 12 minutes on 2 cores,
# so it runs only when the wheel is missing from the cache. GGML_NATIVE=OFF makes the wheel
# portable (no instructions of this particular CPU), so it runs in any sandbox image.
# Prints the path of the wheel on stdout.
set -euo pipefail
version="${LLAMA_CPP_VERSION:-0.3.36}"
cache="${REGSANDBOX_CACHE:-$HOME/.cache/regsandbox}/wheels"
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && python=.venv/bin/python

wheel=$(compgen -G "$cache/llama_cpp_python-$version-*.whl" | head -n 1 || true)
if [ -n "$wheel" ]; then
  echo "$wheel"
  exit 0
fi
missing=()
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "building llama-cpp-python needs: ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
mkdir -p "$cache"
# Built in a scratch folder and moved in whole: an interrupted build leaves no half wheel behind.
scratch=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
echo "building llama-cpp-python $version from source (about 12 minutes on 2 cores)" >&2
CMAKE_ARGS="-DGGML_NATIVE=OFF" "$python" -m pip wheel --quiet --no-deps -w "$scratch" \
  "llama-cpp-python==$version" >&2
built=$(compgen -G "$scratch/llama_cpp_python-$version-*.whl" | head -n 1)
mv "$built" "$cache/"
echo "$cache/$(basename "$built")"
