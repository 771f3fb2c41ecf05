/*
 * Socket calls over non-blocking fds.
 *
 * Each call tries its system call first.  It waits for the fd (through
 * coro__fd_wait(), the one fd wait) only when the fd's record says the
 * last call in that direction drained the kernel buffer, or when the call
 * itself reports EAGAIN.  A transfer of fewer bytes than asked on a stream
 * also means drained: the next call waits for the poller's next edge
 * instead of making a read or write that would fail with EAGAIN (the trap
 * in DESIGN.md: that extra call per request is what nginx avoids).  So a
 * keep-alive request costs one read, one write and its share of one
 * epoll_wait, and no epoll_ctl: the fd stays registered for its life.
 *
 * A call that succeeds without waiting is a selfish act; after
 * max_selfish_acts of them the call yields before it returns (see
 * selfish_yield()).  A yield never fails: an interrupt that arrives during
 * it is kept for the next blocking call, as the data is already in hand.
 */
#include "socket_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Socket types are small numbers; Linux and the BSDs OR their
 * SOCK_NONBLOCK and SOCK_CLOEXEC flags into the high bits of type. */
#define TYPE_MASK 0xff

/* Connections accept_many() takes per call at most, whatever max says
 * (bounds the loop when the kernel keeps the queue full). */
#define ACCEPT_MANY_MAX 1024

/* iovecs copied per sendmsg() by coro_send_allv(): the window it adjusts
 * after a short write, on the coroutine's stack (16 bytes each). */
#define IOV_WINDOW 64

/* One socket call in progress. */
struct op {
    struct coro *co;     /* the calling coroutine */
    struct coro__fd *f;  /* fd's record (records never move) */
    int fd;              /* the fd */
    const char *what;    /* the call's name, for coro_where() */
    const void *addr;    /* the call's return address, for coro_where() */
};

/* ------------------------------------------------------------------ */
/* Records                                                             */

/* The kind of a socket of this type. */
static uint8_t kind_of_type(int type)
{
    return (type & TYPE_MASK) == SOCK_STREAM ? CORO__FD_KIND_STREAM
                                             : CORO__FD_KIND_MESSAGE;
}

/* Look at an fd we did not create, once: socket or not, and make it
 * non-blocking.  Returns the kind, or 0 with errno (EBADF: not open). */
static uint8_t learn_kind(int fd)
{
    int type;
    socklen_t len = sizeof type;
    uint8_t kind;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0)
        kind = kind_of_type(type);
    else if (errno == ENOTSOCK)
        kind = CORO__FD_KIND_OTHER;
    else
        return 0;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) &&
                   fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0))
        return 0;
    return kind;
}

/* A new fd from the kernel: wake whoever still waits on an old file with
 * its number, and remember what it is.  A record we cannot allocate now
 * is made (and the kind learned) on first use instead. */
static void new_fd(struct sched *s, int fd, uint8_t kind)
{
    coro__fd_fresh(s, fd);
    int saved = errno;
    struct coro__fd *f = coro__fd_get(s, fd);
    if (f != NULL)
        f->kind = kind;
    errno = saved;
}

/*
 * Start a call that may wait: the checks of every blocking call (EPERM
 * outside a coroutine, a pending interrupt, a passed deadline), then fd's
 * record.  0, or -1 with errno.
 */
static int op_begin(struct op *op, int fd, const char *what, const void *addr)
{
    struct coro__wait w; /* only for the checks: coro__wait_begin() */
    if (coro__wait_begin(&w) != 0)
        return -1;
    op->co = w.co;
    op->fd = fd;
    op->what = what;
    op->addr = addr;
    struct sched *s = coro__tls_sched;
    struct coro__fd *f = coro__fd_find(s, fd);
    if (CORO__LIKELY(f != NULL && f->kind != CORO__FD_KIND_UNKNOWN)) {
        op->f = f;
        return 0;
    }
    /* The runtime's own fds are refused here, on every call, as their
     * kind is never learned. */
    if (coro__fd_runtime(s, fd, f)) {
        errno = EBADF;
        return -1;
    }
    /* Learn before making a record, so a number that is not open (say
     * INT_MAX) fails with EBADF instead of growing the record table. */
    uint8_t kind = learn_kind(fd);
    if (kind == 0)
        return -1;
    f = coro__fd_get(s, fd);
    if (f == NULL)
        return -1;
    f->kind = kind;
    op->f = f;
    return 0;
}

