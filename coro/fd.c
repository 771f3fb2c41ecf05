/*
 * fd records, readiness tracking, fd waits, event handlers, cross-thread
 * wake-ups and the poller's life (creation, fork, teardown).
 *
 * Waiters of one fd share one FIFO queue whatever direction they want: an
 * edge wakes every waiter whose direction it concerns, in arrival order,
 * and each retries its operation.  So two coroutines reading the same fd
 * are both served (the one that finds nothing waits again) instead of the
 * second failing, and a hang-up or error wakes everybody.
 */
#include "io_internal.h"
#include "signal_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

/* Records per chunk: a chunk is allocated when an fd number in its range
 * is first used, and never moves, so waiters may point into it. */
#define CHUNK_SHIFT 8
#define CHUNK_SIZE (1u << CHUNK_SHIFT)

/* The I/O state of one scheduler. */
struct coro__io {
    struct coro__poller *poller; /* NULL until first needed */
    unsigned fork_gen;           /* coro__fork_gen when poller was made */
    struct coro__fd **chunks;    /* chunk pointers by fd >> CHUNK_SHIFT */
    size_t nchunks;              /* entries in chunks */
    size_t watched;              /* application fds registered */
    size_t waiting;              /* coroutines parked in coro__fd_wait() */
    size_t handlers;             /* public handlers installed */
    size_t internals;            /* internal handlers installed (wake-up
                                    fd, signalfd, pidfds): polled while
                                    coroutines run, like handlers */
    long holds;                  /* coro__io_hold() count */
    uint64_t events;             /* events reported by the poller */
    size_t fd_limit;             /* fds at or above cannot exist (the
                                    RLIMIT_NOFILE hard limit, re-read
                                    when exceeded) */
    int wake_rfd, wake_wfd;      /* remote wake-up fds, -1 if none */
    _Atomic(struct coro__remote *) remote; /* posted, newest first */
};

/* Bumped in a fork() child, so each scheduler notices its poller (shared
 * with the parent's until replaced) is not its own. */
static unsigned fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void after_fork_in_child(void)
{
    __atomic_add_fetch(&fork_gen, 1, __ATOMIC_RELAXED);
}

static void atfork_register(void)
{
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

static struct coro__io *io_get(struct sched *s)
{
    if (CORO__LIKELY(s->io != NULL))
        return s->io;
    struct coro__io *io = coro__sys_calloc(1, sizeof *io);
    if (io == NULL)
        return NULL;
    io->wake_rfd = io->wake_wfd = -1;
    pthread_once(&atfork_once, atfork_register);
    io->fork_gen = __atomic_load_n(&fork_gen, __ATOMIC_RELAXED);
    s->io = io;
    return io;
}

/* ------------------------------------------------------------------ */
/* Records                                                            */

struct coro__fd *coro__fd_find(struct sched *s, int fd)
{
    struct coro__io *io = s->io;
    if (io == NULL || fd < 0)
        return NULL;
    size_t c = (size_t)fd >> CHUNK_SHIFT;
    if (c >= io->nchunks || io->chunks[c] == NULL)
        return NULL;
    return &io->chunks[c][fd & (CHUNK_SIZE - 1)];
}

static void fd_init(struct coro__fd *f)
{
    memset(f, 0, sizeof *f);
    f->ready = CORO__EV_READ | CORO__EV_WRITE;
}

struct coro__fd *coro__fd_get(struct sched *s, int fd)
{
    if (fd < 0) {
        errno = EBADF;
        return NULL;
    }
    struct coro__fd *f = coro__fd_find(s, fd);
    if (CORO__LIKELY(f != NULL))
        return f;
    struct coro__io *io = io_get(s);
    if (io == NULL)
        return NULL;
    if ((size_t)fd >= io->fd_limit) {
        /* No table for numbers that cannot be open (a bad fd must not
         * make us allocate a huge table). */
        struct rlimit rl;
        size_t lim = (size_t)1 << 30;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
            rl.rlim_max != RLIM_INFINITY && rl.rlim_max < lim)
            lim = (size_t)rl.rlim_max;
        io->fd_limit = lim;
        if ((size_t)fd >= lim) {
            errno = EBADF;
            return NULL;
        }
    }
    size_t c = (size_t)fd >> CHUNK_SHIFT;
    if (c >= io->nchunks) {
        size_t n = io->nchunks ? io->nchunks : 4;
        while (n <= c)
            n *= 2;
        struct coro__fd **t =
            coro__sys_realloc(io->chunks, n * sizeof *t);
        if (t == NULL)
            return NULL;
        memset(t + io->nchunks, 0, (n - io->nchunks) * sizeof *t);
        io->chunks = t;
        io->nchunks = n;
    }
    if (io->chunks[c] == NULL) {
        struct coro__fd *chunk =
            coro__sys_malloc(CHUNK_SIZE * sizeof *chunk);
        if (chunk == NULL)
            return NULL;
        for (size_t i = 0; i < CHUNK_SIZE; i++)
            fd_init(&chunk[i]);
        io->chunks[c] = chunk;
    }
    return &io->chunks[c][fd & (CHUNK_SIZE - 1)];
}

