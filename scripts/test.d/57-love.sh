say "LÖVE 11.4 (LuaJIT) under Xvfb: examples/love self-test against the fake server"
# The app runs on LuaJIT, so the core is built for it (as in 40-lua-versions).
# Mesa's llvmpipe renders under Xvfb; one rasteriser thread (LP_NUM_THREADS=1)
# keeps it from taking both cores of a small machine from the game's thread.
need love xvfb xauth
if build build-luajit gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNB_LUA_VERSION=luajit -DNB_TESTS=OFF; then
  LOVE_OUT=$(mktemp -d)
  at_exit "rm -rf '$LOVE_OUT'"
  LOVE_FAKE=$(mktemp -d) # start_fake's way, at nice 10
  nice -n 10 python3 fake/gemini_server.py --port 0 --port-file "$LOVE_FAKE/port" --quiet --latency-ms 300 \
    >"$LOVE_FAKE/log" 2>&1 &
  at_exit "kill $! 2>/dev/null; rm -rf '$LOVE_FAKE'"
  for _ in $(seq 200); do [ -s "$LOVE_FAKE/port" ] && break; sleep 0.05; done
  LOVE_PORT=$(cat "$LOVE_FAKE/port")
  # the fake server makes each image once (a 24 MiB PNG takes it ~0.4 s): ask for
  # the self-test's images first, so the game competes with transfers, not with that
  LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/build/?.so;;" GEMINI_API_KEY=test-key \
    GOOGLE_GEMINI_BASE_URL="http://127.0.0.1:$LOVE_PORT" lua5.4 -e '
      local c = require("nanobanana").new { model = "gemini-3-pro-image" }
      for _, s in ipairs { "1K", "2K", "4K" } do assert(c:generate("warm", { imageConfig = { imageSize = s } })) end
      assert(c:generate("warm [[fault:huge:24M]]", { imageConfig = { imageSize = "4K" } }))' >"$LOGS/love.log" 2>&1
  # The frame bound is about the game and the library, not about what else
  # runs on a shared 2-core machine: the game runs at nice -10, the fake server
  # at nice 10, and a run that misses the bound is tried up to twice more (each shown).
  love_ok=0
  for attempt in 1 2 3; do
    rm -rf "${LOVE_OUT:?}"/*
    (env -u GOOGLE_API_KEY LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/build-luajit/?.so;;" \
       GEMINI_API_KEY=test-key GOOGLE_GEMINI_BASE_URL="http://127.0.0.1:$LOVE_PORT" LP_NUM_THREADS=1 \
       timeout 180 nice -n -10 xvfb-run -a -s "-screen 0 800x600x24" love examples/love --selftest "$LOVE_OUT") \
      >>"$LOGS/love.log" 2>&1
    love_rc=$?
    mkdir -p build/artefacts
    cp "$LOVE_OUT/screenshot.png" build/artefacts/love-selftest.png 2>/dev/null
    cp "$LOVE_OUT/selftest.json" build/artefacts/love-selftest.json 2>/dev/null
    python3 examples/love/check_selftest.py "$LOVE_OUT" "http://127.0.0.1:$LOVE_PORT" >"$LOGS/love-check.log" 2>&1
    check_rc=$?
    echo "attempt $attempt (load $(cut -d' ' -f1 /proc/loadavg)):"; grep '^love:\|^love-note\|^FAIL' "$LOGS/love-check.log"
    if [ "$love_rc" = 0 ] && [ "$check_rc" = 0 ]; then love_ok=1; break; fi
    # 3: overloaded machine, frames bounded by CPU time only: accepted on the last attempt
    if [ "$love_rc" = 0 ] && [ "$check_rc" = 3 ] && [ "$attempt" = 3 ]; then love_ok=1; fi
  done
  if [ "$love_ok" = 1 ]; then
    count 1 0 "LÖVE self-test (frames, textures, bytes, screenshot: build/artefacts/love-selftest.png)"
    grep '^love-job' "$LOGS/love-check.log"
  else
    echo "love exit $love_rc"; tail -20 "$LOGS/love.log"; cat "$LOGS/love-check.log"
    count 0 1 "LÖVE self-test"
  fi
else tail -30 "$LOGS/cmake-build-luajit.log"; count 0 1 "build for LuaJIT (LÖVE)"; fi
