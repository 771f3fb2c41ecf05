#!/bin/sh
# Install the build in BUILD_DIR into a temporary prefix, then build and
# run a small program against it with find_package(coro) and pkg-config.
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/include/coro/coro.h"
test -f "$tmp/prefix/include/coro/backdoor.h"
test -f "$tmp/prefix/include/tsc_time/tsc_time.h"
ls "$tmp"/prefix/lib*/libcoro.a "$tmp"/prefix/lib*/libcoro.so \
   "$tmp"/prefix/lib*/libcoro_backdoor.a "$tmp"/prefix/lib*/libcoro_backdoor.so \
   >/dev/null
test -f "$tmp/prefix/include/coro/profiler.h"
test -x "$tmp/prefix/bin/coro-prof"
ls "$tmp"/prefix/lib*/libcoro_profiler.a \
   "$tmp"/prefix/lib*/libcoro_profiler.so >/dev/null
if ls "$tmp"/prefix/include/coro/*_internal.h >/dev/null 2>&1; then
    echo "internal headers were installed" >&2
    exit 1
fi
# CMake package: shared and static.
cmake -S "$src" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
      ${CORO_SAN_FLAGS:+-DCMAKE_C_FLAGS="$CORO_SAN_FLAGS"} >/dev/null
cmake --build "$tmp/consumer" >/dev/null
LD_LIBRARY_PATH=$(echo "$tmp"/prefix/lib*) "$tmp/consumer/consumer"
"$tmp/consumer/consumer_static"
LD_LIBRARY_PATH=$(echo "$tmp"/prefix/lib*) "$tmp/consumer/profiled" instrument
"$tmp/prefix/bin/coro-prof" --help >/dev/null
LD_LIBRARY_PATH=$(echo "$tmp"/prefix/lib*) "$tmp/consumer/consumer_backdoor"
"$tmp/consumer/consumer_backdoor_static"
# pkg-config.
if command -v pkg-config >/dev/null; then
    pcdir=$(dirname "$(ls "$tmp"/prefix/lib*/pkgconfig/coro.pc)")
    flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs coro)
    cc ${CORO_SAN_FLAGS:-} -o "$tmp/pc" "$src/consumer.c" $flags
    LD_LIBRARY_PATH=$(echo "$tmp"/prefix/lib*) "$tmp/pc"
    flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs coro-profiler)
    cc ${CORO_SAN_FLAGS:-} -o "$tmp/pcprof" "$src/profiled.c" $flags
    LD_LIBRARY_PATH=$(echo "$tmp"/prefix/lib*) "$tmp/pcprof"
    flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs coro-backdoor)
    cc ${CORO_SAN_FLAGS:-} -o "$tmp/pcb" "$src/consumer_backdoor.c" $flags
    LD_LIBRARY_PATH=$(echo "$tmp"/prefix/lib*) "$tmp/pcb"
fi
echo "install test: 1 passed, 0 failed"
