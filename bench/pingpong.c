/*
 * pingpong: one 64-byte message back and forth over a unix socketpair
 * between two coroutines, through coro_read() and coro_write(), as a
 * keep-alive connection's request and response: each side reads into a
 * 4 KiB buffer, so each read is short and the next one waits for the
 * poller's edge instead of trying a read that would fail with EAGAIN.
 *
 *   coro   the two coroutines on one thread's event loop
 *   raw    the same system calls by hand: one thread, non-blocking fds,
 *          an edge-triggered epoll, write / epoll_wait / read per message
 *          (the floor the runtime's overhead is measured against)
 *
 * Both are interleaved BENCH_RUNS times and the median is shown.  Where
 * the linker can wrap symbols (GNU ld, Linux), the program also counts
 * the system calls the coro runs make per message: read(2) calls and how
 * many of them failed with EAGAIN, sends, epoll_ctl and epoll waits.  The
 * steady state should be 1 read, 1 write, 1 wait and no EAGAIN or
 * epoll_ctl per message.
 *
 * Run: build/bench/pingpong [ROUNDS]    (default 200,000 round trips)
 */
#include "bench.h"

#include <coro/coro.h>
#include <sys/socket.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/epoll.h>
#endif

#define DEFAULT_ROUNDS 200000L
#define MSG 64     /* bytes per message */
#define BUF 4096   /* bytes each read asks for */

static const char usage[] =
    "usage: pingpong [ROUNDS]\n"
    "Send a 64-byte message back and forth ROUNDS times (default 200000,\n"
    "at least 100) over a socketpair between two coroutines, and the same\n"
    "with plain epoll; print the median messages per second of 5 runs and\n"
    "the system calls per message of the coroutine version.\n";

/* ------------------------------------------------------------------ */
/* System call counters (linked with -Wl,--wrap=..., see CMakeLists)   */

#if defined(BENCH_SYSCOUNT)
#include <stdarg.h>
#include <sys/syscall.h>

static struct {
    long reads, read_eagain, sends, send_eagain, ctls, waits;
} calls;

ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __wrap_read(int fd, void *buf, size_t n)
{
    ssize_t r = __real_read(fd, buf, n);
    calls.reads++;
    if (r < 0 && errno == EAGAIN)
        calls.read_eagain++;
    return r;
}

ssize_t __real_send(int fd, const void *buf, size_t n, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t n, int flags)
{
    ssize_t r = __real_send(fd, buf, n, flags);
    calls.sends++;
    if (r < 0 && errno == EAGAIN)
        calls.send_eagain++;
    return r;
}

int __real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *e);
int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *e)
{
    calls.ctls++;
    return __real_epoll_ctl(epfd, op, fd, e);
}

int __real_epoll_wait(int epfd, struct epoll_event *ev, int max, int ms);
int __wrap_epoll_wait(int epfd, struct epoll_event *ev, int max, int ms)
{
    calls.waits++;
    return __real_epoll_wait(epfd, ev, max, ms);
}

/* The poller reaches epoll_pwait2 through syscall(2).  Every caller in
 * the library passes at most six integer or pointer arguments. */
