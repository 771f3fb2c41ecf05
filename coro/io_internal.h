/*
 * The I/O core shared by fd.c, the socket, signal, process and offload
 * files.  Never installed.
 *
 * fd.c keeps one record per fd number the program has waited on: whether
 * it is registered with the poller, which directions are believed ready,
 * and who waits for it.  Readiness is tracked, not asked for: the poller
 * registers an fd once, edge-triggered, and each edge sets bits here that
 * stay set until an operation on the fd sees EAGAIN or a short transfer.
 * So an operation on a ready fd costs exactly its own system call, and an
 * operation on an fd known to be drained waits for the next edge without
 * trying a call doomed to EAGAIN.
 */
#ifndef CORO_IO_INTERNAL_H
#define CORO_IO_INTERNAL_H

#include "coro_internal.h"
#include "poller_internal.h"

/* Registration state of an fd record. */
enum coro__fd_state {
    CORO__FD_UNKNOWN = 0, /* not registered with the poller (yet) */
    CORO__FD_POLLED,      /* registered, edges arrive */
    CORO__FD_ALWAYS       /* cannot be polled (regular file): always ready */
};

/* What socket.c knows about the file behind an fd (struct coro__fd.kind):
 * whether to send with MSG_NOSIGNAL, and whether a short read means the
 * kernel buffer is empty (a stream) or only that one message was short. */
enum coro__fd_kind {
    CORO__FD_KIND_UNKNOWN = 0, /* not looked at yet */
    CORO__FD_KIND_STREAM,      /* SOCK_STREAM socket */
    CORO__FD_KIND_MESSAGE,     /* datagram, seqpacket or raw socket */
    CORO__FD_KIND_OTHER        /* not a socket: pipe, tty, file... */
};

/* Called in the loop for each event on an fd with an internal handler. */
typedef void (*coro__fd_handler_fn)(struct sched *s, int fd, unsigned bits,
                                    void *ud);

/* One fd's record.  Records live in chunks that never move, so a pointer
 * to one stays valid for the scheduler's life. */
struct coro__fd {
    uint8_t state;        /* enum coro__fd_state */
    uint8_t ready;        /* CORO__EV_* bits believed ready: both on a new
                             record (try the call first), set by edges,
                             cleared only by operations that saw EAGAIN or
                             a short transfer; HUP stays once an edge
                             reported it (end of input is for good); PRI
                             until a read sees EAGAIN */
    uint8_t unseen;       /* READ/WRITE bits of ready that no public wait
                             has reported yet: coro_wait_fd() answers from
                             these and consumes them (its caller may drain
                             the fd with read(2), unseen by us), while the
                             socket calls still try theirs */
    bool internal;        /* the runtime's own fd (wake-up, signalfd): not
                             counted as watched, never reset by reuse */
    bool oneshot;         /* public handler: cleared after it fires once */
    uint8_t kind;         /* enum coro__fd_kind, learned by socket.c on
                             first use; reset by coro__fd_fresh() */
    uint32_t gen;         /* bumped by coro__fd_fresh(): a waiter whose fd
                             went away (and maybe came back as a new file)
                             while it was runnable sees the change */
    unsigned handler_events; /* public handler: CORO_READABLE... it wants */
    struct coro__waitq waiters; /* coroutines in coro__fd_wait(), FIFO */
    int64_t timeout_ticks[2]; /* default wait timeout for reads [0] and
                                 writes [1], 0 = none (coro_fd_set_timeout) */
    coro__fd_handler_fn on_ready; /* internal handler, or NULL */
    void (*handler)(int fd, int events, void *arg); /* public handler */
    void *handler_arg;    /* its argument (borrowed), or on_ready's ud */
};

/* The record of fd, created on first use (not registered yet).  NULL with
 * errno EBADF (fd < 0) or ENOMEM. */
struct coro__fd *coro__fd_get(struct sched *s, int fd);
/* The record of fd if one exists, else NULL; never allocates. */
struct coro__fd *coro__fd_find(struct sched *s, int fd);
/*
 * Whether fd (record f, or NULL) is one of the runtime's own fds, which
 * the application may neither close, wait on nor read or write: an
 * internal handler's (wake-up fd, signalfd, pidfds), the wake-up pipe's
 * write end, the poller's.  A coroutine waiting on one would never be
 * woken (its events go to the runtime), and reading one would steal the
 * runtime's wake-ups or signals.
 */
bool coro__fd_runtime(const struct sched *s, int fd,
                      const struct coro__fd *f);

