say "cookbook (docs/cookbook.md): blocks equal their files; every recipe runs against the fake server"
if python3 examples/cookbook/check_cookbook.py "$ROOT" >"$LOGS/cookbook-check.log" 2>&1; then
  count 1 0 "cookbook blocks equal examples/cookbook/*"
else cat "$LOGS/cookbook-check.log"; count 0 1 "cookbook blocks equal examples/cookbook/*"; fi
need lua-luv lua-cqueues lua-socket neovim love xvfb xauth
start_fake CB_PORT --latency-ms 200
CB_DIR=$(mktemp -d)
at_exit "rm -rf '$CB_DIR'"
recipe() { # name expected-files -- command...
  local name=$1 files=$2; shift 3
  local dir="$CB_DIR/$name" f missing=""
  mkdir -p "$dir"
  if (cd "$dir" && env -u GOOGLE_API_KEY LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/build/?.so;;" \
        GEMINI_API_KEY=test-key GOOGLE_GEMINI_BASE_URL="http://127.0.0.1:$CB_PORT" timeout 120 "$@") \
      >"$LOGS/cookbook-$name.log" 2>&1; then
    for f in $files; do # (the default model makes JPEG)
      holds_its_type "$dir/$f" || missing="$missing $f"
    done
    if [ -z "$missing" ]; then count 1 0 "cookbook: $name"; return; fi
    echo "cookbook $name: not the type the name says (or missing):$missing"
  fi
  tail -20 "$LOGS/cookbook-$name.log"; count 0 1 "cookbook: $name"
}
recipe plain "fox.jpg" -- lua5.4 "$ROOT/examples/cookbook/plain.lua"
recipe pipeline "a_lighthouse.jpg a_cat_on_a_windowsill.jpg a_steam_train.jpg" -- lua5.4 "$ROOT/examples/cookbook/pipeline.lua"
recipe luv "boat.jpg kite.jpg kite-red.jpg" -- lua5.4 "$ROOT/examples/cookbook/luv.lua"
recipe cqueues "teapot.jpg bicycle.jpg" -- lua5.4 "$ROOT/examples/cookbook/cqueues.lua"
if gcc -Wall -Wextra -Werror "$ROOT/examples/cookbook/embed.c" $(pkg-config --cflags --libs lua5.4) -o "$CB_DIR/embed-host" \
    >"$LOGS/cookbook-embed-cc.log" 2>&1; then
  recipe embed "out.jpg" -- "$CB_DIR/embed-host" "A lighthouse, woodcut print" out.jpg
else cat "$LOGS/cookbook-embed-cc.log"; count 0 1 "cookbook: embed (gcc -Werror)"; fi
# the LuaJIT hosts: the core built for LuaJIT (as in 56-nvim, 57-love)
if build build-luajit gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNB_LUA_VERSION=luajit -DNB_TESTS=OFF; then
  recipe nvim "imagine.jpg" -- env NB_ROOT="$ROOT" NB_LUA_CPATH="$ROOT/build-luajit/?.so" \
    nvim --headless -u NONE -i NONE -c "luafile $ROOT/examples/cookbook/test/nvim_runner.lua"
  mkdir -p build/artefacts
  recipe love "" -- env LUA_CPATH="$ROOT/build-luajit/?.so;;" NB_RECIPE="$ROOT/examples/cookbook/love/main.lua" \
    NB_WANT=1024x1024 NB_SHOT="$ROOT/build/artefacts/cookbook-love.png" LP_NUM_THREADS=1 \
    xvfb-run -a -s "-screen 0 800x600x24" love "$ROOT/examples/cookbook/test/love"
else tail -30 "$LOGS/cmake-build-luajit.log"; count 0 1 "build for LuaJIT (cookbook)"; fi
