# Shared by the network benchmark scripts (bash; sourced, not run).
#
#   bench_need PKG...      install the Debian packages that are missing
#                          (packaged services are kept from starting)
#   bench_need_build B...  exit 2 unless $BUILD/examples/B exist
#   wait_port PORT         wait (at most 10 s) until 127.0.0.1:PORT listens
#   $tmp, $pids            a temporary directory and the PIDs started;
#                          both are cleaned up when the script ends

bench_need() {
    local missing="" p sudo=""
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing:$missing" >&2
    $sudo apt-get update -qq
    # The packaged services must not start system-wide instances.
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing \
        >/dev/null
    $sudo rm -f /usr/sbin/policy-rc.d
}

bench_need_build() {
    local b
    for b in "$@"; do
        if [ ! -x "$BUILD/examples/$b" ]; then
            echo "no $BUILD/examples/$b: build first (sh scripts/run.sh demo)" >&2
            exit 2
        fi
    done
}

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

tmp=$(mktemp -d)
pids=""
bench_cleanup() {
    local p
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
