say "Lua 5.1, 5.2, 5.3 and LuaJIT: builds (gcc -Werror) and the busted suite"
for v in 5.1 5.2 5.3 luajit; do
  interp=lua$v; [ "$v" = luajit ] && interp=luajit
  if build "build-$v" gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNB_LUA_VERSION="$v" -DNB_TESTS=OFF; then
    count 1 0 "build for $interp"
    NB_CPATH="build-$v/?.so" run_busted "busted ($interp)" "$LOGS/busted-$v.log" \
      env INTERP="$interp" sh -c 'shift; exec "$INTERP" "$@"' sh
    if [ "$v" = luajit ]; then # game engines embed LuaJIT: the 60 Hz host on it
      if (NB_BUILD_DIR="$ROOT/build-luajit" EMBED_DEMO="$ROOT/build-luajit/embed_demo" \
          bash examples/embed/run_against_fake.sh --count 4) >"$LOGS/ex-embed-luajit.log" 2>&1
      then count 1 0 "example embed (60 Hz host, LuaJIT)"; grep '^embed:' "$LOGS/ex-embed-luajit.log"
      else tail -30 "$LOGS/ex-embed-luajit.log"; count 0 1 "example embed (60 Hz host, LuaJIT)"; fi
    fi
  else tail -30 "$LOGS/cmake-build-$v.log"; count 0 1 "build for $interp"; fi
done
