/*
 * Driving an example server as a separate process over real sockets:
 * start it on port 0 and read the address it prints, talk HTTP to it with
 * plain blocking sockets (every wait bounded by SO_RCVTIMEO/SO_SNDTIMEO),
 * stop it with a signal and collect its exit status.  Used by
 * test_httpd.c and test_trampoline.c; failures abort the test.
 */
#ifndef CORO_TEST_HTTPC_H
#define CORO_TEST_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Bound of every wait of the client side, in seconds. */
#define HTTPC_TIMEOUT_SEC 20

/* A server process. */
struct server {
    pid_t pid;      /* the child */
    int out;        /* read end of its stdout */
    char addr[128]; /* "127.0.0.1:PORT", as it printed it */
};

/* Start prog with the given arguments (NULL-terminated, after argv[0])
 * plus "--listen 127.0.0.1:0", and wait for its "listening on" line. */
void server_start(struct server *s, const char *prog, ...);

/* Send signo and wait for the end; returns the wait(2) status. */
int server_stop(struct server *s, int signo);

/* Run prog with argv (NULL-terminated, argv[0] included) to its end, its
 * stdout read and dropped, its stderr going to /dev/null; returns the
 * wait(2) status. */
int run_status(const char *prog, const char *const argv[]);

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
