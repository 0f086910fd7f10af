say "event loops: nanobanana.loop on Debian's lua-luv and lua-cqueues (spec/30-loop_spec.lua, none skipped)"
# 30-busted runs this spec too, but skips a part whose library is missing;
# here the libraries are installed first and a skip counts as a failure.
need lua-luv lua-cqueues
lua5.4 /usr/bin/busted -o TAP spec/30-loop_spec.lua >"$LOGS/loops.log" 2>&1
loops_rc=$?
loops_ok=$(grep '^ok ' "$LOGS/loops.log" | grep -vc '# SKIP')
loops_bad=$(grep -c '^not ok \|# SKIP' "$LOGS/loops.log")
if [ "$loops_rc" != 0 ] && [ "$loops_bad" = 0 ]; then loops_bad=1; fi
if [ "$loops_bad" != 0 ] || [ "$loops_ok" = 0 ]; then grep -A25 '^not ok \|# SKIP' "$LOGS/loops.log" | head -80; tail -5 "$LOGS/loops.log"; fi
count "$loops_ok" "$loops_bad" "loop adapters (luv, cqueues; lua5.4)"
grep '^luv idle:\|^cqueues idle:' "$LOGS/loops.log"
