#!/bin/sh
# Prints a LuaRocks configuration that tells LuaRocks which of knox's Lua
# dependencies Debian's apt already installed, so `luarocks install` of the
# knox and knox-sim rocks uses them instead of fetching and building rocks:
#
#   sh scripts/luarocks-debian.sh > build/luarocks-debian.lua
#   LUAROCKS_CONFIG=build/luarocks-debian.lua luarocks --lua-version 5.4 install ...
#
# (LUAROCKS_CONFIG takes the place of the user's ~/.luarocks/config-5.4.lua;
# the system configuration is still read.) Only packages dpkg reports as
# installed are listed, each with its upstream version as a rock version.
# .ci/run installs the source rocks offline this way.
set -eu

# rock name  Debian package
MAP="
argparse lua-argparse
luasql-sqlite3 lua-sql-sqlite3
luasocket lua-socket
luasec lua-sec
luaossl lua-luaossl
lua-cjson lua-cjson
luafilesystem lua-filesystem
busted lua-busted
"

echo "-- written by knox's scripts/luarocks-debian.sh: Lua modules Debian installed"
echo "rocks_provided = {"
echo "$MAP" | while read -r rock pkg; do
  [ -n "$rock" ] || continue
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  case "$status" in *"install ok installed"*) ;; *) continue ;; esac
  # 1:2.1.0+dfsg-2.2 -> 2.1.0: no epoch, no Debian revision, no +suffix
  ver=$(dpkg-query -W -f='${Version}' "$pkg" | sed -e 's/^[0-9]*://' -e 's/-[^-]*$//' -e 's/[+~].*$//')
  echo "  [\"$rock\"] = \"$ver-1\",  -- Debian $pkg"
done
echo "}"
