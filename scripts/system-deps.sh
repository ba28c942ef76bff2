#!/usr/bin/env bash
# System packages the tests need beyond Python: Chromium (the JupyterLab browser test drives it
# with Playwright; no browser download) and PostgreSQL (a real gradebook server for the
# parallel-grading tests). Installs them with apt-get on Debian/Ubuntu when run as root;
# elsewhere it says what is missing.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "set-up: installing system packages for the tests: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "set-up: the tests need these system packages: ${missing[*]}." >&2
  echo "  Debian/Ubuntu: sudo apt-get install ${missing[*]}; macOS: brew install --cask chromium; brew install postgresql" >&2
  echo "  (a Chromium elsewhere can be named with FACEREC_CHROMIUM=/path/to/chromium)" >&2
  exit 1
fi
