#!/usr/bin/env bash
# Builds nanobanana (if needed) and the embed demo, starts the bundled fake
# Gemini server on 127.0.0.1, runs examples/embed/frame_loop.lua in the
# 60 Hz host, stops the server and exits with the demo's exit code.
#
#   examples/embed/run_against_fake.sh [--count N] [--frames N] [--hz HZ]
#       [--budget-ms MS] [--trace FILE] [--out DIR] [--valgrind] [-- fake-server args...]
#
# e.g. 4K-class images (8 x ~25 MB, half a second of server latency each):
#   examples/embed/run_against_fake.sh --count 8 -- --latency-ms 500 --noise-bytes 25000000
#
# Environment: NB_BUILD_DIR (the nanobanana build tree, default build/; it
# is configured and built there if it has no nanobanana/core.so yet),
# EMBED_DEMO (use this embed_demo binary instead of building one), CC
# (default cc), EMBED_CFLAGS (extra flags, e.g. -fsanitize=address).
set -euo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

count=4 frames=3600 hz=60 budget='' out='' trace='' wrap=()
server_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --count) count=$2; shift 2 ;;
    --frames) frames=$2; shift 2 ;;
    --hz) hz=$2; shift 2 ;;
    --budget-ms) budget=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --trace) trace=$2; shift 2 ;;
    --valgrind) wrap=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
                      --show-leak-kinds=definite --child-silent-after-fork=yes); shift ;;
    --) shift; server_args=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_against_fake.sh: unknown argument $1 (server arguments go after --)" >&2; exit 1 ;;
  esac
done

# ---------------------------------------------------------------- build
BUILD=${NB_BUILD_DIR:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
if [ ! -f "$BUILD/nanobanana/core.so" ]; then
  echo "== building nanobanana ($BUILD)"
  cmake -S . -B "$BUILD" -DNB_TESTS=OFF >/dev/null
  cmake --build "$BUILD" -j2 >/dev/null
fi

demo=${EMBED_DEMO:-}
if [ -z "$demo" ]; then
  demo=$BUILD/embed_demo
  src=examples/embed/main.c
  # a CMake-built build/embed_demo is used as is when it is newer than main.c
  if [ ! -x "$demo" ] || [ "$src" -nt "$demo" ] || [ -n "${EMBED_CFLAGS:-}" ]; then
    [ -n "${EMBED_CFLAGS:-}" ] && demo=$BUILD/embed_demo-custom
    lua_cflags=$(pkg-config --cflags lua5.4 2>/dev/null || echo "-I/usr/include/lua5.4")
    lua_libs=$(pkg-config --libs lua5.4 2>/dev/null || echo "-llua5.4")
    # shellcheck disable=SC2086
    ${CC:-cc} -std=c99 -Wall -Wextra -Werror -O2 -g ${EMBED_CFLAGS:-} $lua_cflags \
      "$src" -o "$demo" $lua_libs -lm
  fi
fi

# ---------------------------------------------------------------- fake server
tmp=$(mktemp -d)
server_pid=
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
python3 fake/gemini_server.py --port 0 --port-file "$tmp/port" --quiet ${server_args[@]+"${server_args[@]}"} \
  >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 200); do
  [ -s "$tmp/port" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.05
done
if [ ! -s "$tmp/port" ]; then
  echo "run_against_fake.sh: the fake server did not start:" >&2
  cat "$tmp/server.log" >&2
  exit 1
fi
port=$(cat "$tmp/port")

[ -n "$out" ] || out=$tmp/out
mkdir -p "$out"

# ---------------------------------------------------------------- the demo
demo_args=(examples/embed/frame_loop.lua --frames "$frames" --hz "$hz")
[ -n "$budget" ] && demo_args+=(--budget-ms "$budget")
[ -n "$trace" ] && demo_args+=(--trace "$trace")
demo_args+=(-- --count "$count" --out "$out")
rc=0
# loopback only: no proxy from the environment may see this traffic
env -u GOOGLE_API_KEY -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY \
  NO_PROXY='127.0.0.1,localhost,::1' no_proxy='127.0.0.1,localhost,::1' \
  LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$BUILD/?.so;;" \
  GOOGLE_GEMINI_BASE_URL="http://127.0.0.1:$port" GEMINI_API_KEY=test-key \
  ${wrap[@]+"${wrap[@]}"} "$demo" "${demo_args[@]}" || rc=$?
exit "$rc"
