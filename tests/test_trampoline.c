/*
 * examples/trampoline as a separate process over real sockets: a device's
 * GET, a client's POST and the device's PUT make a round trip; timeouts
 * give 504; a device that leaves with a query gives its POST 502; devices
 * by id are independent; bad input and unknown paths are refused; SIGTERM
 * with waiters parked ends it cleanly (status 0, and no leak under ASan).
 */
#include "httpc.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#ifndef TRAMPOLINE_BIN
#error "TRAMPOLINE_BIN: the path of the trampoline example"
#endif

TestSuite(trampoline, .timeout = 120);

static void stop(struct server *s)
{
    int st = server_stop(s, SIGTERM);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "trampoline ended with status 0x%x", st);
}

/* Send a request with a body. */
static void send_req(struct client *c, const char *method, const char *path,
                     const char *body)
{
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n"
                     "\r\n%s",
                     method, path, strlen(body), body);
    cr_assert(client_send(c, req, (size_t)n));
}

static void expect(struct client *c, int status, const char *body)
{
    struct response r;
    cr_assert(client_response(c, &r, false), "no response (want %d)", status);
    cr_assert_eq(r.status, status, "status %d, want %d: %s", r.status, status,
                 r.body);
    if (body != NULL)
        cr_assert_str_eq(r.body, body);
}