/* Wait for op's fd to be ready for dir (after EAGAIN or a drained
 * buffer).  Having waited, the coroutine gave the CPU up: its selfish acts
 * start again.  0, or -1 with errno. */
static int op_wait(const struct op *op, unsigned dir)
{
    if (coro__fd_wait(op->fd, dir, op->what, op->addr) != 0)
        return -1;
    coro__selfish_reset(op->co);
    return 0;
}

/*
 * Go to the back of the run queue, like coro_yield(), but without failing:
 * the call has done its work, so an interrupt that arrives meanwhile is
 * kept for the next blocking call, and deadlines are checked by that call.
 */
static void selfish_yield(const struct op *op)
{
    struct sched *s = coro__tls_sched;
    struct coro *co = op->co;
    struct coro__wait w;
    coro__wait_init(&w, op->what, NULL, op->addr);
    w.co = co;
    co->wait = &w;
    coro__make_runnable(s, co);
    coro__switch_out(s);
    co->wait = NULL;
    if (w.err != 0 && co->pending_err == 0)
        co->pending_err = w.err;
}

/* op's system call succeeded without waiting: a selfish act. */
static inline void op_selfish(const struct op *op)
{
    if (coro__selfish_act(op->co))
        selfish_yield(op);
}

/* ------------------------------------------------------------------ */
/* One transfer                                                        */

enum xfer_call { X_READ, X_WRITE, X_READV, X_WRITEV, X_RECVFROM, X_SENDTO };

/* The arguments of one transfer system call. */
struct xfer {
    enum xfer_call call;
    void *buf;                    /* X_READ, X_WRITE, X_RECV/SENDTO */
    size_t n;                     /* its length, bytes */
    const struct iovec *iov;      /* X_READV, X_WRITEV */
    int iovcnt;
    int flags;                    /* X_RECVFROM, X_SENDTO */
    struct sockaddr *from;        /* X_RECVFROM, may be NULL */
    socklen_t *fromlen;           /* in: its size (restored per try) */
    socklen_t fromlen_in;
    const struct sockaddr *to;    /* X_SENDTO, may be NULL */
    socklen_t tolen;
    size_t want;                  /* bytes asked for in all */
};

static ssize_t xfer_call(const struct op *op, struct xfer *x)
{
    int fd = op->fd;
    bool sock = op->f->kind != CORO__FD_KIND_OTHER;
    switch (x->call) {
    case X_READ:
        return read(fd, x->buf, x->n);
    case X_READV:
        return readv(fd, x->iov, x->iovcnt);
    case X_WRITE:
        if (sock)
            return send(fd, x->buf, x->n, coro__sys_msg_nosignal);
        coro__sys_sigpipe_off();
        return write(fd, x->buf, x->n);
    case X_WRITEV:
        if (sock) {
            struct msghdr m = {.msg_iov = (struct iovec *)x->iov,
                               .msg_iovlen = (size_t)x->iovcnt};
            return sendmsg(fd, &m, coro__sys_msg_nosignal);
        }
        coro__sys_sigpipe_off();
        return writev(fd, x->iov, x->iovcnt);
    case X_RECVFROM:
        if (x->fromlen != NULL)
            *x->fromlen = x->fromlen_in;
        return recvfrom(fd, x->buf, x->n, x->flags, x->from, x->fromlen);
    case X_SENDTO: /* a socket call: ENOTSOCK on anything else */
        return sendto(fd, x->buf, x->n, x->flags | coro__sys_msg_nosignal,
                      x->to, x->tolen);
    }
    errno = EINVAL;
    return -1;
}

