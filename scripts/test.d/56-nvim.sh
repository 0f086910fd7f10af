say "Neovim (LuaJIT, vim.loop): examples/nvim headless against the fake server"
# :NanoBanana on a 4K request (a 24 MiB image, 1 s of server latency and a 1 s
# pause in the body) while an editor timer ticks every 10 ms and keys are typed
need neovim
if build build-luajit gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNB_LUA_VERSION=luajit -DNB_TESTS=OFF; then
  NVIM_OUT=$(mktemp -d)
  at_exit "rm -rf '$NVIM_OUT'"
  start_fake NVIM_PORT --latency-ms 1000 --noise-bytes 24M
  # the bounds are about the editor and the library, not about what else runs
  # on a shared 2-core machine: the editor at nice -10, up to three attempts
  nvim_ok=0
  for attempt in 1 2 3; do
    rm -f "$NVIM_OUT"/report.txt "$NVIM_OUT"/nanobanana-*
    (cd "$NVIM_OUT" && env -u GOOGLE_API_KEY -u GEMINI_API_KEY NB_ROOT="$ROOT" NB_OUT="$NVIM_OUT" \
        NB_FAKE_URL="http://127.0.0.1:$NVIM_PORT" NB_LUA_CPATH="$ROOT/build-luajit/?.so" \
        timeout 120 nice -n -10 nvim --headless -u NONE -i NONE -c "luafile $ROOT/examples/nvim/test/headless.lua") \
      >"$LOGS/nvim.log" 2>&1
    nvim_rc=$?
    echo "attempt $attempt (load $(cut -d' ' -f1 /proc/loadavg)):"
    grep '^nvim:\|^nvim-note\|^FAIL' "$NVIM_OUT/report.txt" 2>/dev/null
    if [ "$nvim_rc" = 0 ]; then nvim_ok=1; break; fi
    # 3: overloaded machine, only the library's steps bounded: accepted on the last attempt
    if [ "$nvim_rc" = 3 ] && [ "$attempt" = 3 ]; then nvim_ok=1; fi
  done
  if [ "$nvim_ok" = 1 ]; then
    count 1 0 "Neovim :NanoBanana (editor timer on time, typing works, file intact)"
  else
    cat "$NVIM_OUT/report.txt" 2>/dev/null || tail -30 "$LOGS/nvim.log"
    count 0 1 "Neovim :NanoBanana"
  fi
else tail -30 "$LOGS/cmake-build-luajit.log"; count 0 1 "build for LuaJIT (Neovim)"; fi
