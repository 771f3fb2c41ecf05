#!/bin/sh
# respd against redis-server with redis-benchmark, the way
# docs/examples.md reports it: ping, set and get, 50 clients,
# pipelines of 1 and 16, three interleaved runs.  Needs redis-server and
# redis-benchmark (Debian: apt-get install redis-server redis-tools).
#
# Usage: sh bench/respd_vs_redis.sh [BUILD_DIR] [REQUESTS]
set -eu
build=${1:-build}
n=${2:-200000}
respd_port=16400
redis_port=16401
"$build/examples/respd" --listen 127.0.0.1:$respd_port >/dev/null &
respd_pid=$!
redis-server --port $redis_port --bind 127.0.0.1 --save '' \
    --appendonly no >/dev/null &
redis_pid=$!
trap 'kill -TERM $respd_pid $redis_pid 2>/dev/null || true' EXIT
sleep 0.5
for run in 1 2 3; do
    for p in 1 16; do
        for port in $respd_port $redis_port; do
            name=respd
            [ $port = $redis_port ] && name=redis
            printf 'run %s  -P %-2s  %-5s ' $run $p $name
            redis-benchmark -p $port -t ping,set,get -n "$n" -c 50 -P $p -q \
                2>&1 | tr '\r' '\n' | grep 'per second' |
                sed 's/ requests per second.*//' | tr '\n' ' '
            echo
        done
    done
done
