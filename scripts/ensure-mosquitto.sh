#!/usr/bin/env bash
# Install the Mosquitto broker the MQTT tests start on a free local port, when we may (root or
# passwordless sudo, Debian/Ubuntu). Otherwise say so: those tests then skip with this reason.
set -u
if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "mosquitto not found and no apt-get: install it to run the MQTT tests (they skip otherwise)"; exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "mosquitto not found: run 'sudo apt-get install mosquitto' to run the MQTT tests (they skip otherwise)"; exit 0
  fi
fi
echo "installing mosquitto with apt (used by the MQTT tests on a free local port)"
$SUDO apt-get install -y -q mosquitto >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q mosquitto >/dev/null 2>&1; }
# The tests start their own broker; do not leave the system service bound to port 1883.
{ $SUDO systemctl disable --now mosquitto || $SUDO service mosquitto stop; } >/dev/null 2>&1 || true
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]
