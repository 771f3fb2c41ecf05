#!/bin/bash
# Network benchmark, on 127.0.0.1 only: coro's httpd against nginx and
# respd against redis-server, measured in the same run, plus 10,000
# concurrent keep-alive connections held by httpd and the system calls
# httpd makes per request at steady state.
#
#   bash bench/net.sh [BUILD_DIR]      (default build-default)
#
# Environment: DURATION (seconds per wrk run, default 10), REQUESTS
# (per redis-benchmark test, default 200000), CONNS (the many-connections
# test, default 10000).  Installs wrk, nginx-light, redis-server,
# redis-tools and strace with apt-get when they are missing.  Every process
# it starts is stopped by its PID when it ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-default}
DURATION=${DURATION:-10}
REQUESTS=${REQUESTS:-200000}
CONNS=${CONNS:-10000}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_need_build httpd respd
bench_need wrk nginx-light redis-server redis-tools strace

# Up to 65536 fds for us and our children, within the hard limit.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 65536 ]; then
    ulimit -n 65536
else
    ulimit -n "$hard"
fi

HTTPD_PORT=18080
NGINX_PORT=18081
RESPD_PORT=16379
REDIS_PORT=16380

"$BUILD/examples/httpd" --listen "127.0.0.1:$HTTPD_PORT" >"$tmp/httpd.log" 2>&1 &
httpd_pid=$!
pids="$pids $httpd_pid"

mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx;
    proxy_temp_path $tmp/nginx;
    fastcgi_temp_path $tmp/nginx;
    uwsgi_temp_path $tmp/nginx;
    scgi_temp_path $tmp/nginx;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { default_type text/plain; return 200 'Hello, World!'; }
    }
}
EOF
nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" >/dev/null 2>&1 &
pids="$pids $!"

"$BUILD/examples/respd" --listen "127.0.0.1:$RESPD_PORT" >"$tmp/respd.log" 2>&1 &
pids="$pids $!"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
    --appendonly no --daemonize no --dir "$tmp" >/dev/null 2>&1 &
pids="$pids $!"

for p in $HTTPD_PORT $NGINX_PORT $RESPD_PORT $REDIS_PORT; do wait_port $p; done

# wrk: print "requests/s p99(ms) errors" for URL with C connections.
wrk_run() {
    out=$(wrk -t1 -c"$2" -d"${DURATION}s" --latency "$1")
    rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    errs=$(echo "$out" | awk '/Socket errors|Non-2xx/ {print}' | tr '\n' ' ')
    echo "$rps $p99 ${errs:-none}"
}
# p99 with its unit (wrk prints us, ms or s) -> ms.
to_ms() {
    echo "$1" | awk '/us$/ {sub("us",""); printf "%.2f", $0/1000; next}
                     /ms$/ {sub("ms",""); printf "%.2f", $0; next}
                     /s$/  {sub("s","");  printf "%.2f", $0*1000; next}
                     {print "?"}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'; }

echo "== HTTP: wrk -t1, keep-alive, ${DURATION}s each" >&2
for c in 100 1000; do
    set -- $(wrk_run "http://127.0.0.1:$HTTPD_PORT/" $c)
    eval "h_rps_$c=$1 h_p99_$c=$(to_ms $2)"
    set -- $(wrk_run "http://127.0.0.1:$NGINX_PORT/" $c)
    eval "n_rps_$c=$1 n_p99_$c=$(to_ms $2)"
done

echo "== RESP: redis-benchmark -c 50 -n $REQUESTS" >&2
# redis-benchmark -q prints "NAME: N requests per second, p50=...".
rb() {
    redis-benchmark -h 127.0.0.1 -p "$1" -c 50 -n "$REQUESTS" -P "$2" \
        -t ping,set,get -q 2>/dev/null | tr '\r' '\n' |
        awk -F'[: ]+' '/requests per second/ {print $1, $2}'
}
rb $RESPD_PORT 1 >"$tmp/respd1"
rb $REDIS_PORT 1 >"$tmp/redis1"
rb $RESPD_PORT 16 >"$tmp/respd16"
rb $REDIS_PORT 16 >"$tmp/redis16"

echo "== system calls per request (strace -c on httpd, wrk -c100 5s)" >&2
strace -c -f -q -o "$tmp/strace" -p "$httpd_pid" &
strace_pid=$!
pids="$pids $strace_pid"
sleep 1
st_out=$(wrk -t1 -c100 -d5s --timeout 30s "http://127.0.0.1:$HTTPD_PORT/")
kill -INT "$strace_pid"
wait "$strace_pid" 2>/dev/null || true
st_reqs=$(echo "$st_out" | awk '/requests in/ {print $1}')
echo "== $CONNS concurrent keep-alive connections to httpd" >&2
# wrk's own request timeout (2 s) would count slow answers as errors;
# this test is about holding the connections, so allow 30 s.
# Count httpd's open fds while wrk runs: the connections really held.
(peak=0
 for _ in $(seq $((DURATION * 4))); do
     n=$(ls "/proc/$httpd_pid/fd" 2>/dev/null | wc -l)
     [ "$n" -gt "$peak" ] && peak=$n
     sleep 0.25
 done
 echo "$peak" >"$tmp/peak") &
sampler=$!
pids="$pids $sampler"
many=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 30s \
    "http://127.0.0.1:$HTTPD_PORT/" 2>&1)