/*
 * One transfer in direction dir: try the call (unless fd is known to be
 * drained), wait when it would block, try again.  Returns the call's
 * result: bytes moved, or -1 with errno (never EAGAIN).
 */
static ssize_t xfer(const struct op *op, unsigned dir, struct xfer *x)
{
    struct coro__fd *f = op->f;
    bool ready = coro__fd_ready_for(f, dir);
    for (;;) {
        if (!ready && op_wait(op, dir) != 0)
            return -1;
        ssize_t got = xfer_call(op, x);
        if (got >= 0) {
            /* Short on a stream: the kernel buffer is empty (full).  Not
             * so for a datagram, for EOF (0: there is no next edge), or
             * for recvfrom/sendto (datagram calls, or MSG_PEEK). */
            if ((size_t)got < x->want && f->kind != CORO__FD_KIND_MESSAGE &&
                (got > 0 || dir == CORO__EV_WRITE) &&
                x->call != X_RECVFROM && x->call != X_SENDTO)
                coro__fd_drained(f, dir);
            op_selfish(op);
            return got;
        }
        if (errno == EINTR) {
            ready = true;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        ready = false; /* op_wait() marks it drained */
    }
}

/* Checks shared by the buffer calls: EBADF, EINVAL.  0 or -1. */
static int check_buf(int fd, const void *buf, size_t n)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if ((buf == NULL && n > 0) || n > SSIZE_MAX) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* Checks of an iovec array, and its total length into *total. */
static int check_iov(int fd, const struct iovec *iov, int iovcnt,
                     size_t *total)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (iovcnt < 0 || iovcnt > IOV_MAX || (iov == NULL && iovcnt > 0))
        goto bad;
    size_t sum = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_base == NULL && iov[i].iov_len > 0)
            goto bad;
        if (iov[i].iov_len > SSIZE_MAX - sum)
            goto bad;
        sum += iov[i].iov_len;
    }
    *total = sum;
    return 0;
bad:
    errno = EINVAL;
    return -1;
}

/* ------------------------------------------------------------------ */
/* Reads and writes                                                    */

static ssize_t rw_once(int fd, void *buf, size_t n, enum xfer_call call,
                       const char *what, const void *ret)
{
    if (check_buf(fd, buf, n) != 0)
        return -1;
    if (n == 0)
        return 0;
    struct op op;
    if (op_begin(&op, fd, what, ret) != 0)
        return -1;
    struct xfer x = {.call = call, .buf = buf, .n = n, .want = n};
    return xfer(&op, call == X_READ ? CORO__EV_READ : CORO__EV_WRITE, &x);
}

ssize_t coro_read(int fd, void *buf, size_t n)
{
    return rw_once(fd, buf, n, X_READ, "read", __builtin_return_address(0));
}

ssize_t coro_write(int fd, const void *buf, size_t n)
{
    return rw_once(fd, (void *)buf, n, X_WRITE, "write",
                   __builtin_return_address(0));
}

static ssize_t rwv_once(int fd, const struct iovec *iov, int iovcnt,
                        enum xfer_call call, const char *what,
                        const void *ret)
{
    size_t total;
    if (check_iov(fd, iov, iovcnt, &total) != 0)
        return -1;
    if (total == 0)
        return 0;
    struct op op;
    if (op_begin(&op, fd, what, ret) != 0)
        return -1;
    struct xfer x = {.call = call, .iov = iov, .iovcnt = iovcnt,
                     .want = total};
    return xfer(&op, call == X_READV ? CORO__EV_READ : CORO__EV_WRITE, &x);
}

ssize_t coro_readv(int fd, const struct iovec *iov, int iovcnt)
{
    return rwv_once(fd, iov, iovcnt, X_READV, "readv",
                    __builtin_return_address(0));
}

ssize_t coro_writev(int fd, const struct iovec *iov, int iovcnt)
{
    return rwv_once(fd, iov, iovcnt, X_WRITEV, "writev",
                    __builtin_return_address(0));
}

