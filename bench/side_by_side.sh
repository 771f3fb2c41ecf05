#!/bin/bash
# Two builds of bench/spawn side by side, sampled over a long time on a
# shared machine whose speed changes from minute to minute.
#
#   bash bench/side_by_side.sh OLD NEW [MINUTES] [LOG]
#
# OLD and NEW are two bench/spawn programs (copy them out of their build
# trees first if those will change).  Every 30 s, if this machine's CPUs
# were idle (at most 5 % busy) over the second before, it runs OLD, then
# NEW, and logs one line: time, % busy before, % busy while they ran (one
# of two CPUs: about 50), and each program's batched and one-at-a-time
# medians (ns per coroutine).  A sample during which something else ran
# (busy above 60 %) is logged but left out of the summary.  After MINUTES
# (default 60) it prints each column's median, range and runs under 60 ns,
# and the median of the per-sample ratios NEW / OLD: a ratio measured
# within seconds stays meaningful when the host's load moves both.
# LOG (default spawn_side_by_side.log) keeps the samples.
set -euo pipefail
if [ $# -lt 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
    echo "usage: bash bench/side_by_side.sh OLD_SPAWN NEW_SPAWN [MINUTES] [LOG]" >&2
    exit 2
fi
OLD=$1
NEW=$2
MINUTES=${3:-60}
LOG=${4:-spawn_side_by_side.log}

# "total idle" jiffies of all CPUs, from /proc/stat.
snap() {
    local _ a b c d e f g
    read -r _ a b c d e f g _ </proc/stat
    echo "$((a + b + c + d + e + f + g)) $((d + e))"
}
# % busy between two snaps: pct T1 I1 T2 I2.
pct() { echo $((100 * (($3 - $1) - ($4 - $2)) / ($3 - $1))); }
# "batched unbatched" medians of one bench/spawn run.
medians() {
    "$1" | awk '/^batched/ {b = $7} /^unbatched/ {u = $7} END {print b, u}'
}

end=$(($(date +%s) + MINUTES * 60))
while [ "$(date +%s)" -lt "$end" ]; do
    s1=$(snap)
    sleep 1
    s2=$(snap)
    # shellcheck disable=SC2086
    before=$(pct $s1 $s2)
    if [ "$before" -le 5 ]; then
        old=$(medians "$OLD")
        new=$(medians "$NEW")
        s3=$(snap)
        # shellcheck disable=SC2086
        echo "$(date +%H:%M:%S) $before $(pct $s2 $s3) $old $new" >>"$LOG"
    fi
    sleep 29
done

awk '$3 <= 60 && NF == 7 {
    n++; ob[n] = $4; ou[n] = $5; nb[n] = $6; nu[n] = $7
    rb[n] = $6 / $4; ru[n] = $7 / $5
}
function med(a, m,   i, j, t, c) {
    for (i = 1; i <= m; i++) c[i] = a[i]
    for (i = 2; i <= m; i++)
        for (j = i; j > 1 && c[j - 1] > c[j]; j--) {
            t = c[j]; c[j] = c[j - 1]; c[j - 1] = t
        }
    lo = c[1]; hi = c[m]
    return m % 2 ? c[(m + 1) / 2] : (c[m / 2] + c[m / 2 + 1]) / 2
}
function under(a, m,   i, k) {
    for (i = 1; i <= m; i++) if (a[i] < 60) k++
    return k + 0
}
function row(name, a,   m) {
    m = med(a, n) # sets lo and hi
    printf "%-26s %8.1f %8.1f %8.1f %6d/%d\n", name, m, lo, hi,
        under(a, n), n
}
END {
    if (n == 0) { print "no quiet sample"; exit 1 }
    printf "%-26s %8s %8s %8s %8s\n", "ns per coroutine", "median", "min",
        "max", "< 60 ns"
    row("old, batched", ob); row("old, one at a time", ou)
    row("new, batched", nb); row("new, one at a time", nu)
    printf "new / old, median of the per-sample ratios: batched %.2f, one at a time %.2f\n",
        med(rb, n), med(ru, n)
}' "$LOG"
