say "build (gcc, -Wall -Wextra -Werror)"
if build build gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo; then count 1 0 "gcc build"
else cat "$LOGS/cmake-build.log"; count 0 1 "gcc build"; echo "$PASSED passed, $FAILED failed"; exit 1; fi

say "build (clang, -Wall -Wextra -Werror)"
if build build-clang clang -DCMAKE_BUILD_TYPE=Release; then count 1 0 "clang build"
else tail -30 "$LOGS/cmake-build-clang.log"; count 0 1 "clang build"; fi
