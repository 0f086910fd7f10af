say "install: cmake --install and luarocks make"
PREFIX=$(mktemp -d)
if cmake --install build --prefix "$PREFIX" >"$LOGS/install.log" 2>&1 &&
   P="$PREFIX" LUA_PATH="$PREFIX/share/lua/5.4/?.lua;$PREFIX/share/lua/5.4/?/init.lua;;" LUA_CPATH="$PREFIX/lib/lua/5.4/?.so;;" \
   lua5.4 -e 'local nb = require "nanobanana"; assert(package.searchpath("nanobanana.core", package.cpath):find(os.getenv("P"), 1, true)); print(nb._VERSION)' \
   >>"$LOGS/install.log" 2>&1 &&
   LUA_PATH="$PREFIX/share/lua/5.4/?.lua;$PREFIX/share/lua/5.4/?/init.lua;;" LUA_CPATH="$PREFIX/lib/lua/5.4/?.so;;" \
   "$PREFIX/bin/nanobanana" --version >>"$LOGS/install.log" 2>&1; then count 1 0 "cmake --install"
else cat "$LOGS/install.log"; count 0 1 "cmake --install"; fi
say "luarocks: lint, make (no extra variables), pack a source rock and install it into a fresh tree"
# --deps-mode=none: lua-cjson comes from Debian's package (not a rock), and
# the test machine reaches no rocks server; nothing else is passed
ROCKSPEC=$(ls nanobanana-*.rockspec)
if luarocks lint "$ROCKSPEC" >"$LOGS/luarocks-lint.log" 2>&1; then count 1 0 "luarocks lint"
else cat "$LOGS/luarocks-lint.log"; count 0 1 "luarocks lint"; fi
TREE=$(mktemp -d) SRC=$(mktemp -d) PACK=$(mktemp -d) TREE2=$(mktemp -d)
at_exit "rm -rf '$TREE' '$SRC' '$PACK' '$TREE2'"
# luarocks make builds in the source tree: give it a copy (the files a
# release carries; the same list goes into the source tarball below)
RELEASE_FILES=(lua src bin "$ROCKSPEC" README.md LICENSE CHANGELOG.md)
cp -r "${RELEASE_FILES[@]}" "$SRC"/
nb_load() { # tree: loads the module from that tree, runs one call on the fake server, runs the command
  (eval "$(luarocks --lua-version 5.4 --tree "$1" path)" &&
   TREE="$1" lua5.4 -e '
     local nb = require "nanobanana"
     assert(package.searchpath("nanobanana.core", package.cpath):find(os.getenv("TREE"), 1, true), "core.so not from the tree")
     assert(package.searchpath("nanobanana", package.path):find(os.getenv("TREE"), 1, true), "init.lua not from the tree")
     local res = assert(nb.new{ api_key = "test-key", base_url = "http://127.0.0.1:" .. os.getenv("PORT"), retries = 0 }:generate("otter"))
     print(nb._VERSION, res.images[1].mimeType, #res.images[1].data)' &&
   "$1/bin/nanobanana" --version)
}
start_fake PORT
if (cd "$SRC" && luarocks --lua-version 5.4 make --tree "$TREE" --deps-mode=none) >"$LOGS/luarocks.log" 2>&1 &&
   PORT=$PORT nb_load "$TREE" >>"$LOGS/luarocks.log" 2>&1
then count 1 0 "luarocks make (plain; curl.h found where Debian keeps it)"; else cat "$LOGS/luarocks.log"; count 0 1 "luarocks make"; fi
# luarocks pack: the rockspec's source is the git tag of a release; here it
# is pointed at a tarball of this tree (same files), the rest unchanged
VERSION=$(sed -nE 's/^version = "([^"]+)-[0-9]+"/\1/p' "$ROCKSPEC")
mkdir -p "$PACK/nanobanana-$VERSION" && cp -r "${RELEASE_FILES[@]}" "$PACK/nanobanana-$VERSION"/ &&
  tar -C "$PACK" -czf "$PACK/nanobanana-$VERSION.tar.gz" "nanobanana-$VERSION" && rm -rf "$PACK/nanobanana-$VERSION"
URL="file://$PACK/nanobanana-$VERSION.tar.gz" DIR="nanobanana-$VERSION" IN="$ROCKSPEC" OUT="$PACK/$ROCKSPEC" lua5.4 -e '
  local f = assert(io.open(os.getenv("IN"))); local s = f:read("a"); f:close()
  local n; s, n = s:gsub("\nsource = %b{}", "\nsource = { url = \"" .. os.getenv("URL") .. "\", dir = \"" .. os.getenv("DIR") .. "\" }")
  assert(n == 1, "no source table in the rockspec")
  f = assert(io.open(os.getenv("OUT"), "w")); f:write(s); f:close()'
if (cd "$PACK" && luarocks pack "$ROCKSPEC" && ls -l "nanobanana-$VERSION-1.src.rock" &&
    luarocks --lua-version 5.4 install --tree "$TREE2" --deps-mode=none "nanobanana-$VERSION-1.src.rock") \
    >"$LOGS/luarocks-pack.log" 2>&1 && PORT=$PORT nb_load "$TREE2" >>"$LOGS/luarocks-pack.log" 2>&1
then count 1 0 "luarocks pack: the source rock installs into a fresh tree and loads"
else cat "$LOGS/luarocks-pack.log"; count 0 1 "luarocks pack"; fi
rm -rf "$PREFIX"
