/*
 * The poller contract: poller_epoll.c (Linux) and poller_kqueue.c (BSD,
 * macOS) implement all of it and nothing else.  Never installed.
 *
 * Each fd is registered once for its life, edge-triggered (EPOLLET,
 * EV_CLEAR), for both directions at once: readiness is tracked by the
 * core (fd.c), so the steady state needs no registration call per
 * operation.  Readiness reaches the core through coro__fd_ready(), never
 * through a callback stored in the backend.
 */
#ifndef CORO_POLLER_INTERNAL_H
#define CORO_POLLER_INTERNAL_H

#include <stdint.h>

struct sched;
struct coro__poller; /* private to a backend */

/* Readiness bits a backend reports (the public CORO_READABLE... values). */
#define CORO__EV_READ 0x1  /* data or a connection to accept, or EOF */
#define CORO__EV_WRITE 0x2 /* room to write */
#define CORO__EV_HUP 0x4   /* the peer hung up (also reported readable) */
#define CORO__EV_ERR 0x8   /* an error is pending (also both directions) */
/* Urgent data is pending (also readable): a TCP read stops at the urgent
 * mark with data after it, so a short read does not prove the buffer
 * empty.  Kept in the fd's record, never passed to handlers. */
#define CORO__EV_PRI 0x10

/* Create a poller.  0, or -1 with errno (EMFILE, ENFILE, ENOMEM). */
int coro__poller_open(struct coro__poller **out);
/* Close it; registrations vanish with it. */
void coro__poller_close(struct coro__poller *p);
/* The poller's own fd (the epoll or kqueue instance), which the
 * application must not close or wait on. */
int coro__poller_fd(const struct coro__poller *p);
/* Register fd for both directions, edge-triggered.  0, or -1 with errno:
 * EPERM for an fd that cannot be polled (a regular file: always ready),
 * EBADF, ENOMEM, ENOSPC (the kernel's watch limit). */
int coro__poller_add(struct coro__poller *p, int fd);
/* Forget fd (before it is closed while another process may hold it). */
int coro__poller_del(struct coro__poller *p, int fd);
/*
 * Wait up to timeout_ticks (< 0: without limit, 0: just look) for events
 * and report each with coro__fd_ready(s, fd, bits).  Returns the number of
 * events reported (0 on timeout or a signal), or -1 with errno for a
 * failure the loop cannot survive.
 */
int coro__poller_wait(struct coro__poller *p, struct sched *s,
                      int64_t timeout_ticks);
/* "epoll" or "kqueue", for consoles. */
const char *coro__poller_name(void);

/* fd.c: called by the backend for each event. */
void coro__fd_ready(struct sched *s, int fd, unsigned bits);

#endif /* CORO_POLLER_INTERNAL_H */