/* ------------------------------------------------------------------ */
/* The poller                                                          */

static void io_after_fork(struct sched *s);
static void fire_handler(struct sched *s, int fd, struct coro__fd *f,
                         unsigned bits);

/* The poller of s, made on first use (and again in a fork child). */
static struct coro__poller *poller_get(struct sched *s)
{
    struct coro__io *io = io_get(s);
    if (io == NULL)
        return NULL;
    if (CORO__UNLIKELY(io->fork_gen !=
                       __atomic_load_n(&fork_gen, __ATOMIC_RELAXED)))
        io_after_fork(s);
    if (io->poller == NULL && coro__poller_open(&io->poller) != 0)
        return NULL;
    return io->poller;
}

/* Register f (fd) with the poller if it is not yet.  0 or -1 errno. */
static int fd_register(struct sched *s, int fd, struct coro__fd *f)
{
    if (f->state != CORO__FD_UNKNOWN)
        return 0;
    struct coro__poller *p = poller_get(s);
    if (p == NULL)
        return -1;
    if (coro__poller_add(p, fd) != 0) {
        if (errno != EPERM)
            return -1;
        f->state = CORO__FD_ALWAYS; /* a regular file or the like */
        return 0;
    }
    f->state = CORO__FD_POLLED;
    /* Nothing is known until the first event, which the kernel reports
     * for the state at registration. */
    f->ready = f->unseen = 0;
    if (!f->internal)
        s->io->watched++;
    return 0;
}

/* Forget f's registration and readiness (the fd is gone or new). */
static void fd_unregister(struct sched *s, struct coro__fd *f)
{
    if (f->state == CORO__FD_POLLED && !f->internal)
        s->io->watched--;
    f->state = CORO__FD_UNKNOWN;
    f->ready = CORO__EV_READ | CORO__EV_WRITE;
    f->unseen = 0;
}

/* The wait record of coro__fd_wait(). */
struct fd_wait {
    struct coro__wait w; /* first member */
    unsigned want;       /* CORO__EV_* bits that end the wait */
    int fd;              /* the fd, for cancel */
};

/* Wake every waiter of f with err (EBADF when the fd went away). */
static void wake_all_err(struct coro__fd *f, int err)
{
    struct coro__wait *w;
    while ((w = coro__waitq_pop(&f->waiters)) != NULL)
        coro__wake(w, err);
}

void coro__fd_ready(struct sched *s, int fd, unsigned bits)
{
    struct coro__fd *f = coro__fd_find(s, fd);
    s->io->events++;
    if (f == NULL || f->state != CORO__FD_POLLED)
        return; /* forgotten since: a late event for an old fd */
    f->ready |= (uint8_t)(bits & (CORO__EV_READ | CORO__EV_WRITE |
                                  CORO__EV_HUP | CORO__EV_PRI));
    f->unseen |= (uint8_t)(bits & (CORO__EV_READ | CORO__EV_WRITE));
    bits &= ~(unsigned)CORO__EV_PRI; /* the fd's own business */
    if (f->on_ready != NULL) {
        f->on_ready(s, fd, bits, f->handler_arg);
        return;
    }
    unsigned wake = bits;
    if (bits & (CORO__EV_HUP | CORO__EV_ERR))
        wake |= CORO__EV_READ | CORO__EV_WRITE;
    for (struct coro__wait *w = f->waiters.head, *next; w != NULL; w = next) {
        next = w->next;
        if (((struct fd_wait *)w)->want & wake) {
            coro__waitq_remove(&f->waiters, w);
            coro__wake(w, 0);
        }
    }
    if (f->handler != NULL && (f->handler_events & wake))
        fire_handler(s, fd, f, bits);
}