wait "$sampler" 2>/dev/null || true
many_fds=$(cat "$tmp/peak" 2>/dev/null || echo "?")
many_rps=$(echo "$many" | awk '/^Requests\/sec/ {print $2}')
many_errs=$(echo "$many" | awk '/Socket errors|Non-2xx|unable/ {print}' | tr '\n' ' ')

# strace -c rows: % time, seconds, usecs/call, calls, [errors], syscall.
calls() {
    awk -v n="$1" '$NF == n { print $4; f = 1 } END { if (!f) print 0 }' \
        "$tmp/strace"
}
per() { awk -v c="$1" -v n="$st_reqs" 'BEGIN { printf "%.3f", c / n }'; }

printf '\n%-44s %12s %12s %8s\n' "HTTP (wrk -t1, keep-alive)" "coro httpd" "nginx" "ratio"
for c in 100 1000; do
    eval "h=\$h_rps_$c n=\$n_rps_$c hp=\$h_p99_$c np=\$n_p99_$c"
    printf '%-44s %12s %12s %8s\n' "-c$c requests/s" "$h" "$n" "$(ratio "$h" "$n")"
    printf '%-44s %12s %12s %8s\n' "-c$c p99 latency (ms)" "$hp" "$np" "$(ratio "$hp" "$np")"
done
printf '\n%-44s %12s %12s %8s\n' "RESP (redis-benchmark -c50)" "coro respd" "redis" "ratio"
for p in 1 16; do
    while read -r name v; do
        r=$(awk -v n="$name" '$1 == n {print $2}' "$tmp/redis$p")
        printf '%-44s %12s %12s %8s\n' "-P$p $name requests/s" "$v" "$r" "$(ratio "$v" "$r")"
    done <"$tmp/respd$p"
done
printf '\n%-44s %12s\n' "$CONNS keep-alive connections: requests/s" "$many_rps"
printf '%-44s %12s\n' "  httpd open fds at the peak" "$many_fds"
printf '%-44s %12s\n' "  errors" "${many_errs:-none}"
printf '\n%-44s %12s\n' "httpd system calls per request (strace)" ""
for s in read write writev sendto sendmsg epoll_wait epoll_pwait2 epoll_ctl accept4; do
    c=$(calls $s)
    [ "$c" = 0 ] && continue
    printf '%-44s %12s\n' "  $s" "$(per "$c")"
done
printf '%-44s %12s\n' "  requests" "$st_reqs"
printf '%-44s %12s\n' "  floor (one read, one write)" "2.000"
