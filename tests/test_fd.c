/*
 * fd waits and the poller: readiness over real socketpairs and pipes,
 * several waiters on one fd, deadlines, per-fd timeouts, interrupts,
 * coro_close() waking waiters, handlers, a loop kept alive by a waiter
 * (not EDEADLK), bad input, and a fork() after which both processes serve.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(fd_wait, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);
TestSuite(fd_close, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);
TestSuite(handler, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);
TestSuite(poller, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);

/* A non-blocking socketpair. */
static void pair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

static void close_pair(int sv[2])
{
    cr_assert_eq(coro_close(sv[0]), 0);
    cr_assert_eq(coro_close(sv[1]), 0);
}

/* A reader: waits for fd, then reads what is there. */
struct reader {
    int fd;
    int rc, err;    /* the wait's result */
    char buf[64];
    size_t max;     /* bytes to read at most (0: sizeof buf) */
    ssize_t got;    /* bytes read after the wait */
    bool waiting;   /* set just before it waits */
    bool done;
};

static int reader(void *arg)
{
    struct reader *r = arg;
    r->waiting = true;
    r->rc = coro_wait_readable(r->fd);
    r->err = errno;
    r->waiting = false;
    if (r->rc == 0)
        r->got = read(r->fd, r->buf, r->max ? r->max : sizeof r->buf);
    r->done = true;
    return 0;
}

/* Writes a message on an fd once it is scheduled. */
struct writer {
    int fd;
    const char *msg;
};

static int writer(void *arg)
{
    struct writer *w = arg;
    ssize_t n = write(w->fd, w->msg, strlen(w->msg));
    return n == (ssize_t)strlen(w->msg) ? 0 : -1;
}

Test(fd_wait, a_reader_parks_until_the_peer_writes)
{
    int sv[2];
    pair(sv);
    struct reader r = {.fd = sv[0]};
    struct writer w = {.fd = sv[1], .msg = "hello"};
    cr_assert_not_null(coro_spawn(reader, &r, "reader"));
    /* The writer runs after the reader has parked. */
    cr_assert_not_null(coro_spawn(writer, &w, "writer"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.got, 5);
    cr_assert_eq(memcmp(r.buf, "hello", 5), 0);
    close_pair(sv);
}

static int wait_ready_twice(void *arg)
{
    int *sv = arg;
    if (write(sv[1], "x", 1) != 1)
        return -1;
    /* Data is there: the wait returns at once, and again while it stays
     * unread (level behaviour), with the readable bit. */
    int a = coro_wait_fd(sv[0], CORO_READABLE);
    int b = coro_wait_fd(sv[0], CORO_READABLE);
    int c = coro_wait_fd(sv[0], CORO_READABLE | CORO_WRITABLE);
    return a == CORO_READABLE && b == CORO_READABLE && c > 0 ? 0 : -1;
}

Test(fd_wait, data_left_unread_is_reported_again)
{
    int sv[2];
    pair(sv);
    cr_assert_eq(run_in_coro(wait_ready_twice, sv), 0);
    close_pair(sv);
}

/* A wait for readable, then coro's own read: the wait must not use up
 * what the read needs to know.  Then the same through a second wait that
 * answers from a level check. */
static int wait_then_coro_read(void *arg)
{
    int *p = arg;
    cr_assert_eq(coro_fd_set_timeout(p[0], 5, 0), 0); /* fail, not hang */
    char buf[16];
    struct writer w = {.fd = p[1], .msg = "hello"}; /* outlives the writer */
    for (int round = 0; round < 2; round++) {
        cr_assert_not_null(coro_spawn(writer, &w, "writer"));
        /* Parks until the writer has run: the edge answers it. */
        cr_assert_eq(coro_wait_fd(p[0], CORO_READABLE), CORO_READABLE);
        if (round == 1) /* the edge is used up: this one looks */
            cr_assert_eq(coro_wait_fd(p[0], CORO_READABLE), CORO_READABLE);
        ssize_t n = coro_read(p[0], buf, sizeof buf);
        cr_assert_eq(n, 5, "round %d: read %zd (%s)", round, n,
                     n < 0 ? strerror(errno) : "short");
        cr_assert_eq(memcmp(buf, "hello", 5), 0);
    }
    return 0;
}

Test(fd_wait, a_wait_for_readable_leaves_the_data_to_coro_read)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    cr_assert_eq(run_in_coro(wait_then_coro_read, p), 0);
    close_pair(p);
}