static void fd_wait_cancel(struct coro__wait *w)
{
    struct fd_wait *fw = (struct fd_wait *)w;
    struct coro__fd *f = coro__fd_find(coro__tls_sched, fw->fd);
    if (w->queued && f != NULL)
        coro__waitq_remove(&f->waiters, w);
}

/* The deadline of a wait on f for want, from its default timeouts. */
static int64_t fd_deadline(struct sched *s, const struct coro__fd *f,
                           unsigned want)
{
    int64_t t = 0;
    if ((want & CORO__EV_READ) && f->timeout_ticks[0] > 0)
        t = f->timeout_ticks[0];
    if ((want & CORO__EV_WRITE) && f->timeout_ticks[1] > 0 &&
        (t == 0 || f->timeout_ticks[1] < t))
        t = f->timeout_ticks[1];
    return t > 0 ? coro__now(s) + t : CORO__NEVER;
}

/* See io_internal.h. */
bool coro__fd_runtime(const struct sched *s, int fd, const struct coro__fd *f)
{
    if (f != NULL && f->internal)
        return true;
    const struct coro__io *io = s->io;
    return io != NULL && (fd == io->wake_wfd ||
                          (io->poller != NULL &&
                           fd == coro__poller_fd(io->poller)));
}

/* Park on f until an edge for want; 0 or -1 errno (after begin). */
static int fd_park(struct sched *s, int fd, struct coro__fd *f,
                   struct fd_wait *fw)
{
    if (fd_register(s, fd, f) != 0)
        return -1;
    if (f->state == CORO__FD_ALWAYS)
        return 0;
    fw->w.deadline = fd_deadline(s, f, fw->want);
    fw->w.deadline_err = ETIMEDOUT;
    fw->w.obj = f;
    fw->w.cancel = fd_wait_cancel;
    fw->fd = fd;
    coro__waitq_push(&f->waiters, &fw->w);
    s->io->waiting++;
    uint32_t gen = f->gen;
    int rc = coro__wait_park(&fw->w);
    s->io->waiting--;
    if (rc == 0 && (fw->w.value != 0 || f->gen != gen)) {
        /* Closed while we waited, or after an edge woke us but before we
         * ran: the number may name another file by now. */
        errno = fw->w.value != 0 ? (int)fw->w.value : EBADF;
        return -1;
    }
    return rc;
}

int coro__fd_wait(int fd, unsigned dir, const char *what, const void *addr)
{
    struct fd_wait fw;
    coro__wait_init(&fw.w, what, NULL, addr);
    fw.want = dir;
    if (coro__wait_begin(&fw.w) != 0)
        return -1;
    struct sched *s = coro__tls_sched;
    struct coro__fd *f = coro__fd_get(s, fd);
    if (f == NULL)
        return -1;
    if (coro__fd_runtime(s, fd, f)) {
        errno = EBADF;
        return -1;
    }
    coro__fd_empty(f, dir);
    return fd_park(s, fd, f, &fw);
}

void coro__fd_fresh(struct sched *s, int fd)
{
    struct coro__fd *f = coro__fd_find(s, fd);
    if (f == NULL || f->internal)
        return;
    wake_all_err(f, EBADF);
    if (f->handler != NULL) {
        f->handler = NULL;
        s->io->handlers--;
    }
    fd_unregister(s, f);
    f->timeout_ticks[0] = f->timeout_ticks[1] = 0;
    f->kind = CORO__FD_KIND_UNKNOWN;
    f->gen++;
}

