/*
 * The Linux signal source (signal_internal.h): caught signals are blocked
 * in the loop's thread and read from one signalfd, whose mask follows the
 * caught set (signalfd(fd, &mask) updates it in place).
 *
 * Order matters both ways.  To catch, block first and then add to the
 * signalfd: an arrival in between stays pending and is read.  To release,
 * remove from the signalfd first and then unblock: an arrival in between
 * takes its usual action, as it would have without coro.  Only signals we
 * blocked are unblocked; one the application had blocked stays blocked.
 */
#include "signal_internal.h"
#include "io_internal.h"

#include <pthread.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

_Static_assert(NSIG <= CORO__NSIG, "more signals than a uint64_t set holds");

/* Records taken per read(2). */
#define READ_BATCH 16

struct coro__sigsrc {
    int fd;                 /* the signalfd: non-blocking, close-on-exec */
    uint64_t caught;        /* signals in its mask */
    uint64_t blocked_by_us; /* signals we added to the thread's mask */
};

static void to_sigset(uint64_t set, sigset_t *out)
{
    sigemptyset(out);
    for (int signo = 1; signo < CORO__NSIG; signo++)
        if (set & CORO__SIGBIT(signo))
            sigaddset(out, signo);
}

/* The signalfd is readable: route every signal it holds. */
static void sigsrc_ready(struct sched *s, int fd, unsigned bits, void *ud)
{
    (void)bits;
    (void)ud;
    struct signalfd_siginfo buf[READ_BATCH];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* EAGAIN: drained */
        for (size_t i = 0; i < (size_t)n / sizeof buf[0]; i++) {
            coro_siginfo_t info = {
                .signo = (int)buf[i].ssi_signo,
                .code = buf[i].ssi_code,
                .pid = (pid_t)buf[i].ssi_pid,
                .uid = (uid_t)buf[i].ssi_uid,
                .value = buf[i].ssi_signo == SIGCHLD ? buf[i].ssi_status
                                                     : buf[i].ssi_int,
            };
            coro__signal_arrived(s, &info);
        }
    }
}

void coro__sigsrc_drain(struct sched *s, struct coro__sigsrc *src)
{
    sigsrc_ready(s, src->fd, 0, NULL);
}

int coro__sigsrc_open(struct sched *s, struct coro__sigsrc **out)
{
    struct coro__sigsrc *src = coro__sys_malloc(sizeof *src);
    if (src == NULL)
        return -1;
    sigset_t none;
    sigemptyset(&none);
    src->fd = signalfd(-1, &none, SFD_NONBLOCK | SFD_CLOEXEC);
    if (src->fd >= 0) {
        src->caught = src->blocked_by_us = 0;
        coro__fd_fresh(s, src->fd); /* a number closed behind our back */
        if (coro__fd_set_internal(s, src->fd, sigsrc_ready, NULL) == 0) {
            *out = src;
            return 0;
        }
    }
    int saved = errno;
    if (src->fd >= 0)
        close(src->fd);
    coro__sys_free(src);
    errno = saved;
    return -1;
}

int coro__sigsrc_set(struct coro__sigsrc *src, uint64_t set)
{
    uint64_t add = set & ~src->caught, drop = src->caught & ~set;
    sigset_t mask, cur;
    if (add != 0) {
        pthread_sigmask(SIG_BLOCK, NULL, &cur);
        uint64_t newly = 0;
        for (int signo = 1; signo < CORO__NSIG; signo++)
            if ((add & CORO__SIGBIT(signo)) && !sigismember(&cur, signo))
                newly |= CORO__SIGBIT(signo);
        to_sigset(newly, &mask);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        src->blocked_by_us |= newly;
    }
    to_sigset(set, &mask);
    if (signalfd(src->fd, &mask, 0) < 0) {
        /* Undo our new blocks: nothing changed. */
        int saved = errno;
        uint64_t undo = add & src->blocked_by_us;
        to_sigset(undo, &mask);
        pthread_sigmask(SIG_UNBLOCK, &mask, NULL);
        src->blocked_by_us &= ~undo;
        errno = saved;
        return -1;
    }
    src->caught = set;
    uint64_t release = drop & src->blocked_by_us;
    if (release != 0) {
        to_sigset(release, &mask);
        pthread_sigmask(SIG_UNBLOCK, &mask, NULL);
        src->blocked_by_us &= ~release;
    }
    return 0;
}

int coro__sigsrc_after_fork(struct sched *s, struct coro__sigsrc *src)
{
    sigset_t mask;
    to_sigset(src->caught, &mask);
    int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -1;
    coro__fd_fresh(s, fd);
    if (coro__fd_set_internal(s, fd, sigsrc_ready, NULL) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    coro__fd_drop_internal(s, src->fd);
    close(src->fd); /* our copy only: the parent's mask is untouched */
    src->fd = fd;
    return 0;
}

void coro__sigsrc_close(struct sched *s, struct coro__sigsrc *src)
{
    int saved = errno;
    coro__sigsrc_set(src, 0); /* shrinking: cannot fail */
    coro__fd_drop_internal(s, src->fd);
    close(src->fd);
    coro__sys_free(src);
    errno = saved;
}

bool coro__sigsrc_blocks(void)
{
    return true;
}

bool coro__sigsrc_usable(int signo)
{
    /* glibc keeps the signals between the classic ones and SIGRTMIN for
     * its threads (cancellation, setxid): never block those. */
    return signo < 32 || signo >= SIGRTMIN;
}

void coro__sigsrc_child_mask(const struct coro__sigsrc *src, sigset_t *out)
{
    pthread_sigmask(SIG_BLOCK, NULL, out);
    for (int signo = 1; signo < CORO__NSIG; signo++)
        if (src->blocked_by_us & CORO__SIGBIT(signo))
            sigdelset(out, signo);
}
