/*
 * An HTTP client for the tests of the example servers (started and
 * stopped with server_proc.h): plain blocking sockets, every wait bounded
 * by SO_RCVTIMEO/SO_SNDTIMEO.  Used by test_httpd.c and
 * test_trampoline.c; failures abort the test.
 */
#ifndef CORO_TEST_HTTPC_H
#define CORO_TEST_HTTPC_H

#include "server_proc.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Bound of every wait of the client side, in seconds. */
#define HTTPC_TIMEOUT_SEC 20

/* A client connection with a read buffer (for pipelined responses). */
struct client {
    int fd;
    size_t len; /* bytes buffered in buf */
    char buf[1 << 16];
};

/* Connect to s (blocking, with timeouts).  Returns c. */
struct client *client_open(struct client *c, const struct server *s);
void client_close(struct client *c);
/* Close with a reset (SO_LINGER 0): a client that vanishes. */
void client_reset(struct client *c);

/* Send all of p (a string when n is (size_t)-1); false if the server
 * closed the connection first. */
bool client_send(struct client *c, const void *p, size_t n);

/* One response. */
struct response {
    int status;      /* status code */
    bool close;      /* it said Connection: close */
    long length;     /* Content-Length, -1 without one */
    char head[4096]; /* status line and headers, NUL-terminated */
    char body[8192]; /* length bytes plus a NUL */
};

/* Read one response (for a HEAD request, pass head true: no body).
 * Returns true, or false when the connection ended or failed before a
 * whole response came (r->status is then 0). */
bool client_response(struct client *c, struct response *r, bool head);

/* Send req and read its response; asserts it came. */
void client_roundtrip(struct client *c, const char *req, struct response *r);

/* Whether the server closed the connection: the next read sees EOF (or
 * a reset) within the timeout, with no byte before it. */
bool client_sees_eof(struct client *c);

/* A header's value in r->head (case-insensitive name), copied into out;
 * false if absent. */
bool response_header(const struct response *r, const char *name, char *out,
                     size_t size);

#endif
