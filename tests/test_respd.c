/*
 * examples/respd as a separate process over real sockets: every command's
 * replies byte for byte, expiry (EX, PX, the sweeper), pipelining, inline
 * commands, Redis's error strings, QUIT, and bad clients (garbage,
 * truncated requests, a 1 MiB line, clients that vanish mid-request)
 * while other clients keep being served.  Each test starts its own server
 * on port 0 and ends it with SIGTERM, which must give exit status 0 (and,
 * in the sanitizer build, no leak).
 */
#include "server_proc.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct server srv;
static int cl; /* the test's first client */

static void start(void)
{
    server_start(&srv, RESPD_BIN, NULL);
    cl = server_dial(&srv);
}

static void stop(void)
{
    close(cl);
    server_stop_clean(&srv);
}

TestSuite(respd_cmd, .init = start, .fini = stop, .timeout = 60);
TestSuite(respd_expiry, .init = start, .fini = stop, .timeout = 60);
TestSuite(respd_proto, .init = start, .fini = stop, .timeout = 60);
TestSuite(respd_bad_client, .init = start, .fini = stop, .timeout = 120);
TestSuite(respd_process, .timeout = 60);

/* ---- helpers ------------------------------------------------------- */

/* Send one multibulk request of n binary-safe arguments. */
static void send_argv(int fd, int n, const char *const *argv,
                      const size_t *lens)
{
    size_t cap = 32;
    for (int i = 0; i < n; i++)
        cap += lens[i] + 32;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    size_t len = (size_t)snprintf(buf, cap, "*%d\r\n", n);
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(buf + len, cap - len, "$%zu\r\n", lens[i]);
        memcpy(buf + len, argv[i], lens[i]);
        len += lens[i];
        memcpy(buf + len, "\r\n", 2);
        len += 2;
    }
    send_bytes(fd, buf, len);
    free(buf);
}

/* Send a multibulk request of C-string arguments, NULL-terminated. */
static void send_cmd(int fd, ...)
{
    const char *argv[16];
    size_t lens[16];
    int n = 0;
    va_list ap;
    va_start(ap, fd);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL; n++) {
        cr_assert_lt(n, 16);
        argv[n] = a;
        lens[n] = strlen(a);
    }
    va_end(ap);
    send_argv(fd, n, argv, lens);
}

/* Send a request and expect exactly one reply. */
#define EXPECT(fd, reply, ...)                                                 \
    do {                                                                       \
        send_cmd((fd), __VA_ARGS__, (const char *)NULL);                       \
        expect_str((fd), (reply));                                             \
    } while (0)

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Read one RESP line (up to CRLF) into buf; its length. */
static size_t recv_line(int fd, char *buf, size_t len)
{
    size_t n = 0;
    while (n + 1 < len) {
        cr_assert_eq(recv_upto(fd, buf + n, 1), 1, "no reply line");
        if (buf[n++] == '\n')
            break;
    }
    buf[n] = '\0';
    return n;
}

/* Ask until reply is what TTL/GET... answers, for at most 10 s; returns
 * the milliseconds it took. */
static double poll_until(int fd, const char *reply, const char *cmd,
                         const char *key)
{
    double t0 = mono_ms();
    char line[128];
    for (;;) {
        send_cmd(fd, cmd, key, (const char *)NULL);
        recv_line(fd, line, sizeof line);
        if (line[0] == '$' && line[1] != '-') /* a bulk: skip its data */
            recv_line(fd, line + 64, sizeof line - 64);
        if (strcmp(line, reply) == 0)
            return mono_ms() - t0;
        cr_assert_lt(mono_ms() - t0, 10000, "%s %s never answered %s", cmd, key,
                     reply);
        usleep(5000);
    }
}

/* ---- respd_cmd: each command's replies ---------------------------- */

Test(respd_cmd, ping_answers_pong_or_its_argument)
{
    EXPECT(cl, "+PONG\r\n", "PING");
    EXPECT(cl, "$5\r\nhello\r\n", "ping", "hello");
    EXPECT(cl, "-ERR wrong number of arguments for 'ping' command\r\n", "ping",
           "a", "b");
}