/* Move all n bytes of buf through fd with call (X_READ or X_WRITE),
 * waiting as needed.  Returns the bytes moved: n, or fewer when a read
 * met EOF; -1 with errno on failure. */
static ssize_t xfer_all(int fd, enum xfer_call call, void *buf, size_t n,
                        const char *what, const void *addr)
{
    if (check_buf(fd, buf, n) != 0)
        return -1;
    if (n == 0)
        return 0;
    struct op op;
    if (op_begin(&op, fd, what, addr) != 0)
        return -1;
    unsigned dir = call == X_READ ? CORO__EV_READ : CORO__EV_WRITE;
    size_t done = 0;
    while (done < n) {
        struct xfer x = {.call = call, .buf = (char *)buf + done,
                         .n = n - done, .want = n - done};
        ssize_t got = xfer(&op, dir, &x);
        if (got < 0)
            return -1;
        if (got == 0 && call == X_READ)
            break; /* EOF: the caller sees done < n */
        done += (size_t)got;
    }
    return (ssize_t)done;
}

ssize_t coro_recv_exact(int fd, void *buf, size_t n)
{
    return xfer_all(fd, X_READ, buf, n, "recv_exact",
                    __builtin_return_address(0));
}

ssize_t coro_send_all(int fd, const void *buf, size_t n)
{
    return xfer_all(fd, X_WRITE, (void *)buf, n, "send_all",
                    __builtin_return_address(0));
}

ssize_t coro_send_allv(int fd, const struct iovec *iov, int iovcnt)
{
    size_t total;
    if (check_iov(fd, iov, iovcnt, &total) != 0)
        return -1;
    if (total == 0)
        return 0;
    struct op op;
    if (op_begin(&op, fd, "send_allv", __builtin_return_address(0)) != 0)
        return -1;
    /* Send from a window of the caller's iovecs, adjusted in our copy. */
    int next = 0;    /* first iovec of iov not yet in a window */
    size_t skip = 0; /* bytes of iov[next] already sent */
    size_t done = 0;
    while (done < total) {
        struct iovec win[IOV_WINDOW];
        int k = 0;
        size_t want = 0;
        for (int i = next; i < iovcnt && k < IOV_WINDOW; i++) {
            size_t off = i == next ? skip : 0;
            if (iov[i].iov_len == off)
                continue;
            win[k].iov_base = (char *)iov[i].iov_base + off;
            win[k].iov_len = iov[i].iov_len - off;
            want += win[k++].iov_len;
        }
        struct xfer x = {.call = X_WRITEV, .iov = win, .iovcnt = k,
                         .want = want};
        ssize_t got = xfer(&op, CORO__EV_WRITE, &x);
        if (got < 0)
            return -1;
        done += (size_t)got;
        /* Step past what went. */
        size_t left = (size_t)got + skip;
        while (next < iovcnt && left >= iov[next].iov_len) {
            left -= iov[next].iov_len;
            next++;
        }
        skip = left;
    }
    return (ssize_t)total;
}