int coro__fd_set_internal(struct sched *s, int fd, coro__fd_handler_fn fn,
                          void *ud)
{
    struct coro__fd *f = coro__fd_get(s, fd);
    if (f == NULL)
        return -1;
    f->internal = true;
    f->on_ready = fn;
    f->handler_arg = ud;
    if (fd_register(s, fd, f) != 0) {
        f->internal = false;
        f->on_ready = NULL;
        return -1;
    }
    s->io->internals++;
    return 0;
}

void coro__fd_drop_internal(struct sched *s, int fd)
{
    struct coro__fd *f = coro__fd_find(s, fd);
    if (f == NULL || !f->internal)
        return;
    s->io->internals--;
    if (f->state == CORO__FD_POLLED) {
        int saved = errno; /* the fd may have been dup'ed: stop events */
        coro__poller_del(s->io->poller, fd);
        errno = saved;
    }
    fd_unregister(s, f);
    f->internal = false;
    f->on_ready = NULL;
    f->handler_arg = NULL;
}

void coro__io_hold(struct sched *s, int delta)
{
    struct coro__io *io = io_get(s);
    if (io != NULL) /* NULL only if a hold was never taken: -1 impossible */
        io->holds += delta;
}

/* ------------------------------------------------------------------ */
/* Public fd waits                                                     */

/* Public event bits <-> internal ones: the same values. */
_Static_assert(CORO_READABLE == CORO__EV_READ &&
                   CORO_WRITABLE == CORO__EV_WRITE &&
                   CORO_HANGUP == CORO__EV_HUP &&
                   CORO_FDERROR == CORO__EV_ERR,
               "public and internal event bits differ");

/* Level check of fd for want, without blocking: the ready bits, or -1. */
static int poll_now(int fd, unsigned want)
{
    struct pollfd p = {.fd = fd, .events = 0};
    if (want & CORO__EV_READ)
        p.events |= POLLIN;
    if (want & CORO__EV_WRITE)
        p.events |= POLLOUT;
    int n;
    do
        n = poll(&p, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if (p.revents & POLLNVAL) {
        errno = EBADF;
        return -1;
    }
    int bits = 0;
    if (p.revents & POLLIN)
        bits |= CORO__EV_READ;
    if (p.revents & POLLOUT)
        bits |= CORO__EV_WRITE;
    if (p.revents & POLLHUP)
        bits |= CORO__EV_HUP | CORO__EV_READ;
    if (p.revents & POLLERR)
        bits |= CORO__EV_ERR;
    return bits;
}

int coro_wait_fd_at(int fd, int events, const coro_site_t *site)
{
    unsigned want = (unsigned)events & (CORO_READABLE | CORO_WRITABLE);
    if (want == 0 || want != (unsigned)events) {
        errno = EINVAL;
        return -1;
    }
    const char *what = want == CORO_READABLE   ? "readable"
                       : want == CORO_WRITABLE ? "writable"
                                               : "fd";
    const void *addr = __builtin_return_address(0);
    const int end = (int)want | CORO__EV_HUP | CORO__EV_ERR;
    for (;;) {
        struct fd_wait fw;
        coro__wait_init(&fw.w, what, site, addr);
        fw.want = want;
        if (coro__wait_begin(&fw.w) != 0)
            return -1;
        struct sched *s = coro__tls_sched;
        struct coro__fd *f = coro__fd_get(s, fd);
        if (f == NULL)
            return -1;
        if (coro__fd_runtime(s, fd, f)) {
            errno = EBADF;
            return -1;
        }
        /* An edge not reported yet answers without a system call.  It is
         * consumed: the caller may drain the fd without telling us, and
         * the next wait must then not answer from a stale bit.  The ready
         * bit stays, so that coro's own calls still try. */
        if (f->state == CORO__FD_POLLED && (f->unseen & want)) {
            int got = f->unseen & (int)want;
            f->unseen &= (uint8_t)~want;
            return got;
        }
        if (f->state == CORO__FD_ALWAYS)
            return (int)want;
        /* No edge known: look (level) before parking, so a caller that
         * left data unread is not parked forever. */
        int bits = poll_now(fd, want);
        if (bits < 0)
            return -1;
        if (bits & end) {
            if (fd_register(s, fd, f) != 0)
                return -1;
            /* Seen ready: coro's own calls try, the next wait looks. */
            f->ready |= (uint8_t)(bits & (CORO__EV_READ | CORO__EV_WRITE |
                                          CORO__EV_HUP));
            f->unseen &= (uint8_t)~want;
            return bits & end;
        }
        if (fd_park(s, fd, f, &fw) != 0)
            return -1;
        /* Woken by an edge: loop to read the bits it set. */
    }
}

int(coro_wait_fd)(int fd, int events)
{
    return coro_wait_fd_at(fd, events, NULL);
}

int coro_wait_readable_at(int fd, const coro_site_t *site)
{
    return coro_wait_fd_at(fd, CORO_READABLE, site) < 0 ? -1 : 0;
}

int(coro_wait_readable)(int fd)
{
    return coro_wait_fd_at(fd, CORO_READABLE, NULL) < 0 ? -1 : 0;
}

int coro_wait_writable_at(int fd, const coro_site_t *site)
{
    return coro_wait_fd_at(fd, CORO_WRITABLE, site) < 0 ? -1 : 0;
}

int(coro_wait_writable)(int fd)
{
    return coro_wait_fd_at(fd, CORO_WRITABLE, NULL) < 0 ? -1 : 0;
}

/* A default timeout in ticks: 0 (none) for 0, infinity and absurdly long
 * ones, at least one tick for any other positive value. */
static int64_t timeout_ticks(double sec)
{
    if (!(sec > 0 && sec < 1e9))
        return 0;
    int64_t t = tsc_sec_to_ticks(sec);
    return t > 0 ? t : 1;
}

int coro_fd_set_timeout(int fd, double read_sec, double write_sec)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (isnan(read_sec) || isnan(write_sec) || read_sec < 0 ||
        write_sec < 0) {
        errno = EINVAL;
        return -1;
    }
    struct sched *s = coro__sched();
    if (s == NULL)
        return -1;
    struct coro__fd *f = coro__fd_get(s, fd);
    if (f == NULL)
        return -1;
    f->timeout_ticks[0] = timeout_ticks(read_sec);
    f->timeout_ticks[1] = timeout_ticks(write_sec);
    return 0;
}

