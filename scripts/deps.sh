#!/usr/bin/env bash
# Installs what nanobanana needs to build, test and run its demo, from
# Debian's packages (Debian 12). Run as root; a no-op when all is present.
#   deps.sh          build + demo needs
#   deps.sh --test   also the test tools (busted, valgrind, clang, node, ...)
#   deps.sh --bench  also the benchmark's tools (jq, valgrind, GNU time, node)
#   deps.sh --packages PKG...  just these (test steps name what they need)
set -euo pipefail
want=(gcc make cmake pkg-config lua5.4 liblua5.4-dev libcurl4-openssl-dev lua-cjson python3 curl ca-certificates)
case "${1:-}" in
  --test) want+=(lua-busted luarocks clang libclang-rt-14-dev valgrind jq openssl nghttp2-proxy
                 lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev luajit libluajit-5.1-dev
                 gcc-multilib lua-ldoc lua-check cppcheck lua-socket) ;; # lua-socket: spec/14, spec/18
  --bench) want+=(jq valgrind coreutils time) ;;
  --packages) shift; want=("$@") ;;
esac
if [ "${1:-}" = --test ]; then want+=(tmux); fi # spec/19: the command line in a terminal
if [ "${1:-}" = --test ] || [ "${1:-}" = --bench ]; then
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || want+=(nodejs npm)
fi
# a name without :arch means the native package (or an arch-all one): an
# i386 lua5.4 alone does not count as lua5.4
native=$(dpkg --print-architecture)
installed() {
  case $1 in
    *:*) dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q "^install ok installed$" ;;
    *) dpkg-query -W -f='${Status} ${Architecture}\n' "$1" 2>/dev/null | grep -qE "^install ok installed ($native|all)$" ;;
  esac
}
missing=()
for p in "${want[@]}"; do
  installed "$p" || missing+=("$p")
done
# python3 and node may come from elsewhere (pyenv, nodesource): a working command is enough
if command -v python3 >/dev/null 2>&1; then missing=("${missing[@]/python3}"); fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "nanobanana: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "nanobanana: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  stamp=/tmp/nanobanana-apt-update.stamp # one update per few hours, not one per step
  if [ -z "$(find "$stamp" -mmin -360 2>/dev/null)" ]; then apt-get update -qq && touch "$stamp"; fi
  # --no-remove: an install that would remove a package (an i386 interpreter
  # replacing the amd64 one, say) fails instead
  apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}" >/dev/null
fi
