/*
 * The kqueue backend of the poller contract (poller_internal.h), for the
 * BSDs and macOS.  It is built where <sys/event.h> exists and cannot run
 * on our Linux CI: it is kept to the contract and nothing more, so that
 * reading it is the review.
 *
 * Every fd is added once with two filters, EVFILT_READ and EVFILT_WRITE,
 * both EV_CLEAR (edge-triggered), in one kevent() call.  EV_EOF on either
 * filter is reported as a hang-up; an fflags errno with EV_EOF as an
 * error, so the next operation on the fd finds it.
 */
#include "coro_internal.h"
#include "poller_internal.h"

#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <fcntl.h>
#include <unistd.h>

/* Events taken per kevent() call; see poller_epoll.c. */
#define MAX_EVENTS 256

struct coro__poller {
    int kq;                           /* the kqueue */
    struct kevent ev[MAX_EVENTS];     /* filled by the kernel */
};

int coro__poller_open(struct coro__poller **out)
{
    struct coro__poller *p = coro__sys_malloc(sizeof *p);
    if (p == NULL)
        return -1;
    p->kq = kqueue();
    if (p->kq < 0) {
        int saved = errno;
        coro__sys_free(p);
        errno = saved;
        return -1;
    }
    /* kqueue descriptors are not inherited by fork() children, but they
     * do survive exec() unless told otherwise. */
    fcntl(p->kq, F_SETFD, FD_CLOEXEC);
    *out = p;
    return 0;
}

int coro__poller_fd(const struct coro__poller *p)
{
    return p->kq;
}

void coro__poller_close(struct coro__poller *p)
{
    if (p == NULL)
        return;
    close(p->kq);
    coro__sys_free(p);
}

int coro__poller_add(struct coro__poller *p, int fd)
{
    struct kevent ch[2];
    EV_SET(&ch[0], fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, NULL);
    EV_SET(&ch[1], fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, NULL);
    if (kevent(p->kq, ch, 2, NULL, 0, NULL) < 0)
        return -1;
    return 0;
}

int coro__poller_del(struct coro__poller *p, int fd)
{
    struct kevent ch[2];
    EV_SET(&ch[0], fd, EVFILT_READ, EV_DELETE, 0, 0, NULL);
    EV_SET(&ch[1], fd, EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
    return kevent(p->kq, ch, 2, NULL, 0, NULL) < 0 ? -1 : 0;
}

int coro__poller_wait(struct coro__poller *p, struct sched *s,
                      int64_t timeout_ticks)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ticks >= 0) {
        int64_t ns = tsc_ticks_to_nsec(timeout_ticks);
        ts.tv_sec = ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        tsp = &ts;
    }
    int n = kevent(p->kq, NULL, 0, p->ev, MAX_EVENTS, tsp);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        const struct kevent *e = &p->ev[i];
        unsigned bits = 0;
        if (e->flags & EV_ERROR)
            bits = CORO__EV_ERR | CORO__EV_READ | CORO__EV_WRITE;
        else if (e->filter == EVFILT_READ)
            bits = CORO__EV_READ;
#ifdef EV_OOBAND
        if (e->filter == EVFILT_READ && (e->flags & EV_OOBAND))
            bits |= CORO__EV_PRI; /* reads stop at the urgent mark */
#endif
        else if (e->filter == EVFILT_WRITE)
            bits = CORO__EV_WRITE;
        if (e->flags & EV_EOF)
            bits |= CORO__EV_HUP | CORO__EV_READ |
                    (e->fflags != 0 ? CORO__EV_ERR : 0);
        coro__fd_ready(s, (int)e->ident, bits);
    }
    return n;
}

const char *coro__poller_name(void)
{
    return "kqueue";
}
