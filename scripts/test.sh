#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages, as root),
# builds, and runs every step in scripts/test.d/ in name order. Each step is
# a bash fragment sourced here; it reports with count/say and may install
# the packages it needs with `need PKG...`.
# Ends with one line: "N passed, N failed".
#   NB_QUICK=1        skips fuzzing, sanitizers and valgrind (for development)
#   NB_STEPS='30-*'   runs only the steps whose file names match (after 10-build)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export NB_ROOT=$ROOT
LOGS=$ROOT/build/test-logs
PASSED=0
FAILED=0

say() { printf '\n== %s\n' "$*"; }
count() { PASSED=$((PASSED + $1)); FAILED=$((FAILED + $2)); echo "-- $3: $1 passed, $2 failed"; }
# need PKG...: installs the Debian packages a step needs (a no-op when present)
need() { bash scripts/deps.sh --packages "$@" >>"$LOGS/deps.log" 2>&1 || { tail -20 "$LOGS/deps.log"; return 1; }; }
# at_exit CMD: runs CMD when the test command ends (servers a step started)
AT_EXIT=()
at_exit() { AT_EXIT+=("$1"); }
trap 'for c in "${AT_EXIT[@]}"; do eval "$c"; done' EXIT

# holds_its_type FILE: FILE's bytes are what its extension says (.png: PNG, .jpg: JPEG)
holds_its_type() {
  case "$1:$(head -c 3 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" in *.png:89504e | *.jpg:ffd8ff) return 0 ;; esac
  return 1
}
build() { # dir compiler extra-cmake-args...
  local dir=$1 cc=$2; shift 2
  CC=$cc cmake -S . -B "$dir" -DNB_WERROR=ON -DNB_TESTS=ON "$@" >"$LOGS/cmake-$(basename "$dir").log" 2>&1 &&
    cmake --build "$dir" -j2 >>"$LOGS/cmake-$(basename "$dir").log" 2>&1
}
run_busted() { # label log [prefix command...]
  local label=$1 log=$2; shift 2
  "$@" lua5.4 /usr/bin/busted -o TAP ${NB_CPATH:+--cpath="$NB_CPATH"} >"$log" 2>&1
  local rc=$? ok bad
  ok=$(grep '^ok ' "$log" | grep -vc '# SKIP'); bad=$(grep -c '^not ok ' "$log") # skipped: not counted
  if [ "$bad" != 0 ] || [ "$ok" = 0 ]; then grep -A25 '^not ok ' "$log" | head -150; fi
  if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then tail -40 "$log"; bad=1; fi
  count "$ok" "$bad" "$label"
}
# start_fake VAR [args...]: starts the fake server on a free port; VAR gets its port
start_fake() {
  local var=$1 dir; shift
  dir=$(mktemp -d)
  python3 fake/gemini_server.py --port 0 --port-file "$dir/port" --quiet "$@" >"$dir/log" 2>&1 &
  at_exit "kill $! 2>/dev/null; rm -rf '$dir'"
  for _ in $(seq 200); do [ -s "$dir/port" ] && break; sleep 0.05; done
  printf -v "$var" '%s' "$(cat "$dir/port")"
}

mkdir -p "$LOGS"
bash scripts/deps.sh --test >"$LOGS/deps.log" 2>&1 || { cat "$LOGS/deps.log"; echo "0 passed, 1 failed"; exit 1; }

for step in scripts/test.d/*.sh; do
  name=$(basename "$step" .sh)
  if [ -n "${NB_STEPS:-}" ] && [ "$name" != 10-build ]; then
    # shellcheck disable=SC2053
    [[ $name == $NB_STEPS ]] || continue
  fi
  # shellcheck source=/dev/null
  source "$step"
done

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
