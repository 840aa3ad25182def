#!/bin/sh
# Installs the Debian packages knox needs to build, test, lint, bench and
# document (lua-ldoc, for `make docs`).
# Idempotent: does nothing when every package is present. Only Debian's
# archive is used; nothing is downloaded from anywhere else.
set -eu

PACKAGES="
build-essential
pkg-config
lua5.4
liblua5.4-dev
libcurl4-openssl-dev
libssl-dev
libcjson-dev
openssl
curl
ca-certificates
lua-busted
luarocks
lua-check
lua-socket
lua-sec
lua-luaossl
lua-cjson
lua-argparse
lua-system
lua-filesystem
nginx-light
tmux
cppcheck
lua-ldoc
clang
libclang-rt-14-dev
valgrind
lua-sql-sqlite3
gnuplot-nox
python3-requests
python3-jwt
jq
lua-dkjson
"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing="$missing $p"
  fi
done

[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
  echo "knox: missing Debian packages:$missing" >&2
  echo "knox: run as root:  apt-get update && $cmd" >&2
  exit 1
fi

echo "knox: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
