#!/bin/bash
# What the sampling profiler costs a busy server: coro's httpd served by
# wrk with and without --profile (sampling at HZ, default 1000), in
# alternating rounds so that drift of the machine hits both alike; prints
# each round, the medians and their ratio.  On 127.0.0.1 only.
#
#   bash bench/prof_net.sh [BUILD_DIR]     (default build-default)
#
# Environment: ROUNDS (default 5), DURATION (seconds per wrk run, default
# 10), CONNS (default 100), HZ (default 1000).  Installs wrk with apt-get
# when it is missing.  Every process it starts is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-default}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CONNS=${CONNS:-100}
HZ=${HZ:-1000}
PORT=18085

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_need_build httpd
bench_need wrk

# One round: start httpd with "$@", load it, stop it; print requests/s.
round() {
    "$BUILD/examples/httpd" --listen "127.0.0.1:$PORT" "$@" \
        >"$tmp/httpd.log" 2>&1 &
    local pid=$!
    wait_port "$PORT"
    rps=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$PORT/" |
          awk '/^Requests\/sec/ {print $2}')
    kill -TERM "$pid"
    wait "$pid"
    echo "$rps"
}

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

echo "== httpd, wrk -t1 -c$CONNS, ${DURATION}s per run, $ROUNDS rounds" >&2
: >"$tmp/off"
: >"$tmp/on"
for r in $(seq "$ROUNDS"); do
    off=$(round)
    on=$(round --profile "$tmp/httpd.prof" --profile-hz "$HZ")
    echo "$off" >>"$tmp/off"
    echo "$on" >>"$tmp/on"
    printf 'round %d: off %s  on %s requests/s\n' "$r" "$off" "$on" >&2
done
m_off=$(median <"$tmp/off")
m_on=$(median <"$tmp/on")
samples=$(awk '/^stack / {s += $2} END {print s + 0}' "$tmp/httpd.prof")
printf '\n%-44s %12s\n' "httpd requests/s, profiler off (median)" "$m_off"
printf '%-44s %12s\n' "httpd requests/s, sampling at $HZ Hz (median)" "$m_on"
awk -v a="$m_on" -v b="$m_off" 'BEGIN {
    printf "%-44s %12.3f\n", "ratio (on / off)", a / b
    printf "%-44s %11.1f%%\n", "overhead", (1 - a / b) * 100 }'
printf '%-44s %12s\n' "samples in the last profile (incl. <wait>)" "$samples"
