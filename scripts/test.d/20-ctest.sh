say "ctest (C core)"
(cd build && ctest --output-on-failure) >"$LOGS/ctest.log" 2>&1
line=$(grep -E "tests passed, [0-9]+ tests? failed out of" "$LOGS/ctest.log" || true)
total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line"); bad=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
if [ -z "$line" ]; then cat "$LOGS/ctest.log"; count 0 1 "ctest"; else
  [ "$bad" != 0 ] && cat "$LOGS/ctest.log"; count $((total - bad)) "$bad" "ctest"; fi