Test(fd_wait, two_readers_of_one_fd_are_both_served)
{
    int sv[2];
    pair(sv);
    struct reader r1 = {.fd = sv[0], .max = 1}, r2 = {.fd = sv[0], .max = 1};
    struct writer w = {.fd = sv[1], .msg = "ab"};
    cr_assert_not_null(coro_spawn(reader, &r1, "r1"));
    cr_assert_not_null(coro_spawn(reader, &r2, "r2"));
    cr_assert_not_null(coro_spawn(writer, &w, "writer"));
    cr_assert_eq(coro_event_loop(), 0);
    /* One edge, two waiters: each got its byte, in arrival order. */
    cr_assert_eq(r1.rc, 0);
    cr_assert_eq(r2.rc, 0);
    cr_assert_eq(r1.got, 1);
    cr_assert_eq(r2.got, 1);
    cr_assert_eq(r1.buf[0], 'a');
    cr_assert_eq(r2.buf[0], 'b');
    close_pair(sv);
}

static int wait_with_timeout(void *arg)
{
    return coro_wait_readable(*(int *)arg);
}

static int timed_wait(void *arg)
{
    double t0 = mono_sec();
    int rc = coro_with_timeout(0.05, wait_with_timeout, arg);
    int err = errno;
    double dt = mono_sec() - t0;
    cr_expect_geq(dt, 0.045, "woke after %f s", dt);
    errno = err;
    return rc;
}

Test(fd_wait, a_deadline_ends_the_wait_with_etimedout)
{
    int sv[2];
    pair(sv);
    cr_assert_eq(run_in_coro(timed_wait, &sv[0]), -1);
    cr_assert_eq(test_errno, ETIMEDOUT);
    close_pair(sv);
}

static int per_fd_timeout(void *arg)
{
    int fd = *(int *)arg;
    if (coro_fd_set_timeout(fd, 0.03, 0) != 0)
        return -2;
    double t0 = mono_sec();
    int rc = coro_wait_readable(fd);
    int err = errno;
    cr_expect_geq(mono_sec() - t0, 0.025);
    errno = err;
    return rc;
}

Test(fd_wait, the_fds_read_timeout_applies_to_a_wait)
{
    int sv[2];
    pair(sv);
    cr_assert_eq(run_in_coro(per_fd_timeout, &sv[0]), -1);
    cr_assert_eq(test_errno, ETIMEDOUT);
    close_pair(sv);
}

static int interrupter(void *arg)
{
    struct reader *r = arg;
    coro_t *victim = coro_by_id(1);
    cr_assert(r->waiting);
    return coro_interrupt(victim, ECANCELED);
}

