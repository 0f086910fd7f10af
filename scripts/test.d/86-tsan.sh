[ -n "${NB_QUICK:-}" ] && return 0 # NB_QUICK=1: no fuzzing, sanitizers or valgrind
say "busted under ThreadSanitizer (clang; the engine's worker thread)"
# report_thread_leaks=0: a process that exits without lua_close (the CLI's os.exit) leaves
# its engine worker running by design (close() and GC never wait for it); races are still reported
# clang links the TSan runtime into executables only: busted runs in
# tests/host/lua_host built with TSan, loading a TSan-built core.so
if build build-tsan clang -DCMAKE_BUILD_TYPE=Debug -DNB_TSAN=ON; then
  NB_CPATH="build-tsan/?.so" run_busted "busted under TSan" "$LOGS/busted-tsan.log" \
    env TSAN_OPTIONS=halt_on_error=0:report_thread_leaks=0 NB_SLOW=1 sh -c 'shift; exec build-tsan/lua_host "$@"' sh
  if grep -q "WARNING: ThreadSanitizer" "$LOGS/busted-tsan.log"; then
    grep -A30 "WARNING: ThreadSanitizer" "$LOGS/busted-tsan.log" | head -80
    count 0 1 "thread sanitizer reports"
  else count 1 0 "thread sanitizer reports (none)"; fi
else tail -30 "$LOGS/cmake-build-tsan.log"; count 0 1 "tsan build"; fi