int coro_fd_forget(int fd)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    struct sched *s = coro__tls_sched;
    struct coro__fd *f = s != NULL ? coro__fd_find(s, fd) : NULL;
    if (f == NULL || f->internal)
        return 0;
    if (f->state == CORO__FD_POLLED) {
        /* Another process may hold the file open: stop its events. */
        int saved = errno;
        coro__poller_del(s->io->poller, fd);
        errno = saved;
    }
    coro__fd_fresh(s, fd);
    return 0;
}

int coro_close(int fd)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    struct sched *s = coro__tls_sched;
    struct coro__fd *f = s != NULL ? coro__fd_find(s, fd) : NULL;
    if (s != NULL && coro__fd_runtime(s, fd, f)) {
        errno = EBADF;
        return -1;
    }
    if (f != NULL)
        coro__fd_fresh(s, fd); /* closing drops the epoll registration */
    /* Linux closes the fd even when close() reports EINTR: never retry. */
    if (close(fd) != 0 && errno != EINTR)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Public handlers: a coroutine per firing, like Shrapnel's set_handler */

struct firing {
    void (*fn)(int fd, int events, void *arg);
    void *arg;
    int fd;
    int events;
};

static int firing_run(void *p)
{
    struct firing fr = *(struct firing *)p;
    coro__sys_free(p);
    fr.fn(fr.fd, fr.events, fr.arg);
    return 0;
}

static void fire_handler(struct sched *s, int fd, struct coro__fd *f,
                         unsigned bits)
{
    struct firing *fr = coro__sys_malloc(sizeof *fr);
    if (fr == NULL)
        goto fail;
    fr->fn = f->handler;
    fr->arg = f->handler_arg;
    fr->fd = fd;
    fr->events = (int)(bits & (f->handler_events | CORO__EV_HUP |
                               CORO__EV_ERR));
    if (f->oneshot) {
        f->handler = NULL;
        s->io->handlers--;
    }
    char name[CORO_NAME_MAX + 1];
    snprintf(name, sizeof name, "handler fd %d", fd);
    if (coro_spawn(firing_run, fr, name) != NULL)
        return;
    coro__sys_free(fr);
fail:
    coro_print_stderr("coro: handler for fd %d lost an event: %s", fd,
                      strerror(errno));
}

