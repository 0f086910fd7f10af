say "portable core: -DNB_PORTABLE=ON (POSIX.1-2008 only, no _GNU_SOURCE; gcc -Werror), ctest and the busted suite"
# every Linux-specific call replaced by its POSIX fallback (blob growth by
# realloc, no sync_file_range/madvise/pipe2...): what macOS and the BSDs build
if build build-portable gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNB_PORTABLE=ON; then
  if grep -qE '^#define NB_HAVE_(MREMAP|MADV_HUGEPAGE|SYNC_FILE_RANGE|PIPE2|EVENTFD|ACCEPT4) 0$' build-portable/nb_config/nb_config.h &&
     ! grep -qE '^#define NB_HAVE_(MREMAP|MADV_HUGEPAGE|SYNC_FILE_RANGE|POSIX_FADVISE|PIPE2|EVENTFD|ACCEPT4) 1$' build-portable/nb_config/nb_config.h &&
     grep -q -- '-D_POSIX_C_SOURCE=200809L' build-portable/compile_commands.json &&
     python3 - build-portable/compile_commands.json "$ROOT" >"$LOGS/portable-macros.log" 2>&1 <<'PY'
# every library file (src/: the core and the binding) as compiled:
# _GNU_SOURCE never defined, _POSIX_C_SOURCE 200809L (tests may use more)
import json, os, shlex, subprocess, sys
bad = 0
for e in json.load(open(sys.argv[1])):
    if not os.path.relpath(e["file"], sys.argv[2]).startswith("src/"):
        continue
    args = shlex.split(e["command"])
    out = [a for i, a in enumerate(args) if a not in ("-c", "-o") and (i == 0 or args[i - 1] != "-o")]
    macros = subprocess.run(out + ["-E", "-dM"], cwd=e["directory"], capture_output=True, text=True).stdout
    if "#define _GNU_SOURCE" in macros or "#define _POSIX_C_SOURCE 200809L" not in macros:
        print("not portable:", e["file"]); bad = 1
sys.exit(bad)
PY
  then
    count 1 0 "portable build (gcc -Werror, _POSIX_C_SOURCE=200809L, every fallback)"
  else cat build-portable/nb_config/nb_config.h; count 0 1 "portable build: a Linux call or _GNU_SOURCE slipped in"; fi
  (cd build-portable && ctest --output-on-failure) >"$LOGS/ctest-portable.log" 2>&1 && count 1 0 "ctest (portable)" ||
    { cat "$LOGS/ctest-portable.log"; count 0 1 "ctest (portable)"; }
  NB_CPATH="build-portable/?.so" run_busted "busted (portable core)" "$LOGS/busted-portable.log"
else tail -30 "$LOGS/cmake-build-portable.log"; count 0 1 "portable build"; fi