long __real_syscall(long n, ...);
long __wrap_syscall(long n, ...)
{
    va_list ap;
    va_start(ap, n);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
#if defined(SYS_epoll_pwait2)
    if (n == SYS_epoll_pwait2)
        calls.waits++;
#endif
    return __real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
#endif

/* ------------------------------------------------------------------ */
/* The coroutine version                                               */

struct side {
    int fd;
    long rounds;
    bool starts; /* the pinger writes first */
};

static int player(void *arg)
{
    struct side *s = arg;
    char msg[MSG], buf[BUF];
    memset(msg, 'p', sizeof msg);
    for (long i = 0; i < s->rounds; i++) {
        if (s->starts && coro_write(s->fd, msg, MSG) != MSG)
            bench_die("coro_write");
        if (coro_read(s->fd, buf, sizeof buf) != MSG)
            bench_die("coro_read");
        if (!s->starts && coro_write(s->fd, buf, MSG) != MSG)
            bench_die("coro_write");
    }
    return 0;
}

/* Messages per second through two coroutines. */
static double run_coro(long rounds)
{
    int sv[2];
    if (coro_socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        bench_die("coro_socketpair");
    struct side a = {sv[0], rounds, true}, b = {sv[1], rounds, false};
    if (coro_spawn(player, &a, "ping") == NULL ||
        coro_spawn(player, &b, "pong") == NULL)
        bench_die("coro_spawn");
    int64_t t0 = bench_now_nsec();
    if (coro_event_loop() != 0)
        bench_die("coro_event_loop");
    int64_t dt = bench_now_nsec() - t0;
    coro_close(sv[0]);
    coro_close(sv[1]);
    return 2.0 * (double)rounds * 1e9 / (double)dt;
}

/* ------------------------------------------------------------------ */
/* The same by hand                                                    */

#if defined(__linux__)
static void raw_wait(int ep)
{
    struct epoll_event ev[4];
    if (epoll_wait(ep, ev, 4, -1) < 1)
        bench_die("epoll_wait");
}

static double run_raw(long rounds)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        bench_die("socketpair");
    int ep = epoll_create1(0);
    for (int i = 0; i < 2; i++) {
        struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                                .data.fd = sv[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, sv[i], &e) != 0)
            bench_die("epoll_ctl");
    }
    raw_wait(ep); /* the edges of the registration */
    char msg[MSG], buf[BUF];
    memset(msg, 'p', sizeof msg);
    int64_t t0 = bench_now_nsec();
    for (long i = 0; i < rounds; i++) {
        if (send(sv[0], msg, MSG, MSG_NOSIGNAL) != MSG)
            bench_die("send");
        raw_wait(ep);
        if (read(sv[1], buf, sizeof buf) != MSG)
            bench_die("read");
        if (send(sv[1], buf, MSG, MSG_NOSIGNAL) != MSG)
            bench_die("send");
        raw_wait(ep);
        if (read(sv[0], buf, sizeof buf) != MSG)
            bench_die("read");
    }
    int64_t dt = bench_now_nsec() - t0;
    close(ep);
    close(sv[0]);
    close(sv[1]);
    return 2.0 * (double)rounds * 1e9 / (double)dt;
}
#endif

int main(int argc, char **argv)
{
    long rounds = bench_parse_count(argc, argv, DEFAULT_ROUNDS, 100, usage);
    double coro_v[BENCH_RUNS], raw_v[BENCH_RUNS];
    run_coro(rounds / 10); /* warm up: stacks, records, the poller */
    for (int r = 0; r < BENCH_RUNS; r++) {
        coro_v[r] = run_coro(rounds);
#if defined(__linux__)
        raw_v[r] = run_raw(rounds);
#else
        raw_v[r] = 0;
#endif
    }
    struct bench_summary c = bench_summarize(coro_v);
    struct bench_summary w = bench_summarize(raw_v);
    printf("pingpong: %ld round trips of %d bytes over a unix socketpair,"
           " median of %d runs\n", rounds, MSG, BENCH_RUNS);
    printf("  coro_read/coro_write, 2 coroutines  %10.0f msg/s  (%.0f..%.0f)"
           "  %.2f us/msg\n", c.median, c.min, c.max, 1e6 / c.median);
#if defined(__linux__)
    printf("  raw epoll loop, same system calls   %10.0f msg/s  (%.0f..%.0f)"
           "  %.2f us/msg\n", w.median, w.min, w.max, 1e6 / w.median);
    printf("  coro / raw                          %10.2f\n",
           c.median / w.median);
#endif
#if defined(BENCH_SYSCOUNT)
    /* One more coro run, counted alone. */
    memset(&calls, 0, sizeof calls);
    run_coro(rounds);
    double msgs = 2.0 * (double)rounds;
    printf("  system calls per message (coro): read %.3f (EAGAIN %.3f),"
           " send %.3f (EAGAIN %.3f), epoll_ctl %.4f, epoll wait %.3f\n",
           calls.reads / msgs, calls.read_eagain / msgs, calls.sends / msgs,
           calls.send_eagain / msgs, calls.ctls / msgs, calls.waits / msgs);
#endif
    if (coro_fini() != 0)
        bench_die("coro_fini");
    return 0;
}