Test(respd_cmd, echo_returns_its_argument)
{
    EXPECT(cl, "$11\r\nhello world\r\n", "ECHO", "hello world");
    EXPECT(cl, "$0\r\n\r\n", "echo", "");
}

Test(respd_cmd, set_then_get_round_trips_binary_values)
{
    EXPECT(cl, "+OK\r\n", "SET", "k", "v1");
    EXPECT(cl, "$2\r\nv1\r\n", "GET", "k");
    const char *argv[] = {"SET", "bin\0key", "a\r\n\0b"};
    const size_t lens[] = {3, 7, 5};
    send_argv(cl, 3, argv, lens);
    expect_str(cl, "+OK\r\n");
    const char *getv[] = {"GET", "bin\0key"};
    const size_t getl[] = {3, 7};
    send_argv(cl, 2, getv, getl);
    expect_bytes(cl, "$5\r\na\r\n\0b\r\n", 11);
    EXPECT(cl, "+OK\r\n", "SET", "k", "");
    EXPECT(cl, "$0\r\n\r\n", "GET", "k");
}

Test(respd_cmd, get_of_a_missing_key_is_nil)
{
    EXPECT(cl, "$-1\r\n", "GET", "nothing");
}

Test(respd_cmd, set_nx_xx_get_and_keepttl_follow_redis)
{
    EXPECT(cl, "$-1\r\n", "SET", "k", "a", "XX");
    EXPECT(cl, "$-1\r\n", "GET", "k");
    EXPECT(cl, "+OK\r\n", "SET", "k", "a", "NX");
    EXPECT(cl, "$-1\r\n", "SET", "k", "b", "nx");
    EXPECT(cl, "$1\r\na\r\n", "GET", "k");
    EXPECT(cl, "+OK\r\n", "SET", "k", "c", "xx");
    EXPECT(cl, "$1\r\nc\r\n", "SET", "k", "d", "GET");
    EXPECT(cl, "$-1\r\n", "SET", "new", "x", "GET");
    EXPECT(cl, "+OK\r\n", "SET", "k", "e", "EX", "100");
    EXPECT(cl, "+OK\r\n", "SET", "k", "f", "KEEPTTL");
    EXPECT(cl, ":100\r\n", "TTL", "k");
    EXPECT(cl, "+OK\r\n", "SET", "k", "g");
    EXPECT(cl, ":-1\r\n", "TTL", "k");
    EXPECT(cl, "-ERR syntax error\r\n", "SET", "k", "v", "NX", "XX");
    EXPECT(cl, "-ERR syntax error\r\n", "SET", "k", "v", "EX", "1", "PX", "5");
    EXPECT(cl, "-ERR syntax error\r\n", "SET", "k", "v", "EX");
    EXPECT(cl, "-ERR syntax error\r\n", "SET", "k", "v", "bogus");
    EXPECT(cl, "-ERR value is not an integer or out of range\r\n", "SET", "k",
           "v", "EX", "ten");
    EXPECT(cl, "-ERR invalid expire time in 'set' command\r\n", "SET", "k", "v",
           "EX", "0");
    EXPECT(cl, "-ERR invalid expire time in 'set' command\r\n", "SET", "k", "v",
           "PX", "-5");
    EXPECT(cl, "-ERR invalid expire time in 'set' command\r\n", "SET", "k", "v",
           "EX", "9223372036854775807");
}

Test(respd_cmd, del_and_exists_count_keys)
{
    EXPECT(cl, "+OK\r\n", "SET", "a", "1");
    EXPECT(cl, "+OK\r\n", "SET", "b", "2");
    EXPECT(cl, ":3\r\n", "EXISTS", "a", "b", "a", "c");
    EXPECT(cl, ":2\r\n", "DEL", "a", "b", "c");
    EXPECT(cl, ":0\r\n", "DEL", "a");
    EXPECT(cl, ":0\r\n", "EXISTS", "a", "b");
}

