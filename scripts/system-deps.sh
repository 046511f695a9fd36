#!/usr/bin/env bash
# System packages the tests need: Debian's Chromium (web envs, report test), MariaDB (sql),
# bubblewrap (the repo and desktop environments' sandbox), and the desktop env's X server, xauth
# (Debian's xvfb only recommends it; it writes the per-episode cookie), window manager,
# LibreOffice (GTK3 plug-in for AT-SPI), its help, AT-SPI, xdotool and Mousepad. Each is checked
# by a file it installs, so a second run is instant.
set -euo pipefail
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
for pair in xvfb:/usr/bin/Xvfb xauth:/usr/bin/xauth openbox:/usr/bin/openbox xdotool:/usr/bin/xdotool \
    mousepad:/usr/bin/mousepad dbus-x11:/usr/bin/dbus-launch at-spi2-core:/usr/libexec/at-spi-bus-launcher \
    python3-pyatspi:/usr/lib/python3/dist-packages/pyatspi/__init__.py \
    libreoffice-calc:/usr/lib/libreoffice/program/libsclo.so \
    libreoffice-writer:/usr/lib/libreoffice/program/libswlo.so \
    libreoffice-gtk3:/usr/lib/libreoffice/program/libvclplug_gtk3lo.so \
    libreoffice-help-en-us:/usr/share/libreoffice/help/en-US/text/scalc/guide; do
  [ -e "${pair#*:}" ] || need+=("${pair%%:*}")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  for attempt in 1 2 3 4 5; do
    if $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"; then
      break
    fi
    echo "apt-get failed (attempt $attempt); retrying in 10 s" >&2; sleep 10
  done
fi
