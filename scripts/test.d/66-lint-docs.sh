say "reference docs (LDoc) and lint (luacheck, cppcheck)"
# lua-ldoc, lua-check and cppcheck are in deps.sh --test; need is a no-op then
need lua-ldoc lua-check cppcheck || true
# the HTML reference, kept as an artefact in build/doc/ (config.ld)
rm -rf build/doc
# (an LDoc warning fails the step, but "contains no items": a module with
# private functions only)
ldoc . >"$LOGS/ldoc.log" 2>&1; rc=$?
ldoc_warnings=$(grep -E '^[^ ]+:[0-9]+: ' "$LOGS/ldoc.log" | grep -v ': contains no items$' || true)
if [ "$rc" = 0 ] && [ -z "$ldoc_warnings" ] && [ -f build/doc/index.html ]; then
  count 1 0 "ldoc: reference in build/doc ($(ls build/doc/modules | wc -l) modules, $(ls build/doc/topics | wc -l) topics)"
else echo "$ldoc_warnings" | head -40; [ "$rc" = 0 ] || tail -20 "$LOGS/ldoc.log"; count 0 1 "ldoc (warnings are errors)"; fi
# every public function has an LDoc comment; every option is in README's Options
if lua5.4 scripts/doc_check.lua >"$LOGS/doc-check.log" 2>&1; then count 1 0 "$(tail -1 "$LOGS/doc-check.log")"
else head -40 "$LOGS/doc-check.log"; count 0 1 "doc check (public functions and options documented)"; fi
# .luacheckrc holds the configuration; any warning fails
if luacheck --no-color --codes lua spec examples bin/nanobanana >"$LOGS/luacheck.log" 2>&1
then count 1 0 "luacheck ($(grep -oE '[0-9]+ files' "$LOGS/luacheck.log" | tail -1), no warnings)"
else grep -E '^ +[^ ]+:[0-9]+:[0-9]+:' "$LOGS/luacheck.log" | head -40; tail -1 "$LOGS/luacheck.log"; count 0 1 "luacheck"; fi
# scripts/cppcheck.sh lists the checks and the justified suppressions
if bash scripts/cppcheck.sh >"$LOGS/cppcheck.log" 2>&1; then count 1 0 "cppcheck over src/ (no findings)"
else head -40 "$LOGS/cppcheck.log"; count 0 1 "cppcheck over src/"; fi