int coro_set_handler(int fd, int events,
                     void (*fn)(int fd, int events, void *arg), void *arg,
                     int flags)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    unsigned want = (unsigned)events & (CORO_READABLE | CORO_WRITABLE);
    if (fn == NULL || want == 0 || want != (unsigned)events ||
        (flags & ~CORO_HANDLER_ONESHOT)) {
        errno = EINVAL;
        return -1;
    }
    struct sched *s = coro__sched();
    if (s == NULL)
        return -1;
    struct coro__fd *f = coro__fd_get(s, fd);
    if (f == NULL)
        return -1;
    if (coro__fd_runtime(s, fd, f)) {
        errno = EBADF;
        return -1;
    }
    if (fd_register(s, fd, f) != 0)
        return -1;
    if (f->handler == NULL)
        s->io->handlers++;
    f->handler = fn;
    f->handler_arg = arg;
    f->handler_events = want;
    f->oneshot = (flags & CORO_HANDLER_ONESHOT) != 0;
    /* Ready already (or never pollable): fire now, or the edge that made
     * it ready, long gone, would never come again. */
    int bits = f->state == CORO__FD_ALWAYS ? (int)want : poll_now(fd, want);
    if (bits > 0 && (bits & (int)(want | CORO__EV_HUP | CORO__EV_ERR)))
        fire_handler(s, fd, f, (unsigned)bits);
    return 0;
}

int coro_clear_handler(int fd)
{
    struct sched *s = coro__tls_sched;
    struct coro__fd *f = s != NULL ? coro__fd_find(s, fd) : NULL;
    if (f == NULL || f->handler == NULL) {
        errno = fd < 0 ? EBADF : ENOENT;
        return -1;
    }
    f->handler = NULL;
    s->io->handlers--;
    return 0;
}

const char *coro_poller_name(void)
{
    return coro__poller_name();
}

/* ------------------------------------------------------------------ */
/* Cross-thread wake-ups                                               */

/* The wake-up fd is readable: run everything posted, oldest first. */
static void remote_drain(struct sched *s, int fd, unsigned bits, void *ud)
{
    (void)fd;
    (void)bits;
    (void)ud;
    struct coro__io *io = s->io;
    coro__sys_wakeup_drain(io->wake_rfd);
    struct coro__remote *r =
        atomic_exchange_explicit(&io->remote, NULL, memory_order_acquire);
    struct coro__remote *fifo = NULL;
    while (r != NULL) { /* reverse: posts were pushed newest first */
        struct coro__remote *next = r->next;
        r->next = fifo;
        fifo = r;
        r = next;
    }
    while (fifo != NULL) {
        struct coro__remote *next = fifo->next;
        fifo->run(fifo);
        fifo = next;
    }
}

int coro__remote_enable(struct sched *s)
{
    struct coro__io *io = io_get(s);
    if (io == NULL)
        return -1;
    if (poller_get(s) == NULL) /* also replaces a fork-inherited fd */
        return -1;
    if (io->wake_rfd >= 0)
        return 0;
    if (coro__sys_wakeup_open(&io->wake_rfd, &io->wake_wfd) != 0)
        return -1;
    if (coro__fd_set_internal(s, io->wake_rfd, remote_drain, NULL) != 0) {
        int saved = errno;
        coro__sys_wakeup_close(io->wake_rfd, io->wake_wfd);
        io->wake_rfd = io->wake_wfd = -1;
        errno = saved;
        return -1;
    }
    return 0;
}

void coro__remote_post(struct sched *s, struct coro__remote *r)
{
    struct coro__io *io = s->io;
    struct coro__remote *head =
        atomic_load_explicit(&io->remote, memory_order_relaxed);
    do
        r->next = head;
    while (!atomic_compare_exchange_weak_explicit(
        &io->remote, &head, r, memory_order_release, memory_order_relaxed));
    if (head == NULL) /* the first since the last drain wakes the loop */
        coro__sys_wakeup_signal(io->wake_wfd);
}

