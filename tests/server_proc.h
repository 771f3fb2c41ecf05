/*
 * Driving an example server as a child process over real sockets, for
 * the tests of every example server (httpc.h adds an HTTP client): start it on port 0 and read the address
 * it prints, talk to it with plain blocking sockets (with receive and send
 * timeouts, so a server that stops answering fails the test instead of
 * hanging it), and stop it with SIGTERM, expecting exit status 0.
 *
 * Every function asserts (Criterion) on failure, except where it says it
 * returns a result.
 */
#ifndef CORO_TEST_SERVER_PROC_H
#define CORO_TEST_SERVER_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A running server. */
struct server {
    pid_t pid;     /* the child, 0 once reaped */
    char addr[64]; /* "127.0.0.1:PORT", as the server printed it */
    char host[48]; /* the host part of addr */
    int port;      /* the port part of addr */
};

/* Start bin with args (NULL-terminated, may be NULL) and "--listen
 * 127.0.0.1:0" appended; wait up to 10 s for its first line on stdout and
 * take the address from its last word.  The child is killed if the test
 * process dies first. */
void server_start(struct server *s, const char *bin, const char *const *args);

/* Send signo and wait up to 20 s for the exit; returns the wait(2)
 * status (killing the child with SIGKILL first if it did not exit). */
int server_stop(struct server *s, int signo);

/* Wait up to 20 s for the server to exit by itself; the wait(2) status
 * (failing the test if it does not exit). */
int server_wait(struct server *s);

/* server_stop() with SIGTERM and assert a clean exit with status 0. */
void server_stop_clean(struct server *s);

/* Run bin with args (NULL-terminated), its stdout and stderr into out
 * (size len, NUL-terminated); returns the wait(2) status. */
int run_capture(const char *bin, const char *const *args, char *out,
                size_t len);

/* A blocking TCP connection to the server, with 10 s timeouts. */
int server_dial(const struct server *s);

/* Send all n bytes (a peer that vanished fails the test). */
void send_bytes(int fd, const void *buf, size_t n);
void send_str(int fd, const char *s);

/* Read until n bytes, EOF, an error or the timeout; returns the count. */
size_t recv_upto(int fd, void *buf, size_t n);

/* Read exactly strlen(want) bytes and compare them with want. */
void expect_str(int fd, const char *want);

/* Read exactly n bytes and compare them with want. */
void expect_bytes(int fd, const void *want, size_t n);

/* The server closes the connection next: read returns 0 (or ECONNRESET)
 * before the timeout, with no byte before it. */
void expect_eof(int fd);

/* Close with an RST instead of a FIN (SO_LINGER 0): a client that
 * vanishes. */
void close_abruptly(int fd);

#endif
