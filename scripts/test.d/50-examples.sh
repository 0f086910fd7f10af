say "examples against the fake server"
FAKE_DIR=$(mktemp -d) # the examples' working directory
at_exit "rm -rf '$FAKE_DIR'"
start_fake PORT
ex() { # name command...
  local name=$1; shift
  if (cd "$FAKE_DIR" && env -u GOOGLE_API_KEY LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" \
      LUA_CPATH="$ROOT/build/?.so;;" GEMINI_API_KEY=test-key GOOGLE_GEMINI_BASE_URL="http://127.0.0.1:$PORT" \
      NB_GATEWAY_URL="http://127.0.0.1:$PORT/v1" NB_GATEWAY_KEY=test-key "$@") >"$LOGS/ex-$name.log" 2>&1; then
    count 1 0 "example $name"; else cat "$LOGS/ex-$name.log"; count 0 1 "example $name"; fi
}
ex text_to_image lua5.4 "$ROOT/examples/text_to_image.lua" "A cute baby sea otter" otter
ex image_to_image lua5.4 "$ROOT/examples/image_to_image.lua" otter.jpg "add a rainbow" edited.png
ex text_to_image_png lua5.4 "$ROOT/examples/text_to_image.lua" "an otter" otter25 gemini-2.5-flash-image
# each file's extension is the image's real type (JPEG from the default model, PNG from 2.5),
# whatever extension was asked for, and nothing is left under the name asked for
for want in otter.jpg:otter.png edited.jpg:edited.png otter25.png:; do
  f=${want%%:*} asked=${want#*:}
  label="example wrote $f, holding what its name says${asked:+ (not $asked)}"
  if holds_its_type "$FAKE_DIR/$f" && { [ -z "$asked" ] || [ ! -e "$FAKE_DIR/$asked" ]; }; then count 1 0 "$label"
  else ls -l "$FAKE_DIR"; count 0 1 "$label"; fi
done
ex gateway lua5.4 "$ROOT/examples/gateway.lua"
ex multi_turn lua5.4 "$ROOT/examples/multi_turn.lua" .
ex stream lua5.4 "$ROOT/examples/stream.lua" "A lighthouse on a cliff at dawn" lighthouse.jpg
ex readme lua5.4 "$ROOT/spec/run_readme.lua" "$ROOT/README.md"
# the 60 Hz C host: 4 generations polled once per frame, all must succeed
if (NB_BUILD_DIR="$ROOT/build" EMBED_DEMO="$ROOT/build/embed_demo" bash examples/embed/run_against_fake.sh --count 4) \
    >"$LOGS/ex-embed.log" 2>&1; then count 1 0 "example embed (60 Hz host)"; grep '^embed:' "$LOGS/ex-embed.log"
else tail -30 "$LOGS/ex-embed.log"; count 0 1 "example embed (60 Hz host)"; fi
