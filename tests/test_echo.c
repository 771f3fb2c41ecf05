/*
 * examples/echo as a separate process over real sockets: a round trip, a
 * few MiB each way with partial reads, many clients at once, clients that
 * vanish, and a clean exit (status 0) on SIGTERM and SIGINT.
 */
#include "server_proc.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static struct server srv;

static void start(void)
{
    server_start(&srv, ECHO_BIN, NULL);
}

static void stop(void)
{
    server_stop_clean(&srv);
}

TestSuite(echo, .init = start, .fini = stop, .timeout = 120);
TestSuite(echo_process, .timeout = 60);

/* The byte at offset i of a test stream. */
static unsigned char pat(size_t i)
{
    return (unsigned char)(i * 7 + (i >> 11));
}

Test(echo, a_line_comes_back)
{
    int fd = server_dial(&srv);
    send_str(fd, "hello, echo\n");
    expect_str(fd, "hello, echo\n");
    close(fd);
}

struct writer {
    int fd;
    size_t total;
};

/* Sends the stream in odd-sized pieces while the test reads the echo:
 * with one thread, both socket buffers would fill and nobody would read. */
static void *write_stream(void *arg)
{
    struct writer *w = arg;
    unsigned char buf[70001];
    size_t pos = 0, piece = 1;
    while (pos < w->total) {
        size_t n = piece < w->total - pos ? piece : w->total - pos;
        for (size_t i = 0; i < n; i++)
            buf[i] = pat(pos + i);
        send_bytes(w->fd, buf, n);
        pos += n;
        piece = piece * 3 % sizeof buf + 1; /* 1, 4, 13, ... */
    }
    shutdown(w->fd, SHUT_WR);
    return NULL;
}

Test(echo, megabytes_come_back_intact_through_partial_reads)
{
    int fd = server_dial(&srv);
    struct writer w = {fd, 6u << 20};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, write_stream, &w), 0);
    static unsigned char buf[1 << 16];
    size_t got = 0, reads = 0;
    for (;;) {
        /* Small, varying reads: the echo arrives in pieces of any size. */
        size_t want = 1 + (reads * 7919) % sizeof buf;
        ssize_t n = recv(fd, buf, want, 0);
        cr_assert_geq(n, 0, "recv: %s", strerror(errno));
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            cr_assert_eq(buf[i], pat(got + (size_t)i), "byte %zu differs",
                         got + (size_t)i);
        got += (size_t)n;
        reads++;
    }
    pthread_join(th, NULL);
    cr_assert_eq(got, w.total);
    close(fd);
}

Test(echo, many_clients_at_once_each_get_their_own_bytes)
{
    enum { CLIENTS = 300 };
    static int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        fds[i] = server_dial(&srv);
    for (int round = 0; round < 3; round++) {
        char msg[64];
        for (int i = 0; i < CLIENTS; i++) {
            snprintf(msg, sizeof msg, "client %d round %d\n", i, round);
            send_str(fds[i], msg);
        }
        for (int i = 0; i < CLIENTS; i++) {
            snprintf(msg, sizeof msg, "client %d round %d\n", i, round);
            expect_str(fds[i], msg);
        }
    }
    for (int i = 0; i < CLIENTS; i++)
        close(fds[i]);
}

Test(echo, clients_that_vanish_leave_the_others_served)
{
    int keep = server_dial(&srv);
    static char big[1 << 20];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 10; i++) {
        int fd = server_dial(&srv);
        /* It sends more than the socket buffers hold and reads nothing,
         * so the server is stuck writing to it when it goes. */
        struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        for (int j = 0; j < 8; j++)
            if (send(fd, big, sizeof big, MSG_NOSIGNAL) < 0)
                break;
        close_abruptly(fd);
        send_str(keep, "still here\n");
        expect_str(keep, "still here\n");
    }
    close(keep);
}

Test(echo_process, sigterm_with_clients_connected_exits_0)
{
    struct server s;
    server_start(&s, ECHO_BIN, NULL);
    int a = server_dial(&s), b = server_dial(&s);
    send_str(a, "x");
    expect_str(a, "x");
    server_stop_clean(&s);
    expect_eof(a);
    expect_eof(b);
    close(a);
    close(b);
}

Test(echo_process, sigint_exits_0)
{
    struct server s;
    server_start(&s, ECHO_BIN, NULL);
    int a = server_dial(&s);
    send_str(a, "y");
    expect_str(a, "y");
    cr_assert_eq(kill(s.pid, SIGINT), 0);
    expect_eof(a);
    close(a);
    int st = server_wait(&s);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}

Test(echo_process, help_prints_usage_and_exits_0)
{
    char out[1024];
    const char *args[] = {"--help", NULL};
    int st = run_capture(ECHO_BIN, args, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_not_null(strstr(out, "usage:"), "%s", out);
    const char *bad[] = {"--nope", NULL};
    st = run_capture(ECHO_BIN, bad, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}
