#!/usr/bin/env bash
# cppcheck over src/ with the checks nanobanana holds its C to; any finding
# fails (exit 1). Run from anywhere; the test command runs it in
# scripts/test.d/66-lint-docs.sh.
#
# Checks: --enable=warning,style,performance,portability (everything but
# "information" and the whole-program "unusedFunction", which cannot see that
# the binding's functions are called through Lua's registration tables), with
# POSIX's library model, as C99, for Linux (_GNU_SOURCE, as built) and for the
# portable configurations cppcheck derives from the #ifdefs.
#
# Suppressions, each for a reason:
#   missingIncludeSystem  system headers (libc, curl.h, lua.h) are not parsed;
#                         cppcheck's posix library describes libc instead, and
#                         parsing Lua's luaconf.h stops at its "long long" check
#   variableScope         the house style declares a block's variables at its
#                         top (as Lua's own sources do); narrower scopes are a
#                         taste, not a defect
# and one library model corrected: scripts/cppcheck/mmap-anonymous.cfg lets
# mmap take fd -1 (MAP_ANONYMOUS), where posix.cfg wants fd >= 0
set -euo pipefail
cd "$(dirname "$0")/.."
exec cppcheck --quiet --error-exitcode=1 -j2 \
  --enable=warning,style,performance,portability --std=c99 --library=posix --library=scripts/cppcheck/mmap-anonymous.cfg \
  --inline-suppr \
  --suppress=missingIncludeSystem \
  --suppress=variableScope \
  --template='{file}:{line}: {severity} ({id}): {message}' \
  -D_GNU_SOURCE -Isrc -Isrc/core \
  src
