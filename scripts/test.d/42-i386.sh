say "32-bit: i386 builds (gcc -m32, Debian multiarch) for Lua 5.4 and LuaJIT, ctest and the busted suite"
# Only i386 *library* packages are installed (they are Multi-Arch: same and
# sit beside the amd64 ones; deps.sh refuses any install that would remove a
# package). The interpreter is tests/host/lua_host built with -m32 against
# liblua5.4:i386 (and libluajit-5.1:i386); busted's own C modules (lfs,
# term.core, system.core), lua-cjson and LuaSocket for i386 are unpacked from their .debs into build-i386/lua-i386
# without installing them (lua-term:i386 cannot sit beside lua-term:amd64).
i386_ok=1
if ! dpkg --print-foreign-architectures | grep -qx i386; then
  { dpkg --add-architecture i386 && apt-get update -qq; } >>"$LOGS/deps.log" 2>&1 || i386_ok=0
fi
[ "$i386_ok" = 1 ] && need gcc-multilib libcurl4-openssl-dev:i386 liblua5.4-dev:i386 libluajit-5.1-dev:i386 || i386_ok=0
I386_LUA=$ROOT/build-i386/lua-i386
# (busted's modules, lua-cjson, and LuaSocket for the specs that use it)
I386_DEBS="lua-filesystem:i386 lua-term:i386 lua-system:i386 lua-cjson:i386 lua-socket:i386"
if [ "$i386_ok" = 1 ] && [ "$(cat "$I386_LUA/done" 2>/dev/null)" != "$I386_DEBS" ]; then
  rm -rf "$I386_LUA"; mkdir -p "$I386_LUA/debs"
  # shellcheck disable=SC2086
  if (cd "$I386_LUA/debs" && apt-get download $I386_DEBS) >"$LOGS/i386-debs.log" 2>&1; then
    for deb in "$I386_LUA"/debs/*.deb; do dpkg-deb -x "$deb" "$I386_LUA/root" || i386_ok=0; done
    [ "$i386_ok" = 1 ] && echo "$I386_DEBS" >"$I386_LUA/done"
  else cat "$LOGS/i386-debs.log"; i386_ok=0; fi
fi
# Lua 5.4 (lua_Integer 64-bit) and LuaJIT (lua_Integer = ptrdiff_t: 32-bit here)
for v in 5.4 luajit; do
  [ "$i386_ok" = 1 ] || break
  dir=build-i386; abi=5.4; [ "$v" = luajit ] && dir=build-i386-luajit abi=5.1
  tests=ON; [ "$v" = luajit ] && tests=OFF # the C unit tests do not depend on the Lua
  if build "$dir" gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNB_LUA_VERSION="$v" -DNB_TESTS=$tests \
      -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/i386-linux-gnu.cmake"; then
    count 1 0 "i386 build for $v (gcc -m32 -Werror)"
    # the suite must really run 32-bit: a 4-byte size_t in the host, a 32-bit core.so
    printf 'local ok, n = pcall(string.packsize, "T")\nassert(not ok or n == 4, "size_t is not 32-bit")\nprint(jit and jit.arch or ("size_t " .. n))\n' \
      >"$dir/bits.lua"
    if "$dir/lua_host" "$dir/bits.lua" >"$LOGS/i386-bits-$v.log" 2>&1 && grep -qE '^(x86|size_t 4)$' "$LOGS/i386-bits-$v.log" &&
       file -L "$dir/nanobanana/core.so" | grep -q 'ELF 32-bit'
    then count 1 0 "i386 host and core.so for $v are 32-bit ($(cat "$LOGS/i386-bits-$v.log"))"
    else cat "$LOGS/i386-bits-$v.log"; count 0 1 "i386 host and core.so for $v are 32-bit"; fi
    if [ "$v" = 5.4 ]; then
      (cd "$dir" && ctest --output-on-failure) >"$LOGS/ctest-i386.log" 2>&1 && count 1 0 "ctest (i386)" ||
        { cat "$LOGS/ctest-i386.log"; count 0 1 "ctest (i386)"; }
    fi
    # busted.lua puts the unpacked modules on package.cpath (not LUA_CPATH: the
    # specs' amd64 lua5.4 children would inherit it), then runs /usr/bin/busted
    printf 'package.cpath = [[%s]] .. package.cpath\narg[0] = "/usr/bin/busted"\ndofile("/usr/bin/busted")\n' \
      "$I386_LUA/root/usr/lib/i386-linux-gnu/lua/$abi/?.so;" >"$dir/busted.lua"
    NB_CPATH="$dir/?.so" I386_DIR=$dir run_busted "busted (i386, $v)" "$LOGS/busted-i386-$v.log" \
      sh -c 'shift 2; exec "$I386_DIR/lua_host" "$I386_DIR/busted.lua" "$@"' sh
  else tail -30 "$LOGS/cmake-$dir.log"; count 0 1 "i386 build for $v (gcc -m32 -Werror)"; fi
done
[ "$i386_ok" = 1 ] || { tail -20 "$LOGS/deps.log"; count 0 1 "i386 packages"; }
