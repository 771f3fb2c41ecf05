/*
 * examples/http.c, linked in directly: the request parser on good and bad
 * input, on every prefix of a request, and on random and mutated bytes
 * (each input in an allocation of its exact size, so AddressSanitizer
 * catches a read past it); and the connection helper over a socketpair:
 * pipelined requests answered in one write, bodies larger than the read
 * buffer.
 */
#include "helpers.h"
#include "http.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

TestSuite(http_parse, .timeout = 60);
TestSuite(http_fuzz, .timeout = 120);
TestSuite(http_conn, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);

/* Parse a copy of s[0..n) in an exact-size allocation. */
static ssize_t parse_n(const char *s, size_t n, struct http_request *req)
{
    char *copy = malloc(n == 0 ? 1 : n);
    memcpy(copy, s, n);
    ssize_t r = http_parse_request(copy, n, req);
    free(copy);
    return r;
}

static ssize_t parse(const char *s, struct http_request *req)
{
    return parse_n(s, strlen(s), req);
}

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

Test(http_parse, a_simple_get_is_parsed_into_its_parts)
{
    static const char req_s[] = "GET /a/b?c=d HTTP/1.1\r\nHost: x\r\n"
                                "Accept:  */*  \r\n\r\nNEXT";
    char *buf = malloc(sizeof req_s);
    memcpy(buf, req_s, sizeof req_s);
    struct http_request req;
    ssize_t r = http_parse_request(buf, sizeof req_s - 1, &req);
    cr_assert_eq(r, (ssize_t)(sizeof req_s - 1 - 4));
    cr_assert(http_str_eq(req.method, "GET"));
    cr_assert(http_str_eq(req.target, "/a/b?c=d"));
    cr_assert_eq(req.minor, 1);
    cr_assert(req.keep_alive);
    cr_assert_eq(req.body_len, 0);
    cr_assert_eq(req.nfields, 2);
    cr_assert(http_str_eq(http_field(&req, "accept"), "*/*"));
    cr_assert(http_str_eq(http_field(&req, "HOST"), "x"));
    cr_assert_null(http_field(&req, "cookie").p);
    free(buf);
}

Test(http_parse, every_prefix_of_a_request_asks_for_more)
{
    const char *s = "\r\nPOST /q HTTP/1.1\r\nHost: x\r\nContent-Length: 3"
                    "\r\nConnection: close\r\n\r\n";
    struct http_request req;
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(parse_n(s, i, &req), 0, "prefix of %zu bytes", i);
    cr_assert_eq(parse_n(s, n, &req), (ssize_t)n);
    cr_assert_eq(req.body_len, 3);
    cr_assert_not(req.keep_alive);
}

Test(http_parse, bare_lf_line_ends_are_accepted)
{
    struct http_request req;
    cr_assert_gt(parse("GET / HTTP/1.1\nHost: x\n\n", &req), 0);
}

Test(http_parse, connection_defaults_follow_the_version)
{
    struct http_request req;
    cr_assert_gt(parse("GET / HTTP/1.0\r\n\r\n", &req), 0);
    cr_assert_not(req.keep_alive);
    cr_assert_gt(
        parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req), 0);
    cr_assert(req.keep_alive);
    cr_assert_gt(parse("GET / HTTP/1.1\r\nHost: x\r\n"
                       "Connection: keep-alive, close\r\n\r\n",
                       &req),
                 0);
    cr_assert_not(req.keep_alive);
    cr_assert_gt(parse("GET / HTTP/1.1\r\nHost: x\r\n"
                       "Connection: upgrade\r\n\r\n",
                       &req),
                 0);
    cr_assert(req.keep_alive);
}

Test(http_parse, malformed_requests_get_their_status)
{
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"garbage\r\n\r\n", 400},
        {"GET /\r\n\r\n", 400},
        {"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
        {"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n: x\r\nHost: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nA: b\x01\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\n\tfold\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
         "Content-Length: 2\r\n\r\n",
         400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: "
         "99999999999999999999999999\r\n\r\n",
         413},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
         501},
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        {"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505},
        {"GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400},
        {"\r\r\n", 400},
    };
    struct http_request req;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(parse(cases[i].req, &req), -cases[i].status,
                     "case %zu: %s", i, cases[i].req);
    /* Agreeing duplicates are fine. */
    cr_assert_gt(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                       "Content-Length: 2\r\n\r\n",
                       &req),
                 0);
}

Test(http_parse, oversized_headers_get_431)
{
    size_t n = HTTP_MAX_HEADER + 100;
    char *big = malloc(n);
    memset(big, 'a', n);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    struct http_request req;
    cr_assert_eq(http_parse_request(big, HTTP_MAX_HEADER - 1, &req), 0);
    cr_assert_eq(http_parse_request(big, HTTP_MAX_HEADER, &req), -431);
    cr_assert_eq(http_parse_request(big, n, &req), -431);
    /* Complete, but longer than the limit. */
    memcpy(big + n - 4, "\r\n\r\n", 4);
    cr_assert_eq(http_parse_request(big, n, &req), -431);
    free(big);

    char many[4096];
    size_t len = (size_t)sprintf(many, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < HTTP_MAX_FIELDS; i++)
        len += (size_t)sprintf(many + len, "X-%d: y\r\n", i);
    memcpy(many + len, "\r\n", 3);
    cr_assert_eq(parse(many, &req), -431);
}

