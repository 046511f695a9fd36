#!/usr/bin/env bash
# Install what the web environments need: Debian's Chromium (Playwright's own browser download
# does not work offline) and the Python packages. Safe to rerun. Run as root for apt.
#   scripts/install_browser.sh            # apt + pip into .venv
#   PYTHON=/path/to/python scripts/install_browser.sh
set -euo pipefail

PYTHON="${PYTHON:-.venv/bin/python}"

apt_retry() {
  # Another apt/dpkg may hold the lock (other installs on the same machine): wait and retry.
  for attempt in $(seq 1 30); do
    if DEBIAN_FRONTEND=noninteractive apt-get "$@"; then return 0; fi
    echo "apt-get $1 failed (attempt $attempt); the dpkg lock may be held, retrying in 10 s" >&2
    sleep 10
  done
  return 1
}

if ! command -v chromium >/dev/null 2>&1; then
  apt_retry update
  apt_retry install -y --no-install-recommends chromium chromium-driver
fi
chromium --version

"$PYTHON" -m pip install "browsergym-core==0.14.3" "browsergym-miniwob==0.14.3" "miniwob==1.1.0" \
  "playwright==1.44.0" "datasette>=0.65" "psutil>=5.9"
"$PYTHON" - <<'PY'
import pathlib, miniwob
print("MiniWoB pages:", (pathlib.Path(miniwob.__file__).parent / "html" / "miniwob").as_uri())
PY
