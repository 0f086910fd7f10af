[ -n "${NB_QUICK:-}" ] && return 0 # NB_QUICK=1: no fuzzing, sanitizers or valgrind
say "busted under valgrind memcheck"
# --fair-sched=yes: valgrind runs one thread at a time, and its default lock
# lets a busy-polling main thread starve the engine's worker for seconds
run_busted "busted under valgrind" "$LOGS/busted-valgrind.log" \
  env NB_SLOW=1 valgrind --quiet --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --child-silent-after-fork=yes
if grep -qE "^==[0-9]+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|.*definitely lost)" "$LOGS/busted-valgrind.log"; then
  grep -A20 -E "^==[0-9]+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|.*definitely lost)" "$LOGS/busted-valgrind.log" | head -80
  count 0 1 "valgrind reports"
else count 1 0 "valgrind reports (none)"; fi
