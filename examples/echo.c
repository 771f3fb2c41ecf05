/*
 * An echo server: one coroutine accepts connections and spawns one
 * coroutine per connection, which echoes what it reads until the client
 * leaves.  Plain sequential code; the event loop serves every connection
 * at once.  SIGINT or SIGTERM stops it cleanly.  docs/guide.md walks
 * through it.
 *
 * Run: build/examples/echo [--listen ADDR]   (default 127.0.0.1:7000)
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
        if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
            if (coro_sleep(0.1) == 0) /* out of fds: the client waits */
                continue;
        }
        if (fd < 0)
            break; /* ECANCELED: shutting down */
        if (coro_spawn(serve, (void *)(intptr_t)fd, "client") == NULL)
            coro_close(fd); /* no memory: drop this one, keep serving */
    }
    coro_close(lfd);
    return 0;
}

/* Wake a coroutine with ECANCELED: its blocking call fails, and it ends. */
static int cancel(coro_t *co, void *arg)
{
    (void)arg;
    coro_interrupt(co, ECANCELED);
    return 0;
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1:7000";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            addr = argv[++i];
        } else {
            FILE *f = strcmp(argv[i], "--help") == 0 ? stdout : stderr;
            fprintf(f,
                    "usage: %s [--listen ADDR]   (default %s)\n"
                    "Echoes what each client sends; port 0 picks a "
                    "free port.\n",
                    argv[0], addr);
            return f == stdout ? 0 : 2;
        }
    }
    int lfd = coro_listen(addr, 128);
    if (lfd < 0) {
        fprintf(stderr, "listen %s: %s\n", addr, strerror(errno));
        return 1;
    }
    struct sockaddr_storage ss; /* the real port, when addr asked for 0 */
    socklen_t len = sizeof ss;
    char name[128];
    getsockname(lfd, (struct sockaddr *)&ss, &len);
    coro_addr_format((struct sockaddr *)&ss, len, name, sizeof name);
    printf("echoing on %s\n", name);
    fflush(stdout);
    coro_spawn(acceptor, (void *)(intptr_t)lfd, "acceptor");

    int rc = coro_event_loop(); /* 130 or 143 after SIGINT or SIGTERM */
    coro_foreach(cancel, NULL); /* each coroutine closes its fd and ends */
    coro_event_loop();
    coro_fini();
    return rc > 128 ? 0 : 1;
}
