#!/usr/bin/env bash
# Installs what the tests need (Debian packages, as root), builds, and runs
# every test: C core unit tests (ctest), a clang -Werror build, the busted
# suite against the fake server, the examples, install checks (cmake and
# luarocks), the official JS SDK cross-check, then the busted suite again
# under ASan+UBSan and under valgrind memcheck; the suite also runs on Lua
# 5.1, 5.3 and LuaJIT builds.
# Ends with one line: "N passed, N failed".
#   NB_QUICK=1 skips the sanitizer and valgrind runs (for development).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export NB_ROOT=$ROOT
LOGS=$ROOT/build/test-logs
PASSED=0
FAILED=0

say() { printf '\n== %s\n' "$*"; }
count() { PASSED=$((PASSED + $1)); FAILED=$((FAILED + $2)); echo "-- $3: $1 passed, $2 failed"; }

bash scripts/deps.sh --test || { echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$LOGS"

# ---------------------------------------------------------------- builds
build() { # dir compiler extra-cmake-args...
  local dir=$1 cc=$2; shift 2
  CC=$cc cmake -S . -B "$dir" -DNB_WERROR=ON -DNB_TESTS=ON "$@" >"$LOGS/cmake-$(basename "$dir").log" 2>&1 &&
    cmake --build "$dir" -j2 >>"$LOGS/cmake-$(basename "$dir").log" 2>&1
}
say "build (gcc, -Wall -Wextra -Werror)"
if build build gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo; then count 1 0 "gcc build"
else cat "$LOGS/cmake-build.log"; count 0 1 "gcc build"; echo "$PASSED passed, $FAILED failed"; exit 1; fi

say "build (clang, -Wall -Wextra -Werror)"
if build build-clang clang -DCMAKE_BUILD_TYPE=Release; then count 1 0 "clang build"
else tail -30 "$LOGS/cmake-build-clang.log"; count 0 1 "clang build"; fi

# ---------------------------------------------------------------- C core unit tests
say "ctest (C core)"
(cd build && ctest --output-on-failure) >"$LOGS/ctest.log" 2>&1
line=$(grep -E "tests passed, [0-9]+ tests? failed out of" "$LOGS/ctest.log" || true)
total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line"); bad=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
if [ -z "$line" ]; then cat "$LOGS/ctest.log"; count 0 1 "ctest"; else
  [ "$bad" != 0 ] && cat "$LOGS/ctest.log"; count $((total - bad)) "$bad" "ctest"; fi

# ---------------------------------------------------------------- busted
run_busted() { # label log [prefix command...]
  local label=$1 log=$2; shift 2
  "$@" lua5.4 /usr/bin/busted -o TAP ${NB_CPATH:+--cpath="$NB_CPATH"} >"$log" 2>&1
  local rc=$? ok bad
  ok=$(grep '^ok ' "$log" | grep -vc '# SKIP'); bad=$(grep -c '^not ok ' "$log") # skipped: not counted
  if [ "$bad" != 0 ] || [ "$ok" = 0 ]; then grep -A25 '^not ok ' "$log" | head -150; fi
  if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then tail -40 "$log"; bad=1; fi
  count "$ok" "$bad" "$label"
}
say "busted (lua5.4, fake server on 127.0.0.1)"
run_busted "busted" "$LOGS/busted.log"

# ---------------------------------------------------------------- other Lua versions
say "Lua 5.1, 5.3 and LuaJIT: builds (gcc -Werror) and the busted suite"
for v in 5.1 5.3 luajit; do
  interp=lua$v; [ "$v" = luajit ] && interp=luajit
  if build "build-$v" gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNB_LUA_VERSION="$v" -DNB_TESTS=OFF; then
    count 1 0 "build for $interp"
    NB_CPATH="build-$v/?.so" run_busted "busted ($interp)" "$LOGS/busted-$v.log" \
      env INTERP="$interp" sh -c 'shift; exec "$INTERP" "$@"' sh
    if [ "$v" = luajit ]; then # game engines embed LuaJIT: the 60 Hz host on it
      if (NB_BUILD_DIR="$ROOT/build-luajit" EMBED_DEMO="$ROOT/build-luajit/embed_demo" \
          bash examples/embed/run_against_fake.sh --count 4) >"$LOGS/ex-embed-luajit.log" 2>&1
      then count 1 0 "example embed (60 Hz host, LuaJIT)"; grep '^embed:' "$LOGS/ex-embed-luajit.log"
      else tail -30 "$LOGS/ex-embed-luajit.log"; count 0 1 "example embed (60 Hz host, LuaJIT)"; fi
    fi
  else tail -30 "$LOGS/cmake-build-$v.log"; count 0 1 "build for $interp"; fi
done

# ---------------------------------------------------------------- examples
say "examples against the fake server"
FAKE_DIR=$(mktemp -d)
python3 fake/gemini_server.py --port 0 --port-file "$FAKE_DIR/port" --quiet >"$FAKE_DIR/log" 2>&1 &
FAKE_PID=$!
trap 'kill $FAKE_PID 2>/dev/null; rm -rf "$FAKE_DIR"' EXIT
for _ in $(seq 100); do [ -s "$FAKE_DIR/port" ] && break; sleep 0.05; done
PORT=$(cat "$FAKE_DIR/port")
ex() { # name command...
  local name=$1; shift
  if (cd "$FAKE_DIR" && env -u GOOGLE_API_KEY LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" \
      LUA_CPATH="$ROOT/build/?.so;;" GEMINI_API_KEY=test-key GOOGLE_GEMINI_BASE_URL="http://127.0.0.1:$PORT" \
      NB_GATEWAY_URL="http://127.0.0.1:$PORT/v1" NB_GATEWAY_KEY=test-key "$@") >"$LOGS/ex-$name.log" 2>&1; then
    count 1 0 "example $name"; else cat "$LOGS/ex-$name.log"; count 0 1 "example $name"; fi
}
ex text_to_image lua5.4 "$ROOT/examples/text_to_image.lua" "A cute baby sea otter" otter.png
ex image_to_image lua5.4 "$ROOT/examples/image_to_image.lua" otter.png "add a rainbow" edited.png
ex gateway lua5.4 "$ROOT/examples/gateway.lua"
ex multi_turn lua5.4 "$ROOT/examples/multi_turn.lua" .
ex stream lua5.4 "$ROOT/examples/stream.lua" "A lighthouse on a cliff at dawn" lighthouse.jpg
ex readme lua5.4 "$ROOT/spec/run_readme.lua" "$ROOT/README.md"
# the 60 Hz C host: 4 generations polled once per frame, all must succeed
if (NB_BUILD_DIR="$ROOT/build" EMBED_DEMO="$ROOT/build/embed_demo" bash examples/embed/run_against_fake.sh --count 4) \
    >"$LOGS/ex-embed.log" 2>&1; then count 1 0 "example embed (60 Hz host)"; grep '^embed:' "$LOGS/ex-embed.log"
else tail -30 "$LOGS/ex-embed.log"; count 0 1 "example embed (60 Hz host)"; fi

# ---------------------------------------------------------------- install checks
say "install: cmake --install and luarocks make"
PREFIX=$(mktemp -d)
if cmake --install build --prefix "$PREFIX" >"$LOGS/install.log" 2>&1 &&
   P="$PREFIX" LUA_PATH="$PREFIX/share/lua/5.4/?.lua;$PREFIX/share/lua/5.4/?/init.lua;;" LUA_CPATH="$PREFIX/lib/lua/5.4/?.so;;" \
   lua5.4 -e 'local nb = require "nanobanana"; assert(package.searchpath("nanobanana.core", package.cpath):find(os.getenv("P"), 1, true)); print(nb._VERSION)' \
   >>"$LOGS/install.log" 2>&1 &&
   LUA_PATH="$PREFIX/share/lua/5.4/?.lua;$PREFIX/share/lua/5.4/?/init.lua;;" LUA_CPATH="$PREFIX/lib/lua/5.4/?.so;;" \
   "$PREFIX/bin/nanobanana" --version >>"$LOGS/install.log" 2>&1; then count 1 0 "cmake --install"
else cat "$LOGS/install.log"; count 0 1 "cmake --install"; fi
TREE=$(mktemp -d)
# Debian keeps curl/curl.h under the multiarch include dir, where luarocks does not look
CURL_H=$(echo '#include <curl/curl.h>' | cpp -H -o /dev/null 2>&1 | grep -m1 'curl/curl.h' | sed 's/^\.* //')
CURL_INCDIR=$(dirname "$(dirname "$CURL_H")")
SRC=$(mktemp -d) # luarocks make builds in the source tree: give it a copy
cp -r lua src bin nanobanana-*.rockspec "$SRC"/
if (cd "$SRC" && luarocks --lua-version 5.4 make --tree "$TREE" --deps-mode=none nanobanana-*.rockspec CURL_INCDIR="$CURL_INCDIR" &&
    eval "$(luarocks --lua-version 5.4 --tree "$TREE" path)" &&
    lua5.4 -e 'local nb = require "nanobanana"; assert(nb.new{api_key="k"}); print(nb._VERSION)' &&
    "$TREE/bin/nanobanana" --version) >"$LOGS/luarocks.log" 2>&1
then count 1 0 "luarocks make"; else cat "$LOGS/luarocks.log"; count 0 1 "luarocks make"; fi
rm -rf "$PREFIX" "$TREE" "$SRC"

# ---------------------------------------------------------------- official JS SDK cross-check
say "official JS SDK (@google/genai) against the same fake server"
if [ -f spec/sdk/sdk_parity.test.mjs ]; then
  (cd spec/sdk && { [ -d node_modules/@google/genai ] || npm ci --no-audit --no-fund --loglevel=error; }) >"$LOGS/npm.log" 2>&1 || cat "$LOGS/npm.log"
  node --test spec/sdk/ >"$LOGS/sdk.log" 2>&1
  ok=$(sed -nE 's/^# pass ([0-9]+)/\1/p' "$LOGS/sdk.log"); bad=$(sed -nE 's/^# fail ([0-9]+)/\1/p' "$LOGS/sdk.log")
  [ "${bad:-1}" != 0 ] && tail -60 "$LOGS/sdk.log"
  count "${ok:-0}" "${bad:-1}" "sdk parity"
fi

# ---------------------------------------------------------------- sanitizers and fuzzing
if [ -z "${NB_QUICK:-}" ]; then
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

  say "busted under ThreadSanitizer (clang; the engine's worker thread)"
  # clang links the TSan runtime into executables only: busted runs in
  # tests/host/lua_host built with TSan, loading a TSan-built core.so
  if build build-tsan clang -DCMAKE_BUILD_TYPE=Debug -DNB_TSAN=ON; then
    NB_CPATH="build-tsan/?.so" run_busted "busted under TSan" "$LOGS/busted-tsan.log" \
      env TSAN_OPTIONS=halt_on_error=0 NB_SLOW=1 sh -c 'shift; exec build-tsan/lua_host "$@"' sh
    if grep -q "WARNING: ThreadSanitizer" "$LOGS/busted-tsan.log"; then
      grep -A30 "WARNING: ThreadSanitizer" "$LOGS/busted-tsan.log" | head -80
      count 0 1 "thread sanitizer reports"
    else count 1 0 "thread sanitizer reports (none)"; fi
  else tail -30 "$LOGS/cmake-build-tsan.log"; count 0 1 "tsan build"; fi

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
fi

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
