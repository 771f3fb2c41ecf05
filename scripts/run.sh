#!/bin/sh
# One entry point for new users and CI.
#
#   sh scripts/run.sh demo              install what is missing, build, run the demo
#   sh scripts/run.sh test [VARIANT]    install what is missing, build, run every test
#
# VARIANT is "default" (the fast asm context switch where it exists),
# "asan" (AddressSanitizer + UndefinedBehaviorSanitizer) or "ucontext"
# (the portable context switch).  Each variant builds in build-VARIANT/.
set -eu
cd "$(dirname "$0")/.."

need_packages() {
    missing=""
    for p in build-essential cmake pkg-config libcriterion-dev; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing:$missing"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
}

build() {
    variant=$1
    shift
    dir="build-$variant"
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}

cmd=${1:-}
case "$cmd" in
demo)
    need_packages
    build default
    exec ./build-default/examples/demo
    ;;
test)
    variant=${2:-default}
    case "$variant" in
    default) flags="" ;;
    asan) flags="-DCORO_SANITIZE=ON -DCORO_BUILD_BENCH=OFF" ;;
    ucontext) flags="-DCORO_CONTEXT=ucontext -DCORO_BUILD_BENCH=OFF" ;;
    *) echo "unknown variant: $variant" >&2; exit 2 ;;
    esac
    need_packages
    # shellcheck disable=SC2086
    build "$variant" $flags
    echo "== tests ($variant)"
    (cd "build-$variant" && ctest --output-on-failure --timeout 900)
    ;;
*)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
