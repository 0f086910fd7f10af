say "official JS SDK (@google/genai) against the same fake server"
if [ -f spec/sdk/sdk_parity.test.mjs ]; then
  (cd spec/sdk && { [ -d node_modules/@google/genai ] || npm ci --no-audit --no-fund --loglevel=error; }) >"$LOGS/npm.log" 2>&1 || cat "$LOGS/npm.log"
  node --test spec/sdk/ >"$LOGS/sdk.log" 2>&1
  ok=$(sed -nE 's/^# pass ([0-9]+)/\1/p' "$LOGS/sdk.log"); bad=$(sed -nE 's/^# fail ([0-9]+)/\1/p' "$LOGS/sdk.log")
  [ "${bad:-1}" != 0 ] && tail -60 "$LOGS/sdk.log"
  count "${ok:-0}" "${bad:-1}" "sdk parity"
fi
