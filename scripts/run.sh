#!/bin/sh
# One entry point for new users and CI.
#
#   sh scripts/run.sh demo              install what is missing, build, start the
#                                       demo service (httpd on 127.0.0.1:8080,
#                                       its backdoor console on a unix socket)
#   sh scripts/run.sh test [VARIANT]    install what is missing, build, run every test
#   sh scripts/run.sh fuzz [SECONDS]    fuzz the backdoor's command parser with
#                                       libFuzzer (default 60 s)
#
# VARIANT is "default" (the fast asm context switch where it exists),
# "asan" (AddressSanitizer + UndefinedBehaviorSanitizer), "ucontext"
# (the portable context switch) or "tsan" (ThreadSanitizer).  Each
# variant builds in build-VARIANT/.
set -eu
cd "$(dirname "$0")/.."

need_packages() {
    missing=""
    for p in build-essential cmake pkg-config libcriterion-dev "$@"; do
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
    # nc (OpenBSD's, for -N and -U) is what the hints below connect with.
    need_packages netcat-openbsd curl
    build default
    port=${CORO_DEMO_PORT:-8080}
    sock="$(pwd)/build-default/httpd.sock"
    echo "coro demo: an HTTP/1.1 server, one coroutine per connection"
    echo "  try:   curl -i http://127.0.0.1:$port/"
    echo "  load:  wrk -c100 -d5s http://127.0.0.1:$port/"
    echo "  look inside, from another terminal (docs/backdoor.md):"
    echo "         nc -N -U $sock"
    echo "         rlwrap nc -N -U $sock   (line editing, history; apt-get install rlwrap)"
    echo "         then: help, ps, where all, stats, vars, log, profile start,"
    echo "         profile report, profile flamegraph fg.svg (in build-default/)"
    echo "  stop:  Ctrl-C"
    echo "  (the coroutine tour is ./build-default/examples/demo)"
    exec ./build-default/examples/httpd --listen "127.0.0.1:$port" \
        --backdoor "unix:build-default/httpd.sock" --backdoor-dir build-default
    ;;
test)
    variant=${2:-default}
    case "$variant" in
    default) flags="" ;;
    asan) flags="-DCORO_SANITIZE=ON -DCORO_BUILD_BENCH=OFF" ;;
    ucontext) flags="-DCORO_CONTEXT=ucontext -DCORO_BUILD_BENCH=OFF" ;;
    tsan) flags="-DCORO_TSAN=ON -DCORO_BUILD_BENCH=OFF -DCORO_BUILD_EXAMPLES=OFF" ;;
    *) echo "unknown variant: $variant" >&2; exit 2 ;;
    esac
    need_packages
    # shellcheck disable=SC2086
    build "$variant" $flags
    echo "== tests ($variant)"
    run=""
    if [ "$variant" = tsan ]; then
        # halt_on_error: the first race ends its process with status 66,
        # so it fails the test even in a child that the test forked.
        # die_after_fork=0: a forked child may start threads (the clock,
        # the offload pool); by default TSan kills such a child.
        # atexit_sleep_ms=0: every test leaves the clock thread running,
        # and TSan would sleep a second at each test's exit for it.
        TSAN_OPTIONS="halt_on_error=1 die_after_fork=0 atexit_sleep_ms=0 ${TSAN_OPTIONS:-}"
        export TSAN_OPTIONS
        # TSan's fixed shadow layout clashes with the randomised mappings
        # of kernels with more mmap randomisation ("FATAL: ThreadSanitizer:
        # unexpected memory mapping"): run without address randomisation
        # where setarch can turn it off (containers may forbid it).
        if setarch "$(uname -m)" -R true >/dev/null 2>&1; then
            run="setarch $(uname -m) -R"
        fi
    fi
    # shellcheck disable=SC2086
    (cd "build-$variant" && $run ctest --output-on-failure --timeout 900)
    ;;
fuzz)
    # libFuzzer comes with clang's runtime (Debian: libclang-rt-dev).
    secs=${2:-60}
    need_packages clang libclang-rt-dev
    dir=build-fuzz
    mkdir -p "$dir/corpus"
    clang -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
          -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
          -Ibackdoor -o "$dir/fuzz_backdoor_parse" \
          tests/fuzz/fuzz_backdoor_parse.c backdoor/parse.c
    echo "== fuzz: backdoor command parser, $secs s"
    # New inputs go to the corpus; a crash leaves its input in $dir and
    # fails the run.
    "./$dir/fuzz_backdoor_parse" -max_total_time="$secs" -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$dir/" \
        "$dir/corpus" tests/fuzz/seeds
    ;;
*)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