Test(respd_cmd, incr_counts_and_rejects_what_is_not_an_integer)
{
    EXPECT(cl, ":1\r\n", "INCR", "n");
    EXPECT(cl, ":2\r\n", "INCR", "n");
    EXPECT(cl, "$1\r\n2\r\n", "GET", "n");
    EXPECT(cl, "+OK\r\n", "SET", "n", "-10");
    EXPECT(cl, ":-9\r\n", "INCR", "n");
    const char *bad[] = {"abc", "1.5", " 1", "01", "+1", "-0", "", "1 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT(cl, "+OK\r\n", "SET", "s", bad[i]);
        EXPECT(cl, "-ERR value is not an integer or out of range\r\n", "INCR",
               "s");
    }
    EXPECT(cl, "+OK\r\n", "SET", "m", "9223372036854775807");
    EXPECT(cl, "-ERR increment or decrement would overflow\r\n", "INCR", "m");
    EXPECT(cl, "+OK\r\n", "SET", "m", "-9223372036854775808");
    EXPECT(cl, ":-9223372036854775807\r\n", "INCR", "m");
}

Test(respd_cmd, incr_keeps_the_expiry)
{
    EXPECT(cl, "+OK\r\n", "SET", "n", "5", "EX", "100");
    EXPECT(cl, ":6\r\n", "INCR", "n");
    EXPECT(cl, ":100\r\n", "TTL", "n");
}

Test(respd_cmd, dbsize_and_flushall)
{
    EXPECT(cl, ":0\r\n", "DBSIZE");
    char key[16];
    for (int i = 0; i < 1000; i++) { /* several table doublings */
        snprintf(key, sizeof key, "key:%d", i);
        EXPECT(cl, "+OK\r\n", "SET", key, key);
    }
    EXPECT(cl, ":1000\r\n", "DBSIZE");
    EXPECT(cl, "$7\r\nkey:777\r\n", "GET", "key:777");
    for (int i = 0; i < 1000; i += 2) {
        snprintf(key, sizeof key, "key:%d", i);
        EXPECT(cl, ":1\r\n", "DEL", key);
    }
    EXPECT(cl, ":500\r\n", "DBSIZE");
    for (int i = 1; i < 1000; i += 2) { /* still reachable after deletes */
        snprintf(key, sizeof key, "key:%d", i);
        EXPECT(cl, ":1\r\n", "EXISTS", key);
    }
    EXPECT(cl, "-ERR syntax error\r\n", "FLUSHALL", "now");
    EXPECT(cl, "+OK\r\n", "FLUSHALL");
    EXPECT(cl, ":0\r\n", "DBSIZE");
    EXPECT(cl, "+OK\r\n", "FLUSHALL", "ASYNC");
}

Test(respd_cmd, quit_replies_ok_and_closes)
{
    send_str(cl, "*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n");
    expect_str(cl, "+OK\r\n");
    expect_eof(cl);
}

Test(respd_cmd, a_large_value_round_trips)
{
    size_t n = 3u << 20;
    char *v = malloc(n);
    cr_assert_not_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = (char)(i * 31 + (i >> 13));
    const char *argv[] = {"SET", "big", v};
    const size_t lens[] = {3, 3, n};
    send_argv(cl, 3, argv, lens);
    expect_str(cl, "+OK\r\n");
    send_cmd(cl, "GET", "big", (const char *)NULL);
    expect_str(cl, "$3145728\r\n");
    expect_bytes(cl, v, n);
    expect_str(cl, "\r\n");
    EXPECT(cl, "+PONG\r\n", "PING");
    free(v);
}

/* ---- respd_expiry -------------------------------------------------- */

