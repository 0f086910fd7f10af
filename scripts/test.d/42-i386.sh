say "32-bit: an i386 build (gcc -m32, Debian multiarch), ctest and the busted suite"
# Only i386 *library* packages are installed (they are Multi-Arch: same and
# sit beside the amd64 ones; deps.sh refuses any install that would remove a
# package). The interpreter is tests/host/lua_host built with -m32 against
# liblua5.4:i386; busted's own C modules (lfs, term.core, system.core) and
# lua-cjson for i386 are unpacked from their .debs into build-i386/lua-i386
# without installing them (lua-term:i386 cannot sit beside lua-term:amd64).
i386_ok=1
if ! dpkg --print-foreign-architectures | grep -qx i386; then
  { dpkg --add-architecture i386 && apt-get update -qq; } >>"$LOGS/deps.log" 2>&1 || i386_ok=0
fi
[ "$i386_ok" = 1 ] && need gcc-multilib libcurl4-openssl-dev:i386 liblua5.4-dev:i386 || i386_ok=0
I386_LUA=$ROOT/build-i386/lua-i386
if [ "$i386_ok" = 1 ] && [ ! -f "$I386_LUA/done" ]; then
  rm -rf "$I386_LUA"; mkdir -p "$I386_LUA/debs"
  if (cd "$I386_LUA/debs" && apt-get download lua-filesystem:i386 lua-term:i386 lua-system:i386 lua-cjson:i386) \
      >"$LOGS/i386-debs.log" 2>&1; then
    for deb in "$I386_LUA"/debs/*.deb; do dpkg-deb -x "$deb" "$I386_LUA/root" || i386_ok=0; done
    [ "$i386_ok" = 1 ] && touch "$I386_LUA/done"
  else cat "$LOGS/i386-debs.log"; i386_ok=0; fi
fi
if [ "$i386_ok" = 1 ] && build build-i386 gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/i386-linux-gnu.cmake"; then
  count 1 0 "i386 build (gcc -m32 -Werror)"
  # the suite must really run 32-bit: size_t is 4 bytes in the host
  printf 'assert(string.packsize("T") == 4, "size_t is not 32-bit")\nprint("size_t", string.packsize("T"), "lua_Integer", string.packsize("j"))\n' \
    >build-i386/bits.lua
  if build-i386/lua_host build-i386/bits.lua >"$LOGS/i386-bits.log" 2>&1 && file -L build-i386/nanobanana/core.so | grep -q 'ELF 32-bit'
  then count 1 0 "i386 host and core.so are 32-bit ($(cat "$LOGS/i386-bits.log" | tr '\t' ' '))"
  else cat "$LOGS/i386-bits.log"; count 0 1 "i386 host and core.so are 32-bit"; fi
  (cd build-i386 && ctest --output-on-failure) >"$LOGS/ctest-i386.log" 2>&1 && count 1 0 "ctest (i386)" ||
    { cat "$LOGS/ctest-i386.log"; count 0 1 "ctest (i386)"; }
  # busted.lua puts the unpacked modules on package.cpath (not LUA_CPATH: the
  # specs' amd64 lua5.4 children would inherit it), then runs /usr/bin/busted
  printf 'package.cpath = [[%s]] .. package.cpath\narg[0] = "/usr/bin/busted"\ndofile("/usr/bin/busted")\n' \
    "$I386_LUA/root/usr/lib/i386-linux-gnu/lua/5.4/?.so;" >build-i386/busted.lua
  NB_CPATH="build-i386/?.so" run_busted "busted (i386)" "$LOGS/busted-i386.log" \
    sh -c 'shift 2; exec build-i386/lua_host build-i386/busted.lua "$@"' sh
elif [ "$i386_ok" = 1 ]; then tail -30 "$LOGS/cmake-build-i386.log"; count 0 1 "i386 build (gcc -m32 -Werror)"
else tail -20 "$LOGS/deps.log"; count 0 1 "i386 packages"; fi
