#!/usr/bin/env bash
# Build the sandbox base image locally, with no container registry: a minimal Debian
# bookworm root filesystem made by debootstrap and imported into the Docker engine.
# This is the air-gapped path; where a registry is reachable, REGSANDBOX_BASE_IMAGE can
# simply name python:3.11-slim instead.
set -euo pipefail
image="${1:-${REGSANDBOX_BASE_IMAGE:-regsandbox/base:bookworm}}"
mirror="${REGSANDBOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image already present"
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "installing debootstrap" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
rootfs=$(mktemp -d /tmp/regsandbox-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "building base image $image from Debian bookworm (about a minute)" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$rootfs" "$mirror" >/tmp/regsandbox-debootstrap.log 2>&1 \
  || { tail -n 20 /tmp/regsandbox-debootstrap.log >&2; exit 1; }
# apt caches and docs are dead weight in a sandbox image.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  - "$image" >/dev/null
echo "built $image" >&2
