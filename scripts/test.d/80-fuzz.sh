[ -n "${NB_QUICK:-}" ] && return 0 # NB_QUICK=1: no fuzzing, sanitizers or valgrind
say "fuzzing the C core (libFuzzer + ASan/UBSan, ${NB_FUZZ_SECONDS:-15} s each)"
if build build-fuzz clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNB_FUZZ=ON; then
  for f in scan sniff b64 sse; do
    corpus=$(mktemp -d); cp fuzz/corpus/$f/* "$corpus"/
    if (cd "$corpus" && "$ROOT/build-fuzz/fuzz_$f" -max_total_time="${NB_FUZZ_SECONDS:-15}" -print_final_stats=1 .) \
        >"$LOGS/fuzz-$f.log" 2>&1; then
      count 1 0 "fuzz_$f ($(grep -m1 -oE 'stat::number_of_executed_units: *[0-9]+' "$LOGS/fuzz-$f.log" | grep -oE '[0-9]+$') runs)"
    else grep -A30 -E "ERROR|deadly" "$LOGS/fuzz-$f.log" | head -50; count 0 1 "fuzz_$f"; fi
    rm -rf "$corpus"
  done
else tail -30 "$LOGS/cmake-build-fuzz.log"; count 0 1 "fuzz build"; fi
