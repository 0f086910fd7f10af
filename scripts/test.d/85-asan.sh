[ -n "${NB_QUICK:-}" ] && return 0 # NB_QUICK=1: no fuzzing, sanitizers or valgrind
say "busted under ASan+UBSan"
if build build-asan gcc -DCMAKE_BUILD_TYPE=Debug -DNB_SANITIZE=ON; then
  (cd build-asan && ctest) >"$LOGS/ctest-asan.log" 2>&1 && count 1 0 "ctest under ASan" ||
    { cat "$LOGS/ctest-asan.log"; count 0 1 "ctest under ASan"; }
  NB_CPATH="build-asan/?.so" run_busted "busted under ASan+UBSan" "$LOGS/busted-asan.log" \
    env LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 NB_CPATH="build-asan/?.so" NB_SLOW=1
  if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$LOGS/busted-asan.log"; then
    grep -A30 -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$LOGS/busted-asan.log" | head -80
    count 0 1 "sanitizer reports"
  else count 1 0 "sanitizer reports (none)"; fi
else tail -30 "$LOGS/cmake-build-asan.log"; count 0 1 "asan build"; fi
