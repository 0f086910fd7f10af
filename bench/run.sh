#!/usr/bin/env bash
# nanobanana benchmark: ONE command.  bash bench/run.sh [options]
# Installs what it needs (Debian packages as root, the pinned JS SDK from
# bench/package-lock.json), builds nanobanana (Release) into bench/out/build,
# then runs bench/bench.py, which prints the tables and writes
# bench/RESULTS.md. Options go to bench.py (--quick, --only SECTION,
# --skip SECTION, --keep; see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOG=$ROOT/bench/out/setup.log
mkdir -p "$ROOT/bench/out"
: >"$LOG"

# ---- Debian packages: the project's build needs, plus the bench's own
bash scripts/deps.sh --bench >>"$LOG" 2>&1 || { cat "$LOG" >&2; exit 1; }

# ---- the official JS SDK, pinned by bench/package-lock.json
if ! node -e 'process.exit(require("./bench/node_modules/@google/genai/package.json").version === "2.32.0" ? 0 : 1)' 2>/dev/null; then
  echo "bench: npm ci (@google/genai 2.32.0)"
  (cd bench && npm ci --no-audit --no-fund --loglevel=error) >>"$LOG" 2>&1 || { cat "$LOG" >&2; exit 1; }
fi

# ---- nanobanana, Release build of the working tree (its own build dir)
echo "bench: building nanobanana (Release) in bench/out/build"
if ! { cmake -S . -B bench/out/build -DNB_TESTS=OFF -DNB_WERROR=OFF -DCMAKE_BUILD_TYPE=Release &&
       cmake --build bench/out/build -j2; } >>"$LOG" 2>&1; then
  tail -40 "$LOG" >&2
  exit 1
fi

exec python3 bench/bench.py "$@"