Test(respd_expiry, ttl_and_expire_follow_redis_rules)
{
    EXPECT(cl, ":-2\r\n", "TTL", "k");
    EXPECT(cl, ":0\r\n", "EXPIRE", "k", "10");
    EXPECT(cl, "+OK\r\n", "SET", "k", "v");
    EXPECT(cl, ":-1\r\n", "TTL", "k");
    EXPECT(cl, ":0\r\n", "EXPIRE", "k", "10", "XX");
    EXPECT(cl, ":0\r\n", "EXPIRE", "k", "10", "GT");
    EXPECT(cl, ":1\r\n", "EXPIRE", "k", "100", "NX");
    EXPECT(cl, ":0\r\n", "EXPIRE", "k", "10", "NX");
    EXPECT(cl, ":100\r\n", "TTL", "k");
    EXPECT(cl, ":0\r\n", "EXPIRE", "k", "50", "GT");
    EXPECT(cl, ":1\r\n", "EXPIRE", "k", "200", "gt");
    EXPECT(cl, ":1\r\n", "EXPIRE", "k", "20", "LT");
    EXPECT(cl, ":20\r\n", "TTL", "k");
    EXPECT(cl, "-ERR Unsupported option foo\r\n", "EXPIRE", "k", "1", "foo");
    EXPECT(cl,
           "-ERR NX and XX, GT or LT options at the same time are not "
           "compatible\r\n",
           "EXPIRE", "k", "1", "NX", "XX");
    EXPECT(cl,
           "-ERR GT and LT options at the same time are not "
           "compatible\r\n",
           "EXPIRE", "k", "1", "GT", "LT");
    EXPECT(cl, "-ERR value is not an integer or out of range\r\n", "EXPIRE",
           "k", "soon");
    EXPECT(cl, "-ERR invalid expire time in 'expire' command\r\n", "EXPIRE",
           "k", "9223372036854775807");
    EXPECT(cl, ":1\r\n", "EXPIRE", "k", "-1"); /* deletes it */
    EXPECT(cl, ":0\r\n", "EXISTS", "k");
    EXPECT(cl, ":-2\r\n", "TTL", "k");
}

Test(respd_expiry, set_ex_expires_after_about_a_second)
{
    double t0 = mono_ms();
    EXPECT(cl, "+OK\r\n", "SET", "k", "v", "EX", "1");
    EXPECT(cl, ":1\r\n", "TTL", "k");
    EXPECT(cl, "$1\r\nv\r\n", "GET", "k");
    poll_until(cl, ":-2\r\n", "TTL", "k");
    cr_assert_geq(mono_ms() - t0, 990, "expired early");
    EXPECT(cl, "$-1\r\n", "GET", "k");
    EXPECT(cl, ":0\r\n", "DBSIZE");
}

Test(respd_expiry, set_px_expires_after_its_milliseconds)
{
    double t0 = mono_ms();
    EXPECT(cl, "+OK\r\n", "SET", "k", "v", "PX", "300");
    EXPECT(cl, "+OK\r\n", "SET", "long", "v", "PX", "100000");
    poll_until(cl, "$-1\r\n", "GET", "k");
    cr_assert_geq(mono_ms() - t0, 295, "expired early");
    EXPECT(cl, ":1\r\n", "EXISTS", "long");
    EXPECT(cl, ":100\r\n", "TTL", "long");
}

Test(respd_expiry, the_sweeper_deletes_expired_keys_nobody_reads)
{
    char key[16];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "v%d", i);
        EXPECT(cl, "+OK\r\n", "SET", key, "x", "PX", "50");
    }
    EXPECT(cl, "+OK\r\n", "SET", "stays", "x");
    /* DBSIZE counts expired keys until they are deleted, so only the
     * sweeper can bring it down to 1. */
    poll_until(cl, ":1\r\n", "DBSIZE", NULL);
    EXPECT(cl, "$1\r\nx\r\n", "GET", "stays");
}

/* ---- respd_proto: pipelining, inline, errors ---------------------- */

Test(respd_proto, a_pipeline_of_100_commands_is_answered_in_order)
{
    char req[8192], want[8192];
    size_t rl = 0, wl = 0;
    for (int i = 0; i < 100; i++) {
        char v[16];
        int vl = snprintf(v, sizeof v, "%d", i * i);
        switch (i % 4) {
        case 0:
            rl += (size_t)snprintf(req + rl, sizeof req - rl,
                                   "*3\r\n$3\r\nSET\r\n$3\r\nk%02d\r\n$%d\r\n"
                                   "%s\r\n",
                                   i, vl, v);
            wl += (size_t)snprintf(want + wl, sizeof want - wl, "+OK\r\n");
            break;
        case 1:
            rl += (size_t)snprintf(req + rl, sizeof req - rl,
                                   "*2\r\n$3\r\nGET\r\n$3\r\nk%02d\r\n", i - 1);
            vl = snprintf(v, sizeof v, "%d", (i - 1) * (i - 1));
            wl += (size_t)snprintf(want + wl, sizeof want - wl, "$%d\r\n%s\r\n",
                                   vl, v);
            break;
        case 2:
            rl += (size_t)snprintf(req + rl, sizeof req - rl,
                                   "*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n");
            wl += (size_t)snprintf(want + wl, sizeof want - wl, ":%d\r\n",
                                   i / 4 + 1);
            break;
        default:
            rl += (size_t)snprintf(req + rl, sizeof req - rl, "PING\r\n");
            wl += (size_t)snprintf(want + wl, sizeof want - wl, "+PONG\r\n");
        }
    }
    send_bytes(cl, req, rl); /* one write */
    expect_bytes(cl, want, wl);
}