Test(fd_wait, an_interrupt_ends_the_wait_with_its_errno)
{
    int sv[2];
    pair(sv);
    struct reader r = {.fd = sv[0]};
    cr_assert_not_null(coro_spawn(reader, &r, "reader"));
    cr_assert_not_null(coro_spawn(interrupter, &r, "interrupter"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(r.rc, -1);
    cr_assert_eq(r.err, ECANCELED);
    coro_stats_t st;
    coro_stats(&st);
    cr_assert_eq(st.fd_waiters, 0);
    close_pair(sv);
}

static int writable_at_once(void *arg)
{
    int fd = *(int *)arg;
    return coro_wait_writable(fd);
}

Test(fd_wait, a_fresh_socket_is_writable_at_once)
{
    int sv[2];
    pair(sv);
    cr_assert_eq(run_in_coro(writable_at_once, &sv[0]), 0);
    close_pair(sv);
}

static int fill_then_wait_writable(void *arg)
{
    int *sv = arg;
    char buf[4096] = {0};
    while (write(sv[0], buf, sizeof buf) > 0)
        ;
    if (errno != EAGAIN)
        return -2;
    /* Full: the wait parks until the drainer makes room. */
    return coro_wait_writable(sv[0]);
}

static int drainer(void *arg)
{
    int *sv = arg;
    char buf[8192];
    while (read(sv[1], buf, sizeof buf) > 0)
        ;
    return 0;
}

Test(fd_wait, a_full_socket_waits_until_the_peer_reads)
{
    int sv[2];
    pair(sv);
    cr_assert_not_null(coro_spawn(fill_then_wait_writable, sv, "filler"));
    cr_assert_not_null(coro_spawn(drainer, sv, "drainer"));
    cr_assert_eq(coro_event_loop(), 0);
    close_pair(sv);
}

static int eof_wakes(void *arg)
{
    int *sv = arg;
    int bits = coro_wait_fd(sv[0], CORO_READABLE);
    char c;
    return bits > 0 && read(sv[0], &c, 1) == 0 ? 0 : -1;
}

static int hang_up(void *arg)
{
    int *sv = arg;
    return shutdown(sv[1], SHUT_WR);
}

Test(fd_wait, a_peer_hanging_up_wakes_the_reader_to_see_eof)
{
    int sv[2];
    pair(sv);
    coro_t *a = coro_spawn_opts(eof_wakes, sv, &(coro_opts_t){.joinable = 1});
    cr_assert_not_null(coro_spawn(hang_up, sv, "hang_up"));
    cr_assert_eq(coro_event_loop(), 0);
    int st;
    cr_assert_eq(coro_join(a, &st, NULL), 0);
    cr_assert_eq(st, 0);
    close_pair(sv);
}

static int bad_calls(void *arg)
{
    (void)arg;
    int sv[2];
    pair(sv);
    cr_expect_eq(coro_wait_fd(-1, CORO_READABLE), -1);
    cr_expect_eq(errno, EBADF);
    cr_expect_eq(coro_wait_fd(1 << 30, CORO_READABLE), -1);
    cr_expect_eq(errno, EBADF);
    cr_expect_eq(coro_wait_fd(999999, CORO_READABLE), -1);
    cr_expect_eq(errno, EBADF);
    cr_expect_eq(coro_wait_fd(sv[0], 0), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(coro_wait_fd(sv[0], CORO_HANGUP), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(coro_fd_set_timeout(sv[0], -1, 0), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(coro_fd_set_timeout(-3, 1, 1), -1);
    cr_expect_eq(errno, EBADF);
    close_pair(sv);
    /* A number no longer open. */
    cr_expect_eq(coro_wait_fd(sv[0], CORO_READABLE), -1);
    cr_expect_eq(errno, EBADF);
    cr_expect_eq(coro_close(sv[0]), -1);
    cr_expect_eq(errno, EBADF);
    cr_expect_eq(coro_close(-1), -1);
    cr_expect_eq(errno, EBADF);
    return 0;
}

Test(fd_wait, bad_fds_and_events_fail_cleanly)
{
    cr_assert_eq(run_in_coro(bad_calls, NULL), 0);
}

Test(fd_wait, outside_a_coroutine_fails_with_eperm)
{
    int sv[2];
    pair(sv);
    cr_assert_eq(coro_wait_readable(sv[0]), -1);
    cr_assert_eq(errno, EPERM);
    close_pair(sv);
}

static int regular_file(void *arg)
{
    (void)arg;
    char path[] = "/tmp/coro-fd-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -2;
    unlink(path);
    int a = coro_wait_fd(fd, CORO_READABLE | CORO_WRITABLE);
    int b = coro_wait_readable(fd);
    coro_close(fd);
    return a == (CORO_READABLE | CORO_WRITABLE) && b == 0 ? 0 : -1;
}

Test(fd_wait, a_regular_file_is_always_ready)
{
    cr_assert_eq(run_in_coro(regular_file, NULL), 0);
}

/* ---- coro_close ---------------------------------------------------- */

static int closer(void *arg)
{
    struct reader *r = arg;
    cr_assert(r->waiting);
    return coro_close(r->fd);
}

Test(fd_close, closing_an_fd_wakes_its_waiters_with_ebadf)
{
    int sv[2];
    pair(sv);
    struct reader r1 = {.fd = sv[0]}, r2 = {.fd = sv[0]};
    cr_assert_not_null(coro_spawn(reader, &r1, "r1"));
    cr_assert_not_null(coro_spawn(reader, &r2, "r2"));
    cr_assert_not_null(coro_spawn(closer, &r1, "closer"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(r1.rc, -1);
    cr_assert_eq(r1.err, EBADF);
    cr_assert_eq(r2.rc, -1);
    cr_assert_eq(r2.err, EBADF);
    cr_assert_eq(coro_close(sv[1]), 0);
}

/* ------------------------------------------------------------------ */
/* The runtime's own fds: its poller, wake-up fd and signal fd.  The
 * application can see their numbers but may neither close them (the loop
 * would fail), wait on them (their events go to the runtime, so the wait
 * would never end) nor read them (it would steal the runtime's wake-ups
 * and signals). */

#define FDS_SEEN 1024

static void open_fds(bool open[FDS_SEEN])
{
    for (int fd = 0; fd < FDS_SEEN; fd++)
        open[fd] = fcntl(fd, F_GETFD) != -1;
}

static intptr_t nothing(void *arg)
{
    (void)arg;
    return 0;
}

/* Make the runtime open its fds: the poller (a wait), the wake-up fd (an
 * offload), the signal fd (a watch). */
static int open_runtime_fds(void *arg)
{
    (void)arg;
    int sv[2];
    pair(sv);
    struct writer w = {.fd = sv[1], .msg = "x"};
    cr_assert_not_null(coro_spawn(writer, &w, "writer"));
    cr_assert_eq(coro_wait_readable(sv[0]), 0);
    close_pair(sv);
    intptr_t res;
    cr_assert_eq(coro_offload(nothing, NULL, &res), 0);
    cr_assert_eq(coro_signal_watch(SIGUSR1), 0);
    return 0;
}

struct runtime_fds {
    bool is[FDS_SEEN];
    int rc[FDS_SEEN], err[FDS_SEEN];            /* waits */
    ssize_t read_rc[FDS_SEEN]; int read_err[FDS_SEEN]; /* reads */
};

static int wait_one(void *arg)
{
    return coro_wait_readable((int)(intptr_t)arg);
}

/* Wait on each runtime fd, each under a 10 s deadline that must not be
 * what ends the wait. */
static int wait_on_runtime_fds(void *arg)
{
    struct runtime_fds *r = arg;
    for (int fd = 0; fd < FDS_SEEN; fd++) {
        if (!r->is[fd])
            continue;
        r->rc[fd] = coro_with_timeout(10, wait_one, (void *)(intptr_t)fd);
        r->err[fd] = errno;
        char c;
        r->read_rc[fd] = coro_read(fd, &c, 1);
        r->read_err[fd] = errno;
    }
    return 0;
}

Test(fd_close, the_runtimes_own_fds_can_be_neither_closed_nor_waited_on)
{
    static bool before[FDS_SEEN], after[FDS_SEEN];
    static struct runtime_fds r;
    open_fds(before);
    cr_assert_eq(run_in_coro(open_runtime_fds, NULL), 0);
    open_fds(after);
    int n = 0;
    for (int fd = 0; fd < FDS_SEEN; fd++) {
        r.is[fd] = after[fd] && !before[fd];
        if (!r.is[fd])
            continue;
        n++;
        cr_expect_eq(coro_close(fd), -1, "fd %d closed", fd);
        cr_expect_eq(errno, EBADF, "fd %d: %s", fd, strerror(errno));
    }
    cr_assert_geq(n, 3, "poller, wake-up fd, signal fd: %d fds", n);
    cr_assert_eq(run_in_coro(wait_on_runtime_fds, &r), 0);
    for (int fd = 0; fd < FDS_SEEN; fd++) {
        if (!r.is[fd])
            continue;
        cr_expect_eq(r.rc[fd], -1, "fd %d waited on", fd);
        cr_expect_eq(r.err[fd], EBADF, "fd %d: %s", fd, strerror(r.err[fd]));
        cr_expect_eq(r.read_rc[fd], -1, "fd %d read", fd);
        cr_expect_eq(r.read_err[fd], EBADF, "fd %d read: %s", fd,
                     strerror(r.read_err[fd]));
    }
    /* The loop still works. */
    int sv[2];
    pair(sv);
    struct reader rd = {.fd = sv[0]};
    struct writer w = {.fd = sv[1], .msg = "ok"};
    cr_assert_not_null(coro_spawn(reader, &rd, "reader"));
    cr_assert_not_null(coro_spawn(writer, &w, "writer"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(rd.rc, 0);
    cr_assert_eq(rd.got, 2);
    close_pair(sv);
    cr_assert_eq(coro_signal_unwatch(SIGUSR1), 0);
}

static int forgetter(void *arg)
{
    struct reader *r = arg;
    cr_assert(r->waiting);
    return coro_fd_forget(r->fd);
}

Test(fd_close, forgetting_an_fd_wakes_its_waiters_and_leaves_it_open)
{
    int sv[2];
    pair(sv);
    struct reader r = {.fd = sv[0]};
    cr_assert_not_null(coro_spawn(reader, &r, "reader"));
    cr_assert_not_null(coro_spawn(forgetter, &r, "forgetter"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(r.err, EBADF);
    cr_assert_neq(fcntl(sv[0], F_GETFD), -1); /* still open */
    close_pair(sv);
}

/* ---- handlers ------------------------------------------------------ */

struct hctx {
    int fd;
    int calls;
    int events;
    int in_coro; /* the handler ran in a coroutine */
};

static void on_readable(int fd, int events, void *arg)
{
    struct hctx *h = arg;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    h->calls++;
    h->events = events;
    h->in_coro += coro_current() != NULL;
    if (h->calls == 2)
        coro_clear_handler(fd);
}

static int feed_twice(void *arg)
{
    int *sv = arg;
    if (write(sv[1], "a", 1) != 1)
        return -1;
    coro_sleep(0.01); /* let the loop poll between the two writes */
    if (write(sv[1], "b", 1) != 1)
        return -1;
    return 0;
}

Test(handler, runs_in_a_new_coroutine_for_each_edge)
{
    int sv[2];
    pair(sv);
    struct hctx h = {.fd = sv[0]};
    cr_assert_eq(coro_set_handler(sv[0], CORO_READABLE, on_readable, &h, 0),
                 0);
    cr_assert_not_null(coro_spawn(feed_twice, sv, "feeder"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(h.calls, 2);
    cr_assert_eq(h.in_coro, 2);
    cr_assert(h.events & CORO_READABLE);
    cr_assert_eq(coro_clear_handler(sv[0]), -1);
    cr_assert_eq(errno, ENOENT);
    close_pair(sv);
}

Test(handler, a_oneshot_handler_fires_once_and_an_fd_ready_already_fires_now)
{
    int sv[2];
    pair(sv);
    struct hctx h = {.fd = sv[0]};
    cr_assert_eq(write(sv[1], "z", 1), 1);
    cr_assert_eq(coro_set_handler(sv[0], CORO_READABLE, on_readable, &h,
                                  CORO_HANDLER_ONESHOT),
                 0);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(h.calls, 1);
    cr_assert_eq(coro_clear_handler(sv[0]), -1); /* gone after firing */
    close_pair(sv);
}

Test(handler, bad_arguments_fail_with_einval_or_ebadf)
{
    int sv[2];
    pair(sv);
    struct hctx h = {0};
    cr_assert_eq(coro_set_handler(sv[0], 0, on_readable, &h, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_set_handler(sv[0], CORO_READABLE, NULL, &h, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_set_handler(sv[0], CORO_READABLE, on_readable, &h, 8),
                 -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_set_handler(-1, CORO_READABLE, on_readable, &h, 0), -1);
    cr_assert_eq(errno, EBADF);
    close_pair(sv);
}

/* ---- the loop and the poller -------------------------------------- */

Test(poller, is_named)
{
    const char *n = coro_poller_name();
    cr_assert(strcmp(n, "epoll") == 0 || strcmp(n, "kqueue") == 0);
}

Test(poller, a_wait_for_another_process_keeps_the_loop_alive)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_NONBLOCK), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* The child writes once the parent has had ample time to park;
         * if it parked later, the wait simply returns at once. */
        usleep(100 * 1000);
        _exit(write(p[1], "k", 1) == 1 ? 0 : 1);
    }
    close(p[1]);
    struct reader r = {.fd = p[0]};
    cr_assert_not_null(coro_spawn(reader, &r, "reader"));
    cr_assert_eq(coro_event_loop(), 0, "loop failed: %s", strerror(errno));
    cr_assert_eq(r.got, 1);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert_eq(coro_close(p[0]), 0);
}

static int spinner(void *arg)
{
    struct reader *r = arg;
    while (!r->done)
        coro_yield();
    return 0;
}

Test(poller, a_coroutine_yielding_forever_does_not_starve_io)
{
    int sv[2];
    pair(sv);
    struct reader r = {.fd = sv[0]};
    cr_assert_not_null(coro_spawn(reader, &r, "reader"));
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        usleep(50 * 1000);
        _exit(write(sv[1], "y", 1) == 1 ? 0 : 1);
    }
    /* Yield (never block) until the reader has its data. */
    cr_assert_not_null(coro_spawn(spinner, &r, "spinner"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(r.got, 1);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    close_pair(sv);
}

/* ---- fork ---------------------------------------------------------- */

/* Echo one byte back on fd, n times. */
struct echo {
    int fd;
    int n;
};

static int echo_n(void *arg)
{
    struct echo *e = arg;
    for (int i = 0; i < e->n; i++) {
        char c;
        if (coro_wait_readable(e->fd) != 0 || read(e->fd, &c, 1) != 1)
            return -1;
        if (write(e->fd, &c, 1) != 1)
            return -1;
    }
    return 0;
}

/* Send n bytes on fd, reading each echo. */
static int ping_n(void *arg)
{
    struct echo *e = arg;
    for (int i = 0; i < e->n; i++) {
        char c = (char)('a' + i), back;
        if (write(e->fd, &c, 1) != 1)
            return -1;
        if (coro_wait_readable(e->fd) != 0 || read(e->fd, &back, 1) != 1 ||
            back != c)
            return -1;
    }
    return 0;
}

struct forker {
    int mine[2], theirs[2]; /* served by the parent / by the child */
    pid_t pid;
};

static int fork_and_serve(void *arg)
{
    struct forker *f = arg;
    /* Both pairs are registered before the fork. */
    struct echo warm = {f->mine[0], 1}, warm2 = {f->theirs[0], 1};
    struct echo wping = {f->mine[1], 1}, wping2 = {f->theirs[1], 1};
    coro_t *a = coro_spawn(echo_n, &warm, "warm");
    coro_t *b = coro_spawn(echo_n, &warm2, "warm2");
    if (!a || !b || ping_n(&wping) != 0 || ping_n(&wping2) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* The child serves its pair with its own poller. */
        close(f->mine[0]);
        close(f->mine[1]);
        struct echo e = {f->theirs[0], 20};
        _exit(echo_n(&e) == 0 ? 0 : 3);
    }
    f->pid = pid;
    /* The parent serves its own pair and drives the child's. */
    struct echo e = {f->mine[0], 20}, p = {f->mine[1], 20};
    struct echo c = {f->theirs[1], 20};
    coro_t *srv = coro_spawn_opts(echo_n, &e, &(coro_opts_t){.joinable = 1});
    if (srv == NULL || ping_n(&p) != 0 || ping_n(&c) != 0)
        return -1;
    int st;
    if (coro_join(srv, &st, NULL) != 0 || st != 0)
        return -1;
    return 0;
}

Test(poller, after_fork_parent_and_child_each_serve_with_their_own_poller)
{
    SKIP_UNDER_TSAN("coroutines serve in a forked child");
    struct forker f;
    pair(f.mine);
    pair(f.theirs);
    cr_assert_eq(run_in_coro(fork_and_serve, &f), 0);
    int st;
    cr_assert_eq(waitpid(f.pid, &st, 0), f.pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    close_pair(f.mine);
    close_pair(f.theirs);
}
