# Toolchain file for a 32-bit x86 build on a 64-bit Debian host (multiarch):
#   dpkg --add-architecture i386 && apt-get update
#   apt-get install gcc-multilib libcurl4-openssl-dev:i386 liblua5.4-dev:i386
#   cmake -S . -B build-i386 -DCMAKE_TOOLCHAIN_FILE=cmake/i386-linux-gnu.cmake
# (the test command does this in scripts/test.d/42-i386.sh). Only library
# packages are taken from i386: an i386 interpreter package (lua5.4:i386)
# would replace the amd64 one, so the suite runs in tests/host/lua_host.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR i686)
set(CMAKE_LIBRARY_ARCHITECTURE i386-linux-gnu)
set(CMAKE_C_FLAGS_INIT "-m32")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-m32")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-m32")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-m32")
# pkg-config must read the i386 .pc files (libcurl, lua5.4), not the host's
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/i386-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
