/*
 * The portable signal source (signal_internal.h), for systems without
 * signalfd (the BSDs, macOS): a handler installed with sigaction() writes
 * each caught signal into a pipe, whose read end the poller watches.
 * Built where <sys/signalfd.h> is missing (or with
 * -DCORO_SIGNAL_SOURCE=pipe); our Linux CI builds and runs it only that
 * way, so it is kept small.
 *
 * Simplifications, each for a reason: the pipe and the saved
 * dispositions are process-wide (handlers are), so one scheduler per
 * process may catch signals; a fork() child makes a pipe of its own when
 * its loop first polls (a signal the child gets before that goes into the
 * parent's pipe); a signal arriving while the pipe is full (64 KiB
 * of unread records) is dropped, as the kernel merges standard signals
 * anyway.  Nothing is blocked, so children inherit no mask from us, and
 * exec gives caught signals their default action back.
 */
#include "signal_internal.h"
#include "io_internal.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

_Static_assert(NSIG <= CORO__NSIG, "more signals than a uint64_t set holds");

/* One record per arrival; smaller than PIPE_BUF, so written atomically. */
struct record {
    int signo, code, value;
    pid_t pid;
    uid_t uid;
};

struct coro__sigsrc {
    int rfd, wfd;                       /* the pipe; both non-blocking */
    uint64_t caught;                    /* signals with our handler */
    struct sigaction old[CORO__NSIG];   /* their dispositions before */
};

/* The write end, for the handler; -1 while no source exists. */
static volatile sig_atomic_t pipe_wfd = -1;

static void on_signal(int signo, siginfo_t *si, void *uc)
{
    (void)uc;
    int saved = errno;
    struct record r = {.signo = signo};
    if (si != NULL) {
        r.code = si->si_code;
        r.pid = si->si_pid;
        r.uid = si->si_uid;
        r.value = signo == SIGCHLD ? si->si_status : si->si_value.sival_int;
    }
    int fd = pipe_wfd;
    if (fd >= 0) {
        ssize_t n = write(fd, &r, sizeof r);
        (void)n; /* full: dropped, see above */
    }
    errno = saved;
}

static void sigsrc_ready(struct sched *s, int fd, unsigned bits, void *ud)
{
    (void)bits;
    (void)ud;
    struct record r;
    for (;;) {
        ssize_t n = read(fd, &r, sizeof r);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof r)
            return; /* EAGAIN: drained (records are never split) */
        coro_siginfo_t info = {.signo = r.signo, .code = r.code,
                               .pid = r.pid, .uid = r.uid, .value = r.value};
        coro__signal_arrived(s, &info);
    }
}

void coro__sigsrc_drain(struct sched *s, struct coro__sigsrc *src)
{
    sigsrc_ready(s, src->rfd, 0, NULL);
}

int coro__sigsrc_open(struct sched *s, struct coro__sigsrc **out)
{
    if (pipe_wfd >= 0) {
        errno = EBUSY; /* another scheduler catches signals already */
        return -1;
    }
    struct coro__sigsrc *src = coro__sys_calloc(1, sizeof *src);
    if (src == NULL)
        return -1;
    int p[2];
    if (coro__sys_pipe_cloexec(p) == 0) {
        src->rfd = p[0];
        src->wfd = p[1];
        fcntl(src->rfd, F_SETFL, fcntl(src->rfd, F_GETFL) | O_NONBLOCK);
        fcntl(src->wfd, F_SETFL, fcntl(src->wfd, F_GETFL) | O_NONBLOCK);
        coro__fd_fresh(s, src->rfd);
        if (coro__fd_set_internal(s, src->rfd, sigsrc_ready, NULL) == 0) {
            pipe_wfd = src->wfd;
            *out = src;
            return 0;
        }
        int saved = errno;
        close(src->rfd);
        close(src->wfd);
        errno = saved;
    }
    int saved = errno;
    coro__sys_free(src);
    errno = saved;
    return -1;
}

int coro__sigsrc_set(struct coro__sigsrc *src, uint64_t set)
{
    for (int signo = 1; signo < CORO__NSIG; signo++) {
        uint64_t bit = CORO__SIGBIT(signo);
        if ((set & bit) && !(src->caught & bit)) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_sigaction = on_signal;
            sa.sa_flags = SA_SIGINFO | SA_RESTART |
                          (signo == SIGCHLD ? SA_NOCLDSTOP : 0);
            sigfillset(&sa.sa_mask);
            if (sigaction(signo, &sa, &src->old[signo]) != 0)
                return -1; /* EINVAL only: valid() excludes it */
            src->caught |= bit;
        } else if (!(set & bit) && (src->caught & bit)) {
            sigaction(signo, &src->old[signo], NULL);
            src->caught &= ~bit;
        }
    }
    return 0;
}

int coro__sigsrc_after_fork(struct sched *s, struct coro__sigsrc *src)
{
    int p[2];
    if (coro__sys_pipe_cloexec(p) != 0)
        return -1;
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK);
    coro__fd_fresh(s, p[0]);
    if (coro__fd_set_internal(s, p[0], sigsrc_ready, NULL) != 0) {
        int saved = errno;
        close(p[0]);
        close(p[1]);
        errno = saved;
        return -1;
    }
    pipe_wfd = p[1]; /* our handler writes to our own pipe from now on */
    coro__fd_drop_internal(s, src->rfd);
    close(src->rfd);
    close(src->wfd);
    src->rfd = p[0];
    src->wfd = p[1];
    return 0;
}

void coro__sigsrc_close(struct sched *s, struct coro__sigsrc *src)
{
    int saved = errno;
    coro__sigsrc_set(src, 0);
    pipe_wfd = -1;
    coro__fd_drop_internal(s, src->rfd);
    close(src->rfd);
    close(src->wfd);
    coro__sys_free(src);
    errno = saved;
}

bool coro__sigsrc_blocks(void)
{
    return false;
}

bool coro__sigsrc_usable(int signo)
{
    /* The C library refuses the signals it keeps for itself (glibc's
     * 32 and 33 when this source is built on Linux). */
    struct sigaction cur;
    return sigaction(signo, NULL, &cur) == 0;
}

void coro__sigsrc_child_mask(const struct coro__sigsrc *src, sigset_t *out)
{
    (void)src;
    sigprocmask(SIG_BLOCK, NULL, out);
}