ssize_t coro_recvfrom(int fd, void *buf, size_t n, int flags,
                      struct sockaddr *from, socklen_t *fromlen)
{
    if (check_buf(fd, buf, n) != 0)
        return -1;
    if (from != NULL && fromlen == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct op op;
    if (op_begin(&op, fd, "recvfrom", __builtin_return_address(0)) != 0)
        return -1;
    struct xfer x = {.call = X_RECVFROM, .buf = buf, .n = n, .want = n,
                     .flags = flags, .from = from, .fromlen = fromlen,
                     .fromlen_in = fromlen != NULL ? *fromlen : 0};
    return xfer(&op, CORO__EV_READ, &x);
}

ssize_t coro_sendto(int fd, const void *buf, size_t n, int flags,
                    const struct sockaddr *to, socklen_t tolen)
{
    if (check_buf(fd, buf, n) != 0)
        return -1;
    struct op op;
    if (op_begin(&op, fd, "sendto", __builtin_return_address(0)) != 0)
        return -1;
    struct xfer x = {.call = X_SENDTO, .buf = (void *)buf, .n = n,
                     .want = n, .flags = flags, .to = to, .tolen = tolen};
    return xfer(&op, CORO__EV_WRITE, &x);
}

ssize_t coro_sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
    if (out_fd < 0 || in_fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (count > SSIZE_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (count == 0)
        return 0;
    struct op op;
    if (op_begin(&op, out_fd, "sendfile", __builtin_return_address(0)) != 0)
        return -1;
    coro__sys_sigpipe_off(); /* sendfile(2) takes no MSG_NOSIGNAL */
    size_t done = 0;
    bool ready = coro__fd_ready_for(op.f, CORO__EV_WRITE);
    while (done < count) {
        if (!ready && op_wait(&op, CORO__EV_WRITE) != 0)
            return -1;
        ssize_t got = coro__sys_sendfile(out_fd, in_fd, offset, count - done);
        if (got > 0) {
            /* A short send may mean the file ended as well as a full
             * socket: never mark drained, let the next call say which. */
            done += (size_t)got;
            op_selfish(&op);
            ready = true;
            continue;
        }
        if (got == 0)
            break; /* the file ended */
        if (errno == EINTR) {
            ready = true;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        ready = false;
    }
    return (ssize_t)done;
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */

/* accept(2) failures that concern one queued connection, not the
 * listener: take the next one. */
static bool accept_retry(int err)
{
    return err == EINTR || err == ECONNABORTED || err == EPROTO;
}

int coro_accept(int lfd, struct sockaddr *addr, socklen_t *addrlen)
{
    if (lfd < 0) {
        errno = EBADF;
        return -1;
    }
    if (addr != NULL && addrlen == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct op op;
    if (op_begin(&op, lfd, "accept", __builtin_return_address(0)) != 0)
        return -1;
    socklen_t len_in = addrlen != NULL ? *addrlen : 0;
    bool ready = coro__fd_ready_for(op.f, CORO__EV_READ);
    for (;;) {
        if (!ready && op_wait(&op, CORO__EV_READ) != 0)
            return -1;
        if (addrlen != NULL)
            *addrlen = len_in;
        int fd = coro__sys_accept(lfd, addr, addrlen);
        if (fd >= 0) {
            new_fd(coro__tls_sched, fd, op.f->kind);
            op_selfish(&op);
            return fd;
        }
        if (accept_retry(errno)) {
            ready = true;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1; /* EMFILE...: the connection stays queued and
                          the listener ready, for the next call */
        ready = false;
    }
}

int coro_accept_many(int lfd, int *fds, int max)
{
    if (lfd < 0) {
        errno = EBADF;
        return -1;
    }
    if (fds == NULL || max < 1) {
        errno = EINVAL;
        return -1;
    }
    if (max > ACCEPT_MANY_MAX)
        max = ACCEPT_MANY_MAX;
    struct op op;
    if (op_begin(&op, lfd, "accept_many", __builtin_return_address(0)) != 0)
        return -1;
    int k = 0;
    bool ready = coro__fd_ready_for(op.f, CORO__EV_READ);
    while (k < max) {
        if (!ready) {
            if (k > 0)
                break;
            if (op_wait(&op, CORO__EV_READ) != 0)
                return -1;
        }
        int fd = coro__sys_accept(lfd, NULL, NULL);
        if (fd >= 0) {
            new_fd(coro__tls_sched, fd, op.f->kind);
            fds[k++] = fd;
            ready = true;
            continue;
        }
        if (accept_retry(errno)) {
            ready = true;
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            coro__fd_empty(op.f, CORO__EV_READ);
            ready = false;
            continue;
        }
        if (k > 0)
            break; /* EMFILE...: hand over what we have; it recurs */
        return -1;
    }
    return k;
}

/* coro_connect() recording ret as its wait site. */
static int connect_at(int fd, const struct sockaddr *sa, socklen_t len,
                      const void *ret)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (sa == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct op op;
    if (op_begin(&op, fd, "connect", ret) != 0)
        return -1;
    if (connect(fd, sa, len) == 0)
        return 0;
    /* EINTR: the connection goes on in the background, as after
     * EINPROGRESS.  EALREADY: an earlier attempt still goes on. */
    if (errno != EINPROGRESS && errno != EINTR && errno != EALREADY)
        return -1;
    if (op_wait(&op, CORO__EV_WRITE) != 0)
        return -1;
    int err = 0;
    socklen_t elen = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        return -1;
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

int coro_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return connect_at(fd, addr, len, __builtin_return_address(0));
}

int coro_shutdown(int fd, int how)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    return shutdown(fd, how);
}

/* ------------------------------------------------------------------ */
/* Making sockets                                                      */

int coro_socket(int domain, int type, int protocol)
{
    struct sched *s = coro__sched();
    if (s == NULL)
        return -1;
    int fd = coro__sys_socket(domain, type, protocol);
    if (fd >= 0)
        new_fd(s, fd, kind_of_type(type));
    return fd;
}

int coro_socketpair(int domain, int type, int protocol, int sv[2])
{
    if (sv == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct sched *s = coro__sched();
    if (s == NULL)
        return -1;
    int pair[2];
    if (coro__sys_socketpair(domain, type, protocol, pair) != 0)
        return -1;
    new_fd(s, pair[0], kind_of_type(type));
    new_fd(s, pair[1], kind_of_type(type));
    sv[0] = pair[0];
    sv[1] = pair[1];
    return 0;
}

/* Close fd after a failure, keeping the failure's errno. */
static int close_fail(int fd)
{
    int saved = errno;
    coro_close(fd);
    errno = saved;
    return -1;
}

/* Addresses coro_dial() tries in turn. */
#define DIAL_ADDRS_MAX 8

int coro_listen(const char *addr, int backlog)
{
    struct coro__addr a;
    if (coro__addr_resolve(addr, true, &a, 1) < 0)
        return -1;
    int family = a.ss.ss_family;
    int fd = coro_socket(family, a.type, 0);
    if (fd < 0)
        return -1;
    if (family != AF_UNIX && a.type == SOCK_STREAM) {
        /* Restart at once on a port whose old connections linger in
         * TIME_WAIT, as every server wants. */
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
            return close_fail(fd);
    }
    if (bind(fd, (struct sockaddr *)&a.ss, a.len) != 0)
        return close_fail(fd);
    if (a.type == SOCK_STREAM &&
        listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0)
        return close_fail(fd);
    return fd;
}

/* Whether a failure to connect to one address of a name is worth trying
 * the next address for. */
static bool dial_next(int err)
{
    return err == ECONNREFUSED || err == ENETUNREACH || err == EHOSTUNREACH ||
           err == EADDRNOTAVAIL || err == ECONNRESET || err == EAFNOSUPPORT;
}

int coro_dial(const char *addr)
{
    const void *ret = __builtin_return_address(0);
    if (coro__self() == NULL)
        return -1;
    struct coro__addr a[DIAL_ADDRS_MAX];
    int n = coro__addr_resolve(addr, false, a, DIAL_ADDRS_MAX);
    if (n < 0)
        return -1;
    int err = 0;
    for (int i = 0; i < n; i++) {
        int fd = coro_socket(a[i].ss.ss_family, a[i].type, 0);
        if (fd < 0) {
            err = errno;
            if (!dial_next(err))
                break;
            continue;
        }
        if (connect_at(fd, (struct sockaddr *)&a[i].ss, a[i].len, ret) == 0)
            return fd;
        err = errno;
        coro_close(fd);
        if (!dial_next(err))
            break; /* a deadline, an interrupt: the whole dial ends */
    }
    errno = err;
    return -1;
}
