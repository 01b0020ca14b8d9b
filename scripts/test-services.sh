#!/usr/bin/env bash
# Installs what the server tests need from Debian's packages when it is missing: Chromium (the dashboard's
# end-to-end tests drive it with Playwright by path; no browser is ever downloaded) and PostgreSQL (the
# persistence tests start a throwaway server on loopback). Idempotent: does nothing when both are present.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
# fonts for readable screenshots
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)

if [ ${#need[@]} -eq 0 ]; then
  echo "test services: chromium and postgresql present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "test services: missing ${need[*]} and not root (no sudo): install them with apt-get" >&2
    exit 1
  fi
fi
echo "test services: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# the postgresql package would start a cluster of its own; the tests run their own on a free port instead
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
command -v chromium >/dev/null 2>&1 || { echo "test services: chromium still missing" >&2; exit 1; }
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || {
  echo "test services: postgresql still missing" >&2; exit 1; }
echo "test services: ready"
