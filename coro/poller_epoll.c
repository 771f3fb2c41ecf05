/*
 * The epoll backend of the poller contract (poller_internal.h).
 *
 * Every fd is added once with EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP |
 * EPOLLET (EPOLLPRI: TCP urgent data, see CORO__EV_PRI):
 * epoll keeps one interest set per fd, and asking for both directions up
 * front means no EPOLL_CTL_MOD when a connection switches from reading to
 * writing.  Edge-triggered events only say "something changed"; fd.c
 * remembers the resulting readiness until an operation sees EAGAIN.
 *
 * Timeouts go to the kernel in nanoseconds through epoll_pwait2() (Linux
 * 5.11) where it exists, so a 100 us sleep is not rounded up to a
 * millisecond; older kernels get epoll_wait() with the timeout rounded up
 * (waking early would only spin).
 */
#include "coro_internal.h"
#include "poller_internal.h"

#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Events taken per epoll call.  More are left for the next call (after
 * the coroutines woken by these have run), which bounds the work of one
 * loop pass. */
#define MAX_EVENTS 256

struct coro__poller {
    int epfd;                            /* the epoll instance */
    bool no_pwait2;                      /* epoll_pwait2 gave ENOSYS */
    struct epoll_event ev[MAX_EVENTS];   /* filled by the kernel */
};

int coro__poller_open(struct coro__poller **out)
{
    struct coro__poller *p = coro__sys_malloc(sizeof *p);
    if (p == NULL)
        return -1;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        int saved = errno;
        coro__sys_free(p);
        errno = saved;
        return -1;
    }
    p->no_pwait2 = false;
    *out = p;
    return 0;
}

int coro__poller_fd(const struct coro__poller *p)
{
    return p->epfd;
}

void coro__poller_close(struct coro__poller *p)
{
    if (p == NULL)
        return;
    close(p->epfd);
    coro__sys_free(p);
}

int coro__poller_add(struct coro__poller *p, int fd)
{
    struct epoll_event e = {
        .events = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.fd = fd,
    };
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &e) == 0)
        return 0;
    /* Already there: added before a fork, or by an earlier owner of this
     * fd number whose file is still open elsewhere.  Renew it. */
    if (errno == EEXIST && epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &e) == 0)
        return 0;
    return -1;
}

int coro__poller_del(struct coro__poller *p, int fd)
{
    struct epoll_event e = {0}; /* kernels before 2.6.9 want non-NULL */
    return epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, &e);
}

static int wait_events(struct coro__poller *p, int64_t timeout_ticks)
{
    if (timeout_ticks == 0)
        return epoll_wait(p->epfd, p->ev, MAX_EVENTS, 0);
#ifdef SYS_epoll_pwait2
    if (!p->no_pwait2) {
        struct timespec ts, *tsp = NULL;
        if (timeout_ticks > 0) {
            int64_t ns = tsc_ticks_to_nsec(timeout_ticks);
            ts.tv_sec = ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            tsp = &ts;
        }
        long n = syscall(SYS_epoll_pwait2, p->epfd, p->ev, MAX_EVENTS, tsp,
                         NULL, (size_t)0);
        if (n >= 0 || errno != ENOSYS)
            return (int)n;
        p->no_pwait2 = true;
    }
#endif
    int ms = -1;
    if (timeout_ticks > 0) {
        int64_t us = tsc_ticks_to_usec(timeout_ticks);
        int64_t m = (us + 999) / 1000;
        ms = m > 86400000 ? 86400000 : (int)m; /* a day; the loop re-asks */
    }
    return epoll_wait(p->epfd, p->ev, MAX_EVENTS, ms);
}

int coro__poller_wait(struct coro__poller *p, struct sched *s,
                      int64_t timeout_ticks)
{
    int n = wait_events(p, timeout_ticks);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        uint32_t e = p->ev[i].events;
        unsigned bits = 0;
        if (e & EPOLLIN)
            bits |= CORO__EV_READ;
        if (e & EPOLLPRI)
            bits |= CORO__EV_PRI | CORO__EV_READ;
        if (e & EPOLLOUT)
            bits |= CORO__EV_WRITE;
        if (e & (EPOLLHUP | EPOLLRDHUP))
            bits |= CORO__EV_HUP | CORO__EV_READ;
        if (e & EPOLLHUP)
            bits |= CORO__EV_WRITE;
        if (e & EPOLLERR)
            bits |= CORO__EV_ERR | CORO__EV_READ | CORO__EV_WRITE;
        coro__fd_ready(s, p->ev[i].data.fd, bits);
    }
    return n;
}

const char *coro__poller_name(void)
{
    return "epoll";
}