Test(trampoline, help_prints_usage_and_an_unknown_option_exits_2)
{
    char out[4096];
    int st = run_capture(TRAMPOLINE_BIN, (const char *[]){"--help", NULL}, out,
                         sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = run_capture(TRAMPOLINE_BIN, (const char *[]){"--nope", NULL}, out,
                     sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

Test(trampoline, get_post_and_put_make_a_round_trip)
{
    struct server s;
    server_start(&s, TRAMPOLINE_BIN, NULL);
    static struct client dev, cli;
    client_open(&dev, &s);
    client_open(&cli, &s);
    send_req(&dev, "GET", "/query/d1", "");
    send_req(&cli, "POST", "/query/d1", "ping");
    expect(&dev, 200, "ping");
    send_req(&dev, "PUT", "/query/d1", "pong");
    expect(&dev, 204, NULL);
    expect(&cli, 200, "pong");

    /* Again on the same connections, the POST first this time, and on
     * the device without an id. */
    send_req(&cli, "POST", "/query", "ping2");
    send_req(&dev, "GET", "/query", "");
    expect(&dev, 200, "ping2");
    send_req(&dev, "PUT", "/query", "pong2");
    expect(&dev, 204, NULL);
    expect(&cli, 200, "pong2");
    client_close(&dev);
    client_close(&cli);
    stop(&s);
}

Test(trampoline, queries_wait_in_order_for_one_device)
{
    struct server s;
    server_start(&s, TRAMPOLINE_BIN, NULL);
    static struct client dev, c1, c2;
    client_open(&dev, &s);
    client_open(&c1, &s);
    client_open(&c2, &s);
    send_req(&c1, "POST", "/query/d", "first");
    send_req(&dev, "GET", "/query/d", "");
    expect(&dev, 200, "first"); /* c1's query is queued: now c2's */
    send_req(&c2, "POST", "/query/d", "second");
    send_req(&dev, "PUT", "/query/d", "r1");
    expect(&dev, 204, NULL);
    expect(&c1, 200, "r1");
    send_req(&dev, "GET", "/query/d", "");
    expect(&dev, 200, "second");
    send_req(&dev, "PUT", "/query/d", "r2");
    expect(&dev, 204, NULL);
    expect(&c2, 200, "r2");
    client_close(&dev);
    client_close(&c1);
    client_close(&c2);
    stop(&s);
}

Test(trampoline, a_post_no_device_takes_times_out_with_504)
{
    struct server s;
    server_start(&s, TRAMPOLINE_BIN, (const char *[]){"--timeout", "0.3", NULL});
    static struct client cli;
    client_open(&cli, &s);
    send_req(&cli, "POST", "/query/nobody", "hello?");
    expect(&cli, 504, NULL);
    /* The query left with its POST: a device arriving now gets nothing. */
    static struct client dev;
    client_open(&dev, &s);
    send_req(&dev, "GET", "/query/nobody", "");
    expect(&dev, 504, NULL);
    client_close(&dev);
    client_close(&cli);
    stop(&s);
}

Test(trampoline, a_reply_that_never_comes_times_out_with_504)
{
    struct server s;
    server_start(&s, TRAMPOLINE_BIN, (const char *[]){"--timeout", "0.5", NULL});
    static struct client dev, cli;
    client_open(&dev, &s);
    client_open(&cli, &s);
    send_req(&dev, "GET", "/query/slow", "");
    send_req(&cli, "POST", "/query/slow", "q");
    expect(&dev, 200, "q");
    expect(&cli, 504, NULL); /* the device never PUTs */
    send_req(&dev, "PUT", "/query/slow", "late");
    expect(&dev, 409, NULL); /* nobody waits for it any more */
    client_close(&dev);
    client_close(&cli);
    stop(&s);
}

Test(trampoline, a_device_that_disconnects_releases_its_waiter_with_502)
{
    struct server s;
    server_start(&s, TRAMPOLINE_BIN, NULL);
    static struct client dev, cli;
    client_open(&dev, &s);
    client_open(&cli, &s);
    send_req(&dev, "GET", "/query/d", "");
    send_req(&cli, "POST", "/query/d", "q");
    expect(&dev, 200, "q");
    client_close(&dev); /* gone without a PUT */
    expect(&cli, 502, NULL);
    client_close(&cli);
    stop(&s);
}

Test(trampoline, two_devices_by_id_are_independent)
{
    struct server s;
    server_start(&s, TRAMPOLINE_BIN, NULL);
    static struct client da, db, ca, cb;
    client_open(&da, &s);
    client_open(&db, &s);
    client_open(&ca, &s);
    client_open(&cb, &s);
    send_req(&da, "GET", "/query/a", "");
    send_req(&db, "GET", "/query/b", "");
    send_req(&cb, "POST", "/query/b", "for-b");
    send_req(&ca, "POST", "/query/a", "for-a");
    expect(&db, 200, "for-b");
    expect(&da, 200, "for-a");
    send_req(&db, "PUT", "/query/b", "from-b");
    expect(&db, 204, NULL);
    expect(&cb, 200, "from-b");
    send_req(&da, "PUT", "/query/a", "from-a");
    expect(&da, 204, NULL);
    expect(&ca, 200, "from-a");
    client_close(&da);
    client_close(&db);
    client_close(&ca);
    client_close(&cb);
    stop(&s);
}

Test(trampoline, a_put_with_nothing_to_answer_gets_409)
{
    struct server s;
    server_start(&s, TRAMPOLINE_BIN, NULL);
    static struct client c;
    client_open(&c, &s);
    send_req(&c, "PUT", "/query/x", "reply");
    expect(&c, 409, NULL);
    client_close(&c);
    stop(&s);
}

Test(trampoline, bad_requests_and_unknown_paths_are_refused)
{
    struct server s;
    server_start(&s, TRAMPOLINE_BIN, NULL);
    static struct client c;
    client_open(&c, &s);
    send_req(&c, "GET", "/other", "");
    expect(&c, 404, NULL);
    send_req(&c, "GET", "/query/bad id", "");
    expect(&c, 400, NULL); /* a space in the target: malformed */
    client_close(&c);
    client_open(&c, &s);
    send_req(&c, "GET", "/query/a/b", "");
    expect(&c, 404, NULL);
    send_req(&c, "DELETE", "/query/a", "");
    expect(&c, 405, NULL);
    cr_assert(client_send(&c, "\x16\x03\x01 not http\r\n\r\n", -1));
    expect(&c, 400, NULL);
    cr_assert(client_sees_eof(&c));
    client_close(&c);
    /* A client vanishing mid-request changes nothing for the others. */
    client_open(&c, &s);
    cr_assert(client_send(&c,
                          "POST /query/z HTTP/1.1\r\nHost: t\r\n"
                          "Content-Length: 10\r\n\r\nabc",
                          -1));
    client_reset(&c);
    client_open(&c, &s);
    send_req(&c, "PUT", "/query/z", "");
    expect(&c, 409, NULL);
    client_close(&c);
    stop(&s);
}

Test(trampoline, sigterm_with_waiters_parked_exits_0)
{
    struct server s;
    server_start(&s, TRAMPOLINE_BIN, NULL);
    static struct client dev, cli, dev2, cli2;
    client_open(&dev, &s);
    client_open(&cli, &s);
    client_open(&dev2, &s);
    client_open(&cli2, &s);
    send_req(&dev, "GET", "/query/a", "");   /* a device waiting */
    send_req(&cli, "POST", "/query/b", "q"); /* a client waiting */
    send_req(&dev2, "GET", "/query/c", "");
    send_req(&cli2, "POST", "/query/c", "q2");
    expect(&dev2, 200, "q2"); /* a query taken, awaiting a reply */
    stop(&s);
    cr_assert(client_sees_eof(&dev));
    cr_assert(client_sees_eof(&cli));
    client_close(&dev);
    client_close(&cli);
    client_close(&dev2);
    client_close(&cli2);
}