/* ------------------------------------------------------------------ */
/* The loop's side                                                     */

/* In a fork() child: the poller (and the wake-up fd) are the parent's
 * objects.  Make our own, forget every registration, and register again
 * only what someone still waits on, so their waits carry on. */
static void io_after_fork(struct sched *s)
{
    struct coro__io *io = s->io;
    io->fork_gen = __atomic_load_n(&fork_gen, __ATOMIC_RELAXED);
    coro__clock_start(); /* the ticker thread stayed with the parent */
    if (io->poller != NULL) {
        coro__poller_close(io->poller);
        io->poller = NULL;
    }
    bool remote = io->wake_rfd >= 0;
    if (remote) {
        struct coro__fd *w = coro__fd_find(s, io->wake_rfd);
        memset(w, 0, sizeof *w);
        fd_init(w);
        io->internals--; /* coro__remote_enable() below counts it again */
        coro__sys_wakeup_close(io->wake_rfd, io->wake_wfd);
        io->wake_rfd = io->wake_wfd = -1;
        atomic_store(&io->remote, NULL); /* posted by threads now gone */
    }
    if (coro__poller_open(&io->poller) != 0) {
        io->poller = NULL; /* poller_get() tries again and reports */
        return;
    }
    for (size_t c = 0; c < io->nchunks; c++) {
        struct coro__fd *chunk = io->chunks[c];
        for (size_t i = 0; chunk != NULL && i < CHUNK_SIZE; i++) {
            struct coro__fd *f = &chunk[i];
            if (f->state != CORO__FD_POLLED)
                continue;
            int fd = (int)(c * CHUNK_SIZE + i);
            fd_unregister(s, f);
            if ((f->waiters.head != NULL || f->handler != NULL ||
                 f->on_ready != NULL) &&
                fd_register(s, fd, f) != 0)
                wake_all_err(f, errno);
        }
    }
    if (remote && coro__remote_enable(s) != 0)
        coro_print_stderr("coro: no wake-up fd after fork: %s",
                          strerror(errno));
    coro__signal_after_fork(s);
    coro__process_after_fork(s);
}

void coro__io_poll(struct sched *s, int64_t timeout_ticks)
{
    struct coro__poller *p = poller_get(s);
    if (p == NULL) {
        coro_print_stderr("coro: cannot create the poller: %s",
                          strerror(errno));
        abort();
    }
    if (s->run_head != NULL)
        timeout_ticks = 0; /* never sleep with someone runnable (a fork
                            * child's repair just above may wake waiters) */
    if (coro__poller_wait(p, s, timeout_ticks) < 0) {
        coro_print_stderr("coro: %s wait failed: %s", coro__poller_name(),
                          strerror(errno));
        abort();
    }
}

bool coro__io_can_wake(const struct sched *s)
{
    const struct coro__io *io = s->io;
    return io != NULL && (io->waiting > 0 || io->handlers > 0 ||
                          io->holds > 0);
}

bool coro__io_has_handlers(const struct sched *s)
{
    return s->io != NULL && s->io->handlers > 0;
}

bool coro__io_watching(const struct sched *s)
{
    const struct coro__io *io = s->io;
    return io != NULL && io->poller != NULL &&
           (coro__io_can_wake(s) || io->internals > 0);
}

void coro__io_stats(const struct sched *s, coro_stats_t *out)
{
    const struct coro__io *io = s->io;
    if (io == NULL)
        return;
    out->fds_watched = io->watched;
    out->fd_waiters = io->waiting;
    out->io_events = io->events;
}

void coro__io_fini(struct sched *s)
{
    struct coro__io *io = s->io;
    if (io == NULL)
        return;
    if (io->wake_rfd >= 0)
        coro__sys_wakeup_close(io->wake_rfd, io->wake_wfd);
    coro__poller_close(io->poller);
    for (size_t c = 0; c < io->nchunks; c++)
        coro__sys_free(io->chunks[c]);
    coro__sys_free(io->chunks);
    coro__sys_free(io);
    s->io = NULL;
}
