#!/usr/bin/env bash
# The demo: installs what it needs (Debian packages, as root), builds and
# installs nanobanana, and makes a real image from a prompt:
#   "A cute baby sea otter" -> out/sea-otter.jpg (the extension: the image's real type)
# With GOOGLE_API_KEY or GEMINI_API_KEY set it calls the real API (or
# GOOGLE_GEMINI_BASE_URL); otherwise it starts the bundled fake server on
# 127.0.0.1 and talks to that.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/deps.sh
cmake -S . -B build -DNB_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 >/dev/null
if [ -w /usr/local/lib ] && cmake --install build >/dev/null; then
  echo "nanobanana: installed under /usr/local (lua5.4 finds it there)"
else # not root: run from the build tree
  export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/build/?.so;;"
fi
mkdir -p out
if [ -z "${GOOGLE_API_KEY:-}${GEMINI_API_KEY:-}" ]; then
  tmp=$(mktemp -d)
  python3 fake/gemini_server.py --port 0 --port-file "$tmp/port" --quiet >"$tmp/log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
  for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
  export GOOGLE_GEMINI_BASE_URL="http://127.0.0.1:$(cat "$tmp/port")" GEMINI_API_KEY=test-key
  echo "nanobanana: no API key set, using the bundled fake server at $GOOGLE_GEMINI_BASE_URL"
fi
lua5.4 examples/text_to_image.lua "A cute baby sea otter" out/sea-otter
