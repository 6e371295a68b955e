#!/usr/bin/env bash
# Installs the system packages that only the test suite needs, from Debian, when missing:
# PostgreSQL (the store tests run against it too), Chromium (the browser tests) and espeak-ng
# (recordings for the voice tests). Idempotent and quiet when all is present.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
# Chromium for the browser tests and `make screenshots` (Playwright drives it; no browser download).
[ -x /usr/bin/chromium ] || need+=(chromium)
# espeak-ng speaks the sentences the voice tests (and bench/voice.py) feed to the transcriber.
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing test-only system packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
