#!/usr/bin/env bash
# Debian packages the platform uses beside Python: iptables (sandbox firewall), Pango and
# HarfBuzz for WeasyPrint's PDF reports, Noto fonts so Thai, Burmese, Khmer, Lao and Tamil render
# as glyphs, WenQuanYi Micro Hei for Chinese (4 MB, where Noto's CJK fonts take over 100 MB),
# poppler-utils (PDF checks), Chromium (the browser tests) and the PostgreSQL server binaries
# (the API tests start a throwaway cluster of their own).
# Installs only what is missing, and only as root on a Debian-like system; elsewhere it says
# what to install.
set -euo pipefail
packages=(iptables libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig fonts-noto-core fonts-wqy-microhei poppler-utils chromium)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Debian keeps the server binaries off PATH, under /usr/lib/postgresql/<version>/bin.
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  missing+=(postgresql)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${missing[*]} (install them with your package manager)" >&2
  exit 0
fi
echo "installing system packages: ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fc-cache -f >/dev/null 2>&1 || true