Test(respd_proto, a_pipeline_that_arrives_byte_by_byte_is_answered)
{
    const char *req = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n"
                      "GET k\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n";
    for (const char *p = req; *p != '\0'; p++) {
        send_bytes(cl, p, 1);
        usleep(200);
    }
    expect_str(cl, "+OK\r\n$5\r\nhello\r\n$2\r\nhi\r\n");
}

Test(respd_proto, inline_commands_work_as_in_redis)
{
    send_str(cl, "SET greeting \"hello world\"\r\n"
                 "get greeting\n"
                 "echo 'it\\'s'\r\n"
                 "echo \"tab\\there\\x41\"\r\n"
                 "\r\n"
                 "   \r\n"
                 "ping\r\n");
    expect_str(cl, "+OK\r\n$11\r\nhello world\r\n$4\r\nit's\r\n"
                   "$9\r\ntab\there\x41\r\n+PONG\r\n");
    send_str(cl, "echo \"unbalanced\r\n");
    expect_str(cl, "-ERR Protocol error: unbalanced quotes in request\r\n");
    expect_eof(cl);
}

Test(respd_proto, empty_multibulk_requests_are_skipped)
{
    send_str(cl, "*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n");
    expect_str(cl, "+PONG\r\n");
}

Test(respd_proto, unknown_commands_get_redis_error_string)
{
    EXPECT(cl,
           "-ERR unknown command 'foo', with args beginning with: "
           "'a' 'b' \r\n",
           "foo", "a", "b");
    EXPECT(cl, "-ERR unknown command 'FOO', with args beginning with: \r\n",
           "FOO");
    /* CR and LF in quoted bytes become spaces, as in Redis. */
    EXPECT(cl,
           "-ERR unknown command 'x y', with args beginning with: "
           "'a b' \r\n",
           "x\ry", "a\nb");
    /* At most 128 bytes of arguments are quoted. */
    char longarg[300];
    memset(longarg, 'z', sizeof longarg - 1);
    longarg[sizeof longarg - 1] = '\0';
    char want[400];
    snprintf(want, sizeof want,
             "-ERR unknown command 'nope', with args beginning with: "
             "'%.128s' \r\n",
             longarg);
    EXPECT(cl, want, "nope", longarg, "more");
    EXPECT(cl, "+PONG\r\n", "PING"); /* and the connection goes on */
}

