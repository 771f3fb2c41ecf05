/*
 * examples/httpd as a separate process over real sockets: responses and
 * their Content-Length, keep-alive, pipelining, errors (404, 405, 400,
 * 431, 501, 408), bad input (garbage, random bytes, a 1 MiB header line,
 * truncated requests, clients that vanish), the idle timeout, many
 * connections at once, a clean exit (status 0) on SIGTERM and
 * SIGINT, and its backdoor console while it serves.  Under AddressSanitizer a leak in the server fails its exit
 * status, so every test checks for leaks too.
 */
#include "httpc.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef HTTPD_BIN
#error "HTTPD_BIN: the path of the httpd example"
#endif

TestSuite(httpd, .timeout = 120);

static const char get_root[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";

/* Stop s with signo and expect a clean exit. */
static void stop(struct server *s, int signo)
{
    int st = server_stop(s, signo);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "httpd ended with status 0x%x", st);
}

static void expect_hello(const struct response *r)
{
    cr_assert_eq(r->status, 200, "status %d", r->status);
    cr_assert_eq(r->length, 13);
    cr_assert_str_eq(r->body, "Hello, World!");
}

/* A fresh connection still gets GET / answered. */
static void expect_serving(const struct server *s)
{
    struct client *c = malloc(sizeof *c);
    struct response r;
    client_roundtrip(client_open(c, s), get_root, &r);
    expect_hello(&r);
    client_close(c);
    free(c);
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

Test(httpd, help_prints_usage_and_exits_0)
{
    char out[4096];
    int st = run_capture(HTTPD_BIN, (const char *[]){"--help", NULL}, out,
                         sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

Test(httpd, an_unknown_option_exits_2)
{
    char out[4096];
    int st = run_capture(HTTPD_BIN, (const char *[]){"--bogus", NULL}, out,
                         sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    st = run_capture(HTTPD_BIN, (const char *[]){"--idle", "soon", NULL}, out,
                     sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

Test(httpd, profile_saves_a_profile_of_the_serving_at_the_clean_stop)
{
    char dir[] = "/tmp/coro-httpd-prof-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/httpd.prof", dir);
    struct server s;
    server_start(&s, HTTPD_BIN, (const char *[]){"--profile", path, NULL});
    static struct client c;
    struct response r;
    client_open(&c, &s);
    for (int i = 0; i < 100; i++) {
        client_roundtrip(&c, get_root, &r);
        expect_hello(&r);
    }
    client_close(&c);
    stop(&s, SIGTERM);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "saved at the stop");
    char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    cr_assert(strncmp(text, "coro-profile 1\nmode sample\n", 27) == 0,
              "%.60s", text);
    cr_assert_not_null(strstr(text, " <wait>\n"), "the loop waited");
    cr_assert_not_null(strstr(text, "\nend\n"));
    unlink(path);
    rmdir(dir);

    char out[4096];
    int st = run_capture(HTTPD_BIN,
                         (const char *[]){"--profile-mode", "both", NULL},
                         out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

Test(httpd, get_root_returns_hello_world_with_its_content_length)
{
    struct server s;
    server_start(&s, HTTPD_BIN, NULL);
    static struct client c;
    struct response r;
    client_roundtrip(client_open(&c, &s), get_root, &r);
    expect_hello(&r);
    cr_assert_not(r.close);
    char v[64];
    cr_assert(response_header(&r, "Date", v, sizeof v));
    client_close(&c);
    stop(&s, SIGTERM);
}

Test(httpd, head_gets_the_headers_of_get_without_the_body)
{
    struct server s;
    server_start(&s, HTTPD_BIN, NULL);
    static struct client c;
    struct response r;
    client_open(&c, &s);
    cr_assert(client_send(&c, "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n", -1));
    cr_assert(client_response(&c, &r, true));
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.length, 13);
    client_roundtrip(&c, get_root, &r); /* no stray body before it */
    expect_hello(&r);
    client_close(&c);
    stop(&s, SIGTERM);
}

Test(httpd, keep_alive_serves_several_requests_on_one_connection)
{
    struct server s;
    server_start(&s, HTTPD_BIN, NULL);
    static struct client c;
    struct response r;
    client_open(&c, &s);
    for (int i = 0; i < 5; i++) {
        client_roundtrip(&c, get_root, &r);
        expect_hello(&r);
    }
    client_roundtrip(&c,
                     "GET /?x=1 HTTP/1.1\r\nHost: t\r\n"
                     "Connection: keep-alive\r\n\r\n",
                     &r);
    expect_hello(&r);
    client_roundtrip(&c,
                     "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                     "\r\n",
                     &r);
    expect_hello(&r);
    cr_assert(r.close);
    cr_assert(client_sees_eof(&c));
    client_close(&c);
    stop(&s, SIGTERM);
}

Test(httpd, pipelined_requests_are_answered_in_order)
{
    struct server s;
    server_start(&s, HTTPD_BIN, NULL);
    static struct client c;
    struct response r;
    client_open(&c, &s);
    cr_assert(client_send(&c,
                          "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                          "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n"
                          "POST / HTTP/1.1\r\nHost: t\r\n"
                          "Content-Length: 5\r\n\r\nhello",
                          -1));
    cr_assert(client_response(&c, &r, false));
    expect_hello(&r);
    cr_assert(client_response(&c, &r, false));
    cr_assert_eq(r.status, 404);
    cr_assert(client_response(&c, &r, false));
    cr_assert_eq(r.status, 405);
    client_roundtrip(&c, get_root, &r); /* the body was skipped */
    expect_hello(&r);

    /* Many at once: more than one read buffer's worth of requests. */
    char *many = malloc(sizeof get_root * 1000);
    size_t n = 0;
    for (int i = 0; i < 1000; i++) {
        memcpy(many + n, get_root, sizeof get_root - 1);
        n += sizeof get_root - 1;
    }
    cr_assert(client_send(&c, many, n));
    free(many);
    for (int i = 0; i < 1000; i++) {
        cr_assert(client_response(&c, &r, false), "response %d", i);
        expect_hello(&r);
    }
    client_close(&c);
    stop(&s, SIGTERM);
}

Test(httpd, an_unknown_path_gets_404_and_the_connection_stays)
{
    struct server s;
    server_start(&s, HTTPD_BIN, NULL);
    static struct client c;
    struct response r;
    client_roundtrip(client_open(&c, &s),
                     "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    cr_assert_eq(r.status, 404);
    cr_assert_eq(r.length, (long)strlen(r.body));
    cr_assert_not(r.close);
    client_roundtrip(&c, get_root, &r);
    expect_hello(&r);
    client_close(&c);
    stop(&s, SIGTERM);
}

Test(httpd, garbage_gets_400_and_a_close)
{
    struct server s;
    server_start(&s, HTTPD_BIN, NULL);
    static const char *bad[] = {
        "\x01\x02\xff\xfe garbage\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",                       /* no Host */
        "GET  / HTTP/1.1\r\nHost: t\r\n\r\n",           /* two spaces */
        "GET / HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\rHost: t\r\n\r\n",              /* bare CR */
        "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
        ("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
         "Content-Length: 2\r\n\r\n"), /* two lengths */
        "GET / FTP/1.1\r\nHost: t\r\n\r\n",
    };
    static struct client c;
    struct response r;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        client_roundtrip(client_open(&c, &s), bad[i], &r);
        cr_assert_eq(r.status, 400, "request %zu: status %d", i, r.status);
        cr_assert(r.close);
        cr_assert(client_sees_eof(&c), "request %zu", i);
        client_close(&c);
    }
    client_roundtrip(client_open(&c, &s), "GET / HTTP/2.0\r\nHost: t\r\n\r\n",
                     &r);
    cr_assert_eq(r.status, 505);
    client_close(&c);
    client_roundtrip(client_open(&c, &s),
                     "POST / HTTP/1.1\r\nHost: t\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
                     "\r\n",
                     &r);
    cr_assert_eq(r.status, 501);
    client_close(&c);
    client_roundtrip(client_open(&c, &s),
                     "POST / HTTP/1.1\r\nHost: t\r\n"
                     "Content-Length: 99999999999\r\n\r\n",
                     &r);
    cr_assert_eq(r.status, 413);
    client_close(&c);
    expect_serving(&s);
    stop(&s, SIGTERM);
}

Test(httpd, random_bytes_never_stop_the_server)
{
    struct server s;
    server_start(&s, HTTPD_BIN, NULL);
    static struct client c;
    static char junk[20000];
    uint32_t seed = 12345;
    for (int round = 0; round < 30; round++) {
        size_t n = 1 + rnd(&seed) % sizeof junk;
        for (size_t i = 0; i < n; i++)
            junk[i] = (char)rnd(&seed);
        if (round % 3 == 0) /* a plausible start, then junk */
            memcpy(junk, "GET / HTTP/1.1\r\n", 16 < n ? 16 : n);
        client_open(&c, &s);
        if (client_send(&c, junk, n)) {
            shutdown(c.fd, SHUT_WR);
            struct response r;
            if (client_response(&c, &r, false))
                cr_assert(r.status >= 400 && r.status < 600,
                          "round %d: status %d", round, r.status);
        }
        client_close(&c);
    }
    expect_serving(&s);
    stop(&s, SIGTERM);
}

Test(httpd, a_megabyte_header_line_gets_431)
{
    struct server s;
    server_start(&s, HTTPD_BIN, NULL);
    size_t n = 1 << 20;
    char *req = malloc(n + 64);
    int k = sprintf(req, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(req + k, 'a', n);
    memcpy(req + k + n, "\r\n\r\n", 4);
    size_t len = (size_t)k + n + 4;

    /* Send until the whole request is gone or the answer comes. */
    static struct client c;
    client_open(&c, &s);
    fcntl(c.fd, F_SETFL, O_NONBLOCK);
    size_t off = 0;
    while (off < len) {
        struct pollfd pf = {c.fd, POLLIN | POLLOUT, 0};
        cr_assert_eq(poll(&pf, 1, HTTPC_TIMEOUT_SEC * 1000), 1);
        if (pf.revents & (POLLIN | POLLERR | POLLHUP))
            break;
        ssize_t w = send(c.fd, req + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN)
            continue;
        if (w < 0)
            break; /* the server closed: its answer is there */
        off += (size_t)w;
    }
    fcntl(c.fd, F_SETFL, 0);
    free(req);
    struct response r;
    cr_assert(client_response(&c, &r, false));
    cr_assert_eq(r.status, 431);
    cr_assert(r.close);
    client_close(&c);
    expect_serving(&s);
    stop(&s, SIGTERM);
}

Test(httpd, a_truncated_request_then_close_gets_nothing_and_others_go_on)
{
    struct server s;
    server_start(&s, HTTPD_BIN, NULL);
    static struct client c;
    client_open(&c, &s);
    cr_assert(client_send(&c, "GET / HTTP/1.1\r\nHo", -1));
    shutdown(c.fd, SHUT_WR);
    cr_assert(client_sees_eof(&c), "a response to half a request");
    client_close(&c);
    expect_serving(&s);
    stop(&s, SIGTERM);
}

Test(httpd, a_client_vanishing_mid_request_does_not_disturb_others)
{
    struct server s;
    server_start(&s, HTTPD_BIN, NULL);
    static struct client a, b;
    struct response r;
    client_open(&b, &s);
    client_roundtrip(&b, get_root, &r);
    expect_hello(&r);
    client_open(&a, &s);
    cr_assert(client_send(&a, "GET / HTTP/1.1\r\nHost: t\r\nX-Half: ", -1));
    client_roundtrip(&b, get_root, &r); /* served while a hangs */
    expect_hello(&r);
    client_reset(&a); /* a vanishes: RST mid-request */
    client_roundtrip(&b, get_root, &r);
    expect_hello(&r);
    /* Mid-body too. */
    client_open(&a, &s);
    cr_assert(client_send(&a,
                          "POST / HTTP/1.1\r\nHost: t\r\n"
                          "Content-Length: 100000\r\n\r\nabc",
                          -1));
    client_roundtrip(&b, get_root, &r);
    expect_hello(&r);
    client_reset(&a);
    client_roundtrip(&b, get_root, &r);
    expect_hello(&r);
    client_close(&b);
    expect_serving(&s);
    stop(&s, SIGTERM);
}

Test(httpd, an_idle_connection_is_closed_after_the_idle_timeout)
{
    struct server s;
    server_start(&s, HTTPD_BIN, (const char *[]){"--idle", "0.3", NULL});
    static struct client c;
    struct response r;
    client_roundtrip(client_open(&c, &s), get_root, &r);
    expect_hello(&r);
    double t0 = now_sec();
    cr_assert(client_sees_eof(&c));
    double dt = now_sec() - t0;
    cr_assert(dt >= 0.2 && dt < 10, "closed after %.3f s", dt);
    client_close(&c);

    /* Silence in the middle of a request gets 408 first. */
    client_open(&c, &s);
    cr_assert(client_send(&c, "GET / HTTP/1.1\r\n", -1));
    cr_assert(client_response(&c, &r, false));
    cr_assert_eq(r.status, 408);
    cr_assert(client_sees_eof(&c));
    client_close(&c);
    stop(&s, SIGTERM);
}

Test(httpd, a_header_trickled_a_byte_at_a_time_gets_408_after_the_idle_time)
{
    struct server s;
    server_start(&s, HTTPD_BIN, (const char *[]){"--idle", "0.5", NULL});
    int fd = server_dial(&s);
    send_str(fd, "GET / HTTP/1.1\r\nX-Slow: ");
    /* A byte every 0.1 s: each read waits far less than --idle, but the
     * header as a whole must be in within it. */
    double t0 = now_sec(), dt = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, 100) == 0) {
        dt = now_sec() - t0;
        cr_assert_lt(dt, 20, "still no answer after %.1f s", dt);
        cr_assert_eq(send(fd, "x", 1, MSG_NOSIGNAL), 1, "%s", strerror(errno));
    }
    cr_assert_geq(now_sec() - t0, 0.4);
    char buf[64] = "";
    recv_upto(fd, buf, 12);
    cr_assert_str_eq(buf, "HTTP/1.1 408");
    close(fd);
    stop(&s, SIGTERM);
}

Test(httpd, http_1_0_closes_unless_asked_to_keep_alive)
{
    struct server s;
    server_start(&s, HTTPD_BIN, NULL);
    static struct client c;
    struct response r;
    client_roundtrip(client_open(&c, &s), "GET / HTTP/1.0\r\n\r\n", &r);
    expect_hello(&r);
    cr_assert(r.close);
    cr_assert(client_sees_eof(&c));
    client_close(&c);
    client_roundtrip(client_open(&c, &s),
                     "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r);
    expect_hello(&r);
    cr_assert_not(r.close);
    char v[32];
    cr_assert(response_header(&r, "Connection", v, sizeof v));
    cr_assert_str_eq(v, "keep-alive");
    client_roundtrip(&c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                     &r);
    expect_hello(&r);
    client_close(&c);
    stop(&s, SIGTERM);
}

Test(httpd, serves_hundreds_of_concurrent_connections)
{
    enum { N = 300 };
    struct server s;
    server_start(&s, HTTPD_BIN, NULL);
    struct client **cs = calloc(N, sizeof *cs);
    for (int i = 0; i < N; i++) {
        cs[i] = malloc(sizeof **cs);
        client_open(cs[i], &s);
    }
    struct response r;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++)
            cr_assert(client_send(cs[i], get_root, -1));
        for (int i = N - 1; i >= 0; i--) {
            cr_assert(client_response(cs[i], &r, false), "conn %d", i);
            expect_hello(&r);
        }
    }
    for (int i = 0; i < N; i++) {
        client_close(cs[i]);
        free(cs[i]);
    }
    free(cs);
    stop(&s, SIGTERM);
}

Test(httpd, sigint_with_connections_open_also_exits_0)
{
    struct server s;
    server_start(&s, HTTPD_BIN, NULL);
    static struct client a, b;
    struct response r;
    client_roundtrip(client_open(&a, &s), get_root, &r);
    client_open(&b, &s);
    cr_assert(client_send(&b, "GET / HTTP/1.1\r\n", -1)); /* half */
    stop(&s, SIGINT);
    cr_assert(client_sees_eof(&a));
    client_close(&a);
    client_close(&b);
}

/* ------------------------------------------------------------------ */
/* The backdoor console of a running httpd                             */

/* A blocking client of the console's unix socket, every wait bounded. */
static int bd_dial(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%.100s", path);
    struct timeval tv = {.tv_sec = HTTPC_TIMEOUT_SEC};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0,
                 "connect %s: %s", path, strerror(errno));
    return fd;
}

/* Read until want has come; return what came (CR dropped), through want. */
static const char *bd_until(int fd, const char *want)
{
    static char buf[1 << 16];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        char c;
        ssize_t n = recv(fd, &c, 1, 0);
        cr_assert_eq(n, 1, "waiting for '%s': %s; got: %.*s", want,
                     n < 0 ? strerror(errno) : "EOF", (int)len, buf);
        if (c == '\r')
            continue;
        buf[len++] = c;
        buf[len] = '\0';
        if (len >= strlen(want) && strcmp(buf + len - strlen(want), want) == 0)
            return buf;
    }
    cr_assert_fail("no '%s' in %zu bytes", want, len);
    return NULL;
}

static const char *bd_cmd(int fd, const char *line)
{
    send_str(fd, line);
    send_str(fd, "\n");
    return bd_until(fd, "coro> ");
}

Test(httpd, its_backdoor_shows_and_changes_it_while_it_keeps_serving)
{
    char dir[] = "/tmp/coro_httpd_bd_XXXXXX", path[64], arg[80];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/bd.sock", dir);
    snprintf(arg, sizeof arg, "unix:%s", path);
    const char *args[] = {"--backdoor", arg, NULL};
    struct server s;
    server_start(&s, HTTPD_BIN, args);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);

    int a = bd_dial(path);
    bd_until(a, "coro> ");
    expect_serving(&s);
    cr_assert(strstr(bd_cmd(a, "get requests"), "requests = 1\n"));

    /* An idle keep-alive connection is a coroutine waiting in a read. */
    struct client *c = malloc(sizeof *c);
    struct response r;
    client_roundtrip(client_open(c, &s), get_root, &r);
    const char *out = bd_cmd(a, "ps");
    cr_assert(strstr(out, " waiting ") && strstr(out, " conn "), "%s", out);
    cr_assert(strstr(bd_cmd(a, "get connections"), "connections = 1\n"));
    cr_assert(strstr(bd_cmd(a, "set greeting Hi"), "greeting = \"Hi\""));
    client_roundtrip(c, get_root, &r);
    cr_assert_str_eq(r.body, "Hi");
    bd_cmd(a, "set greeting 'Hello, World!'");
    cr_assert(strstr(bd_cmd(a, "set requests 0"), "read-only"));

    /* A second session streams the log; a stall shows up in it, and the
     * server keeps serving throughout. */
    int b = bd_dial(path);
    bd_until(b, "coro> ");
    send_str(b, "log\n");
    bd_until(b, "press Enter to stop\n");
    cr_assert(strstr(bd_cmd(a, "stall 300"), "hold the CPU for 300 ms"));
    bd_until(b, "'stall' held the CPU ");
    client_roundtrip(c, get_root, &r);
    cr_assert_eq(r.status, 200);
    send_str(b, "\n");
    bd_until(b, "log: stopped\n");

    /* A session that vanishes mid-command costs nothing. */
    int v = bd_dial(path);
    bd_until(v, "coro> ");
    send_str(v, "where all\n");
    close_abruptly(v);
    expect_serving(&s);
    cr_assert(strstr(bd_cmd(a, "stats"), "2 of 8 sessions"));

    client_close(c);
    free(c);
    close(a);
    close(b);
    server_stop_clean(&s);
    cr_assert_eq(stat(path, &st), -1, "the socket is gone");
    cr_assert_eq(rmdir(dir), 0);
}