/*
 * Wait until fd is ready for one of the CORO__EV_READ/WRITE bits in dir
 * (a hang-up or error counts as ready), registering it on first use.
 * Call it after an operation saw EAGAIN or a short transfer: it clears
 * those bits and parks until the next edge.  The fd's default timeout
 * for that direction applies.  what names the wait for coro_where().
 * 0, or -1 with errno EBADF (bad fd, or it was closed while waiting),
 * ETIMEDOUT, EPERM, ENOMEM, ENOSPC, or an interrupt's errno.
 */
int coro__fd_wait(int fd, unsigned dir, const char *what, const void *addr);

/* Whether fd is believed ready for dir: false means an operation would
 * see EAGAIN, so wait for an edge first. */
static inline bool coro__fd_ready_for(const struct coro__fd *f, unsigned dir)
{
    return (f->ready & dir) != 0;
}

/* An operation on a stream moved fewer bytes than asked: the kernel
 * buffer for dir is drained, wait for the next edge.  Not so for reads
 * once the peer hung up (the edge that said so may have come with the
 * last data, and no edge follows it, so a read after a short one must go
 * ahead and see the end of input), nor while urgent data is pending (the
 * read stopped at the urgent mark, and the data after it brings no edge). */
static inline void coro__fd_drained(struct coro__fd *f, unsigned dir)
{
    if (f->ready & (CORO__EV_HUP | CORO__EV_PRI))
        dir &= ~(unsigned)CORO__EV_READ;
    f->ready &= (uint8_t)~dir;
    f->unseen &= (uint8_t)~dir;
}

/* An operation on fd saw EAGAIN for dir: drained for certain, urgent
 * mark included. */
static inline void coro__fd_empty(struct coro__fd *f, unsigned dir)
{
    if (dir & CORO__EV_READ)
        f->ready &= (uint8_t)~CORO__EV_PRI;
    coro__fd_drained(f, dir);
}

/* A new fd came from the kernel (socket, accept, pipe...): if its number
 * was in use before and closed behind our back, wake whoever still waits
 * on the old one with EBADF and start afresh.  Never fails. */
void coro__fd_fresh(struct sched *s, int fd);

/* Install an internal handler on fd (registered at once) and mark it
 * internal.  0, or -1 with errno. */
int coro__fd_set_internal(struct sched *s, int fd, coro__fd_handler_fn fn,
                          void *ud);

/* Undo coro__fd_set_internal() before closing fd: unregister it and
 * make its record an ordinary one again.  Never fails. */
void coro__fd_drop_internal(struct sched *s, int fd);

/*
 * Keep the loop waiting: a coroutine parked on something only the world
 * outside can end (a signal, a child, an offload job) counts as one hold,
 * so the loop blocks in the poller instead of reporting EDEADLK.
 */
void coro__io_hold(struct sched *s, int delta);

/* ------------------------------------------------------------------ */
/* Cross-thread wake-ups (offload): post work to a loop from any thread. */

struct coro__remote {
    struct coro__remote *next;            /* owned by the queue */
    void (*run)(struct coro__remote *r);  /* runs on the loop's thread */
};

/* Prepare s to receive remote posts (creates the wake-up fd); call on the
 * loop's thread before handing s to another thread.  0, or -1 errno. */
int coro__remote_enable(struct sched *s);
/* From any thread: queue r to run on s's loop, and wake the loop.  Safe
 * while s lives and coro__remote_enable() has succeeded. */
void coro__remote_post(struct sched *s, struct coro__remote *r);

/* ------------------------------------------------------------------ */
/* The loop's side (sched.c).                                          */

/* Poll for events for up to timeout_ticks (< 0: no limit) and wake their
 * waiters.  Aborts if the poller fails in a way the loop cannot survive. */
void coro__io_poll(struct sched *s, int64_t timeout_ticks);
/* Whether anything outside the coroutines can still wake one: fd
 * waiters, handlers, holds. */
bool coro__io_can_wake(const struct sched *s);
/* Whether fd handlers are installed: they keep the loop running even
 * when no coroutine is left, as they spawn new ones. */
bool coro__io_has_handlers(const struct sched *s);
/* Whether polling without blocking could make anyone runnable (or end
 * the loop: an internal fd may carry SIGTERM). */
bool coro__io_watching(const struct sched *s);
/* Counters for coro_stats(). */
void coro__io_stats(const struct sched *s, coro_stats_t *out);
/* Free the poller, the records and the wake-up fd (coro_fini). */
void coro__io_fini(struct sched *s);

#endif /* CORO_IO_INTERNAL_H */
