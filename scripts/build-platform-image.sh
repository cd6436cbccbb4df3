#!/usr/bin/env bash
# Build the platform image (deploy/Dockerfile.platform) with no container registry:
#  1. a base image: a Debian bookworm root filesystem made by debootstrap with Python, Pango and
#     fonts for the PDF reports, and the PostgreSQL server, imported into the Docker engine;
#  2. a wheelhouse of the platform and every package it needs, downloaded once on the host and
#     cached outside the clone (~/.cache/regsandbox/platform-wheels/<hash of the requirements and the image's Python>);
#  3. docker build with the wheelhouse as the only package source.
# Usage: scripts/build-platform-image.sh [IMAGE]   (default regsandbox/platform:<version>)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3
version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
image="${1:-regsandbox/platform:$version}"
base="${REGSANDBOX_PLATFORM_BASE_IMAGE:-regsandbox/platform-base:bookworm}"
mirror="${REGSANDBOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${REGSANDBOX_CACHE:-$HOME/.cache/regsandbox}"
started=$(date +%s)
say() { echo "[$(( $(date +%s) - started ))s] $*" >&2; }

if ! docker image inspect "$base" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  rootfs=$(mktemp -d /tmp/regsandbox-platform-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  say "building base image $base from Debian bookworm (a few minutes, once)"
  debootstrap --variant=minbase \
    --include=python3,python3-venv,ca-certificates,postgresql-15,libpango-1.0-0,libpangoft2-1.0-0,libharfbuzz-subset0,fontconfig,fonts-noto-core \
    bookworm "$rootfs" "$mirror" >/tmp/regsandbox-platform-debootstrap.log 2>&1 \
    || { tail -n 20 /tmp/regsandbox-platform-debootstrap.log >&2; exit 1; }
  # The package's own cluster (and its init scripts) is unused: the chart's start script makes one.
  rm -rf "$rootfs"/var/lib/postgresql/15/main "$rootfs"/etc/postgresql/15/main
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    - "$base" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  say "built $base"
fi

# Wheels are chosen for the image's interpreter (Debian's 3.11.2), not only the host's.
target=$(docker run --rm --network none "$base" python3 -c 'import platform; print(platform.python_version())')
requirements_text=$("$python" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml","rb"))["project"]["dependencies"]))')
# Keyed on the runtime requirements only: a change to the test tools does not refetch the wheels.
key=$( (echo "$requirements_text"; echo "$target") | sha256sum | cut -c1-16)
wheels="$cache/platform-wheels/$key"
if [ ! -f "$wheels/.complete" ]; then
  say "downloading the platform's wheels into $wheels (once per set of requirements)"
  # An interrupted download resumes: wheels already here are reused (--find-links).
  mkdir -p "$wheels"
  requirements="$wheels/.requirements.txt"
  echo "$requirements_text" >"$requirements"
  # pip wheel keeps wheels as they are and builds the odd source-only package into one here,
  # where a compiler may exist; the image then needs none.
  "$python" -m pip wheel --quiet --wheel-dir "$wheels" --find-links "$wheels" -r "$requirements"
  # The host resolves for its own interpreter; the image's (Debian's 3.11.2) can need more, such
  # as packages required only below 3.11.3, and pip cannot resolve for another patch release.
  # So resolve in the image itself, offline, against the wheelhouse, and fetch what it names as
  # missing until it resolves.
  for _ in 1 2 3 4 5 6 7 8; do
    missing=$(docker run --rm --network none -v "$wheels:/wheels:ro" "$base" sh -c \
      'python3 -m venv /tmp/v >/dev/null && /tmp/v/bin/pip install --quiet --dry-run --no-index --find-links /wheels -r /wheels/.requirements.txt 2>&1' \
      | sed -n 's/.*No matching distribution found for \([^;]*\).*/\1/p' | head -n 1 || true)
    [ -z "$missing" ] && break
    say "the image's Python also needs $missing"
    "$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" "$missing"
  done
  touch "$wheels/.complete"
fi

# Rebuilt only when the platform's sources changed: the image carries the hash of what went in.
source=$( (git ls-files -z pyproject.toml deploy orchestrator flows monitors examples policies schemas sandbox_templates 2>/dev/null \
  | xargs -0 sha256sum; echo "$base $(docker image inspect -f '{{.Id}}' "$base")"; ls "$wheels") | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{index .Config.Labels "regsandbox.source"}}' "$image" 2>/dev/null)" = "$source" ]; then
  say "$image is up to date"
  exit 0
fi

context=$(mktemp -d /tmp/regsandbox-platform-build.XXXXXX)
trap 'rm -rf "$context"' EXIT
mkdir "$context/wheels"
# The platform itself changes with every commit: built fresh, never cached.
"$python" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$context/wheels" . >/dev/null
ln "$wheels"/*.whl "$context/wheels/" 2>/dev/null || cp "$wheels"/*.whl "$context/wheels/"
echo "regsandbox==$version" >"$context/wheels/requirements.txt"
cp deploy/Dockerfile.platform "$context/Dockerfile"
say "building $image"
docker build --quiet --network none --build-arg "BASE_IMAGE=$base" --label "regsandbox.source=$source" \
  -t "$image" "$context" >/dev/null
say "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
