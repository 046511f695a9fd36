#!/usr/bin/env bash
# System packages the tests need: Debian's Chromium (web envs, report test), MariaDB (sql),
# bubblewrap (the repo environment's sandbox).
set -euo pipefail
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  for attempt in 1 2 3 4 5; do
    if $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"; then
      break
    fi
    echo "apt-get failed (attempt $attempt); retrying in 10 s" >&2; sleep 10
  done
fi
