#!/usr/bin/env bash
# Make sure a Docker engine answers. On a Debian/Ubuntu machine where we are root and no
# engine is installed, install Debian's docker.io and start dockerd in the background.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "No Docker engine answers and none can be installed here: install Docker (https://docs.docker.com/engine/install/) and start it." >&2
    exit 1
  fi
  echo "installing the Docker engine (Debian docker.io)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io iptables >/dev/null
fi
if [ "$(id -u)" != 0 ]; then
  echo "dockerd is installed but not running; start it (sudo systemctl start docker)." >&2
  exit 1
fi
echo "starting dockerd" >&2
setsid dockerd >/var/log/regsandbox-dockerd.log 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && { echo "docker engine ready" >&2; exit 0; }
  sleep 0.5
done
echo "dockerd did not come up; see /var/log/regsandbox-dockerd.log" >&2
tail -n 20 /var/log/regsandbox-dockerd.log >&2 || true
exit 1