Test(respd_proto, wrong_arity_errors_name_the_command)
{
    const char *fmt = "-ERR wrong number of arguments for '%s' command\r\n";
    char want[128];
    struct {
        const char *name;
        const char *args[4];
    } cases[] = {
        {"get", {"GET", NULL}},
        {"get", {"GET", "a", "b", NULL}},
        {"set", {"set", "k", NULL}},
        {"echo", {"Echo", NULL}},
        {"del", {"DEL", NULL}},
        {"exists", {"EXISTS", NULL}},
        {"incr", {"INCR", NULL}},
        {"expire", {"EXPIRE", "k", NULL}},
        {"ttl", {"TTL", "a", "b", NULL}},
        {"dbsize", {"DBSIZE", "x", NULL}},
        {"ping", {"PING", "a", "b", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(want, sizeof want, fmt, cases[i].name);
        const char *const *a = cases[i].args;
        size_t lens[4];
        int n = 0;
        for (; a[n] != NULL; n++)
            lens[n] = strlen(a[n]);
        send_argv(cl, n, a, lens);
        expect_str(cl, want);
    }
}

Test(respd_proto, protocol_errors_are_answered_and_the_connection_closed)
{
    struct {
        const char *req;
        const char *reply;
    } cases[] = {
        {"*x\r\n", "invalid multibulk length"},
        {"*2000000\r\n", "invalid multibulk length"},
        {"*1\r\n+PING\r\n", "expected '$', got '+'"},
        {"*1\r\n$-1\r\n", "invalid bulk length"},
        {"*1\r\n$600000000\r\n", "invalid bulk length"},
        {"*1\r\n$4x\r\nPING\r\n", "invalid bulk length"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = server_dial(&srv);
        send_str(fd, "PING\r\n"); /* what came before is answered */
        send_str(fd, cases[i].req);
        char want[128];
        snprintf(want, sizeof want, "+PONG\r\n-ERR Protocol error: %s\r\n",
                 cases[i].reply);
        expect_str(fd, want);
        expect_eof(fd);
        close(fd);
    }
    EXPECT(cl, "+PONG\r\n", "PING");
}

Test(respd_proto, config_get_answers_an_empty_list)
{
    EXPECT(cl, "*0\r\n", "CONFIG", "GET", "save");
}

/* ---- respd_bad_client: the server keeps serving everyone else ------ */

Test(respd_bad_client, garbage_gets_a_protocol_error_and_others_go_on)
{
    EXPECT(cl, "+OK\r\n", "SET", "k", "v");
    int bad = server_dial(&srv);
    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 97 + 13);
    junk[0] = '*'; /* a multibulk header that is not a number */
    send_bytes(bad, junk, sizeof junk);
    char line[256];
    recv_line(bad, line, sizeof line);
    cr_assert(strncmp(line, "-ERR Protocol error: ", 21) == 0, "got %s", line);
    expect_eof(bad);
    close(bad);
    /* Binary garbage without '*' is an inline request: an unknown
     * command, or too long a line; either way others are served. */
    bad = server_dial(&srv);
    for (int round = 0; round < 64; round++) /* it may be closed on us */
        if (send(bad, junk + 1, sizeof junk - 1, MSG_NOSIGNAL) < 0)
            break;
    EXPECT(cl, "$1\r\nv\r\n", "GET", "k");
    close_abruptly(bad);
    EXPECT(cl, "$1\r\nv\r\n", "GET", "k");
}

Test(respd_bad_client, a_truncated_request_then_close_is_dropped)
{
    const char *pieces[] = {
        "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc", /* mid-bulk */
        "*3\r\n$3\r\nSET\r\n$1",                    /* mid-header */
        "*3",                                       /* mid-count */
        "SET k tru",                                /* inline, no newline */
    };
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        int fd = server_dial(&srv);
        send_str(fd, pieces[i]);
        if (i % 2 == 0)
            close(fd);
        else
            close_abruptly(fd);
        EXPECT(cl, "$-1\r\n", "GET", "k"); /* nothing was half-run */
    }
    /* A half-closed client still gets the answer to what it sent. */
    int fd = server_dial(&srv);
    send_str(fd, "PING\r\n*1\r\n$4\r\nPI");
    shutdown(fd, SHUT_WR);
    expect_str(fd, "+PONG\r\n");
    expect_eof(fd);
    close(fd);
}

Test(respd_bad_client, a_1_mib_line_is_too_big_an_inline_request)
{
    size_t n = 1u << 20;
    char *line = malloc(n);
    cr_assert_not_null(line);
    memset(line, 'a', n);
    int fd = server_dial(&srv);
    /* The server answers after 64 KiB and then drops what follows until
     * the client is done, so the whole send completes. */
    send_bytes(fd, line, n);
    expect_str(fd, "-ERR Protocol error: too big inline request\r\n");
    expect_eof(fd);
    close(fd);
    /* A 1 MiB multibulk header line without CR is refused the same way. */
    fd = server_dial(&srv);
    line[0] = '*';
    send_bytes(fd, line, n);
    expect_str(fd, "-ERR Protocol error: too big mbulk count string\r\n");
    expect_eof(fd);
    close(fd);
    EXPECT(cl, "+PONG\r\n", "PING");
    free(line);
}

Test(respd_bad_client, clients_vanishing_mid_request_leave_others_served)
{
    size_t n = 1u << 20;
    char *v = malloc(n);
    cr_assert_not_null(v);
    memset(v, 'v', n);
    for (int i = 0; i < 20; i++) {
        int fd = server_dial(&srv);
        char head[64];
        snprintf(head, sizeof head, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%zu\r\n",
                 2 * n);
        send_str(fd, head);
        send_bytes(fd, v, n); /* half the value, then gone */
        if (i % 2 == 0)
            close_abruptly(fd);
        else
            close(fd);
        EXPECT(cl, ":0\r\n", "EXISTS", "k");
    }
    /* Gone while its reply is being written: a big GET it never reads. */
    const char *argv[] = {"SET", "big", v};
    const size_t lens[] = {3, 3, n};
    send_argv(cl, 3, argv, lens);
    expect_str(cl, "+OK\r\n");
    for (int i = 0; i < 10; i++) {
        int fd = server_dial(&srv);
        char req[4096];
        size_t len = 0;
        for (int j = 0; j < 50; j++)
            len += (size_t)snprintf(req + len, sizeof req - len, "GET big\r\n");
        send_bytes(fd, req, len);
        close_abruptly(fd);
    }
    EXPECT(cl, "+PONG\r\n", "PING");
    free(v);
}

Test(respd_bad_client, many_concurrent_clients_are_all_served)
{
    enum { CLIENTS = 200, ROUNDS = 5 };
    static int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        fds[i] = server_dial(&srv);
    for (int r = 0; r < ROUNDS; r++) {
        /* Every client has a request in flight before any reply is read. */
        for (int i = 0; i < CLIENTS; i++) {
            char key[16];
            snprintf(key, sizeof key, "c%d", i);
            send_cmd(fds[i], "INCR", key, (const char *)NULL);
            send_cmd(fds[i], "INCR", "shared", (const char *)NULL);
        }
        for (int i = 0; i < CLIENTS; i++) {
            char want[16];
            snprintf(want, sizeof want, ":%d\r\n", r + 1);
            expect_str(fds[i], want);
            char line[32];
            recv_line(fds[i], line, sizeof line);
            cr_assert_eq(line[0], ':');
        }
    }
    char want[32];
    snprintf(want, sizeof want, "$%d\r\n%d\r\n",
             snprintf(NULL, 0, "%d", CLIENTS * ROUNDS), CLIENTS * ROUNDS);
    EXPECT(cl, want, "GET", "shared");
    for (int i = 0; i < CLIENTS; i++)
        close(fds[i]);
    EXPECT(cl, ":201\r\n", "DBSIZE");
}

/* ---- respd_process: options and shutdown --------------------------- */

Test(respd_process, help_prints_usage_and_exits_0)
{
    char out[2048];
    const char *args[] = {"--help", NULL};
    int st = run_capture(RESPD_BIN, args, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_not_null(strstr(out, "usage:"), "%s", out);
    cr_assert_not_null(strstr(out, "--listen"), "%s", out);
}

Test(respd_process, a_bad_option_exits_2)
{
    char out[256];
    const char *args[] = {"--bogus", NULL};
    int st = run_capture(RESPD_BIN, args, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

Test(respd_process, sigterm_with_busy_clients_exits_0)
{
    struct server s;
    server_start(&s, RESPD_BIN, NULL);
    int idle = server_dial(&s);
    int partial = server_dial(&s);
    send_str(partial, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc");
    int reader = server_dial(&s); /* a big reply it does not read */
    char *v = calloc(1, 4u << 20);
    const char *argv[] = {"SET", "big", v};
    const size_t lens[] = {3, 3, 4u << 20};
    send_argv(reader, 3, argv, lens);
    expect_str(reader, "+OK\r\n");
    send_str(reader, "GET big\r\nGET big\r\n");
    EXPECT(idle, "+PONG\r\n", "PING");
    server_stop_clean(&s);
    expect_eof(idle);
    close(idle);
    close(partial);
    close(reader);
    free(v);
}

Test(respd_process, sigint_exits_0_too)
{
    struct server s;
    server_start(&s, RESPD_BIN, NULL);
    int fd = server_dial(&s);
    EXPECT(fd, "+PONG\r\n", "PING");
    cr_assert_eq(kill(s.pid, SIGINT), 0);
    expect_eof(fd);
    close(fd);
    int st = server_wait(&s);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}
