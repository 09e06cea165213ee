#!/bin/sh
# Installs what mailca needs on Debian 12 (run as root, or with sudo available).
set -eu
PKGS="build-essential cmake pkg-config libssl-dev openssl libp11-kit-dev softhsm2
  libzmq3-dev libmsgpack-dev libyaml-dev libsqlite3-dev sqlite3 libcmocka-dev
  libunbound-dev nsd ldnsutils dns-root-data postgresql-15 libpq-dev
  libnss3-tools gpgsm gpg-agent libcurl4-openssl-dev libidn2-dev libmicrohttpd-dev"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
