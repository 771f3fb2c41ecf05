/*
 * An echo server: one coroutine accepts connections and spawns one
 * coroutine per connection, which echoes what it reads until the client
 * leaves.  Plain sequential code; the event loop serves every connection
 * at once.  docs/guide.md walks through it.
 *
 * Run: build/examples/echo_server [ADDR]   (default "127.0.0.1:7000")
 * Try: nc 127.0.0.1 7000
 */
#include <coro/coro.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* One connection: echo until EOF, an error, or 60 s of silence. */
static int serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    coro_fd_set_timeout(fd, 60, 10); /* a silent client is dropped */
    for (;;) {
        ssize_t n = coro_read(fd, buf, sizeof buf);
        if (n <= 0) /* 0: the client closed; -1: reset, timeout... */
            break;
        if (coro_send_all(fd, buf, (size_t)n) < 0)
            break; /* the client left mid-write: EPIPE, ECONNRESET */
    }
    coro_close(fd);
    return 0;
}

/* The accept loop: a coroutine per connection. */
static int acceptor(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = coro_accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                coro_sleep(0.1); /* out of fds: the client stays queued */
                continue;
            }
            coro_print_stderr("accept: %s", strerror(errno));
            return -1;
        }
        if (coro_spawn(serve, (void *)(intptr_t)fd, "client") == NULL)
            coro_close(fd); /* no memory: drop this one, keep serving */
    }
}

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:7000";
    int lfd = coro_listen(addr, 128);
    if (lfd < 0) {
        fprintf(stderr, "listen %s: %s\n", addr, strerror(errno));
        return 1;
    }
    printf("echoing on %s\n", addr);
    fflush(stdout);
    coro_spawn(acceptor, (void *)(intptr_t)lfd, "acceptor");
    return coro_event_loop() < 0 ? 1 : 0;
}