Test(http_fuzz, random_bytes_never_crash_the_parser)
{
    uint32_t seed = 2463534242u;
    char buf[600];
    struct http_request req;
    for (int i = 0; i < 200000; i++) {
        size_t n = rnd(&seed) % sizeof buf;
        /* Bytes from a small alphabet that makes lines and tokens. */
        static const char alpha[] = "GET / HTTP/1.1\r\n:Host-Length0 \t\x80";
        for (size_t k = 0; k < n; k++)
            buf[k] = (rnd(&seed) & 3) == 0
                         ? (char)rnd(&seed)
                         : alpha[rnd(&seed) % (sizeof alpha - 1)];
        ssize_t r = parse_n(buf, n, &req);
        cr_assert(r <= (ssize_t)n, "parsed %zd of %zu bytes", r, n);
        if (r > 0)
            cr_assert_eq((size_t)r, req.header_len);
    }
}

Test(http_fuzz, mutated_requests_never_crash_the_parser)
{
    static const char good[] =
        "POST /query/abc?x=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n"
        "Content-Length: 4\r\nConnection: keep-alive\r\n\r\nbody";
    uint32_t seed = 88172645u;
    char buf[sizeof good + 8];
    struct http_request req;
    for (int i = 0; i < 200000; i++) {
        size_t n = sizeof good - 1;
        memcpy(buf, good, n);
        int edits = 1 + (int)(rnd(&seed) % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = rnd(&seed) % n;
            switch (rnd(&seed) % 3) {
            case 0: /* flip a byte */
                buf[at] = (char)rnd(&seed);
                break;
            case 1: /* cut */
                n = at;
                break;
            default: /* insert */
                if (n < sizeof buf) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = "\r\n :\t\0"[rnd(&seed) % 6];
                    n++;
                }
            }
            if (n == 0)
                break;
        }
        char *copy = malloc(n); /* exact size: ASan sees overreads */
        memcpy(copy, buf, n);
        ssize_t r = http_parse_request(copy, n, &req);
        cr_assert(r <= (ssize_t)n);
        if (r > 0) { /* every slice lies within what was parsed */
            cr_assert(req.target.p > copy &&
                      req.target.p + req.target.len < copy + r);
            for (int f = 0; f < req.nfields; f++)
                cr_assert(req.fields[f].value.p >= copy &&
                          req.fields[f].value.p + req.fields[f].value.len <
                              copy + r);
        }
        free(copy);
    }
}

/* ---- the connection helper over a socketpair ----------------------- */

struct conn_case {
    int fd;           /* the server side */
    int requests;     /* requests it answered */
    size_t body_seen; /* bytes of bodies it saw */
};

static int conn_server(void *arg)
{
    struct conn_case *cc = arg;
    struct http_conn *c = malloc(sizeof *c);
    struct http_request req;
    http_conn_init(c, cc->fd, 5);
    while (http_conn_next(c, &req) == 1) {
        cc->requests++;
        cc->body_seen += req.body_len;
        for (size_t i = 0; i < req.body_len; i++)
            cr_assert_eq(req.body[i], (char)('a' + i % 26));
        if (http_conn_respond(c, &req, 200, "text/plain", NULL, "ok", 2,
                              false) < 0)
            break;
    }
    http_conn_close(c);
    free(c);
    return 0;
}

static int conn_client(void *arg)
{
    int fd = *(int *)arg;
    static const char three[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                                "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                                "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(coro_send_all(fd, three, sizeof three - 1),
                 (ssize_t)(sizeof three - 1));
    /* The three answers come in one write, so one read holds them all
     * (socketpair writes are not split below the buffer size). */
    char buf[4096];
    ssize_t n = coro_read(fd, buf, sizeof buf);
    cr_assert_gt(n, 0);
    int count = 0;
    for (char *p = buf;
         (p = memmem(p, (size_t)(buf + n - p), "HTTP/1.1 200", 12)) != NULL;
         p++)
        count++;
    cr_assert_eq(count, 3, "%d responses in the first read", count);

    /* A body larger than the read buffer. */
    size_t blen = 100000;
    char *req = malloc(blen + 128);
    int h = sprintf(req,
                    "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: %zu"
                    "\r\n\r\n",
                    blen);
    for (size_t i = 0; i < blen; i++)
        req[h + i] = (char)('a' + i % 26);
    cr_assert_eq(coro_send_all(fd, req, (size_t)h + blen),
                 (ssize_t)((size_t)h + blen));
    free(req);
    n = coro_read(fd, buf, sizeof buf);
    cr_assert_gt(n, 12);
    cr_assert_eq(memcmp(buf, "HTTP/1.1 200", 12), 0);
    coro_close(fd);
    return 0;
}

Test(http_conn, pipelined_answers_go_out_in_one_write_and_big_bodies_fit)
{
    int sv[2];
    cr_assert_eq(coro_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct conn_case cc = {.fd = sv[0]};
    cr_assert_not_null(coro_spawn(conn_server, &cc, "server"));
    cr_assert_not_null(coro_spawn(conn_client, &sv[1], "client"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(cc.requests, 4);
    cr_assert_eq(cc.body_seen, 100000);
}
