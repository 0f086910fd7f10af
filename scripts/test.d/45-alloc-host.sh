say "C host with its own capped, counting allocator: a 4K generation (lua_getallocf unchanged, cap held, swap, lua_close)"
# tests/host/alloc_host.c: Lua's bytes capped at 4 MiB while a 24 MiB image
# is received, sized and saved (img.data never read); the host's allocator
# stays the state's; the host swaps allocators and closes cleanly.
start_fake AH_PORT --no-record --noise-bytes 24M
AH_DIR=$(mktemp -d)
at_exit "rm -rf '$AH_DIR'"
# the image the server sends for that request, decoded independently
AH_MODEL=gemini-3-pro-image-preview
curl -s -H 'x-goog-api-key: test-key' -H 'Content-Type: application/json' \
  -d '{"contents":[{"role":"user","parts":[{"text":"nanobanana alloc host"}]}],"generationConfig":{"imageConfig":{"imageSize":"4K"}}}' \
  "http://127.0.0.1:$AH_PORT/v1beta/models/$AH_MODEL:generateContent" -o "$AH_DIR/answer.json"
AH_SHA=$(python3 -c 'import base64,hashlib,json,sys
parts = json.load(open(sys.argv[1]))["candidates"][0]["content"]["parts"]
img = [p for p in parts if "inlineData" in p and not p.get("thought")][-1]
print(hashlib.sha256(base64.b64decode(img["inlineData"]["data"])).hexdigest())' "$AH_DIR/answer.json")
rm -f "$AH_DIR/answer.json"
alloc_host_run() { # label build-dir [prefix command...]
  local label=$1 dir=$2; shift 2
  rm -f "$AH_DIR/out.png"
  if env LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/$dir/?.so;;" \
      "$@" "$ROOT/$dir/alloc_host" 4 tests/host/alloc_host_4k.lua "http://127.0.0.1:$AH_PORT" "$AH_DIR/out.png" \
      >"$LOGS/alloc-host-$label.log" 2>&1 &&
     grep -q '^alloc_host: ok ' "$LOGS/alloc-host-$label.log" &&
     [ "$(sha256sum <"$AH_DIR/out.png" | cut -d' ' -f1)" = "$AH_SHA" ]; then
    count 1 0 "alloc host ($label): $(grep -o 'peak=[0-9]* cap=[0-9]*' "$LOGS/alloc-host-$label.log"), saved image's sha256 matches"
  else cat "$LOGS/alloc-host-$label.log"; count 0 1 "alloc host ($label)"; fi
}
alloc_host_run plain build
if [ -z "${NB_QUICK:-}" ]; then
  alloc_host_run valgrind build valgrind --quiet --fair-sched=yes --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite --show-leak-kinds=definite
  # the same build as 85-asan.sh (it then finds it built)
  if build build-asan gcc -DCMAKE_BUILD_TYPE=Debug -DNB_SANITIZE=ON; then
    alloc_host_run asan build-asan env ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  else tail -30 "$LOGS/cmake-build-asan.log"; count 0 1 "asan build (alloc host)"; fi
fi
