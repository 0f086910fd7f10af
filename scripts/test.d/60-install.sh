say "install: cmake --install and luarocks make"
PREFIX=$(mktemp -d)
if cmake --install build --prefix "$PREFIX" >"$LOGS/install.log" 2>&1 &&
   P="$PREFIX" LUA_PATH="$PREFIX/share/lua/5.4/?.lua;$PREFIX/share/lua/5.4/?/init.lua;;" LUA_CPATH="$PREFIX/lib/lua/5.4/?.so;;" \
   lua5.4 -e 'local nb = require "nanobanana"; assert(package.searchpath("nanobanana.core", package.cpath):find(os.getenv("P"), 1, true)); print(nb._VERSION)' \
   >>"$LOGS/install.log" 2>&1 &&
   LUA_PATH="$PREFIX/share/lua/5.4/?.lua;$PREFIX/share/lua/5.4/?/init.lua;;" LUA_CPATH="$PREFIX/lib/lua/5.4/?.so;;" \
   "$PREFIX/bin/nanobanana" --version >>"$LOGS/install.log" 2>&1; then count 1 0 "cmake --install"
else cat "$LOGS/install.log"; count 0 1 "cmake --install"; fi
TREE=$(mktemp -d)
# Debian keeps curl/curl.h under the multiarch include dir, where luarocks does not look
CURL_H=$(echo '#include <curl/curl.h>' | cpp -H -o /dev/null 2>&1 | grep -m1 'curl/curl.h' | sed 's/^\.* //')
CURL_INCDIR=$(dirname "$(dirname "$CURL_H")")
SRC=$(mktemp -d) # luarocks make builds in the source tree: give it a copy
cp -r lua src bin nanobanana-*.rockspec "$SRC"/
if (cd "$SRC" && luarocks --lua-version 5.4 make --tree "$TREE" --deps-mode=none nanobanana-*.rockspec CURL_INCDIR="$CURL_INCDIR" &&
    eval "$(luarocks --lua-version 5.4 --tree "$TREE" path)" &&
    lua5.4 -e 'local nb = require "nanobanana"; assert(nb.new{api_key="k"}); print(nb._VERSION)' &&
    "$TREE/bin/nanobanana" --version) >"$LOGS/luarocks.log" 2>&1
then count 1 0 "luarocks make"; else cat "$LOGS/luarocks.log"; count 0 1 "luarocks make"; fi
rm -rf "$PREFIX" "$TREE" "$SRC"
