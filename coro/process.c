/*
 * Child processes: waiting for a child without blocking the loop, and
 * commands started with pipes (a generator framework's Command, in C).
 *
 * A child is waited for through a pidfd when the kernel has them: the
 * first waiter of a pid opens one and installs it as an internal fd, its
 * readiness runs waitpid(WNOHANG), and every waiter of that pid gets the
 * status.  Without pidfds (ENOSYS, CORO_WAITPID=sigchld, or no fd left
 * for one), waiters subscribe to SIGCHLD instead, and each SIGCHLD tries
 * waitpid(WNOHANG) for every such waiter's pid.  Either way the end of a
 * child is seen when it happens, whatever its status: a waitpid() that
 * returns the pid is the end, status 0 included (Shrapnel's Linux loop
 * took status 0 for "still running" and polled every 4 s).
 */
#include "signal_internal.h"
#include "io_internal.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The process state of one scheduler (s->procs), made on first use. */
struct coro__procs {
    struct coro__waitq waiters; /* struct pid_wait, in arrival order */
    size_t on_sigchld;          /* waiters on the SIGCHLD path; SIGCHLD is
                                   subscribed exactly while > 0 */
    bool no_pidfd;              /* use the SIGCHLD path: pidfd_open gave
                                   ENOSYS, or CORO_WAITPID=sigchld */
};

/* The wait record of coro_waitpid(). */
struct pid_wait {
    struct coro__wait w; /* first member */
    pid_t pid;           /* the child */
    int pidfd;           /* pid's pidfd, shared by its waiters; -1 on the
                            SIGCHLD path */
    int status;          /* wait(2) status, from the reaper */
    int err;             /* 0, or ECHILD when reaped behind our back */
    bool done;           /* the reaper has delivered status or err */
    coro_cmd_t *cmd;     /* coro_cmd_wait()'s command, or NULL: marked
                            reaped at delivery, so that a call between the
                            reaping and this waiter's resumption finds the
                            status (and kill refuses the freed pid) */
};

static struct coro__procs *procs_get(struct sched *s)
{
    if (CORO__LIKELY(s->procs != NULL))
        return s->procs;
    struct coro__procs *pr = coro__sys_calloc(1, sizeof *pr);
    if (pr == NULL)
        return NULL;
    const char *mode = getenv("CORO_WAITPID");
    pr->no_pidfd = mode != NULL && strcmp(mode, "sigchld") == 0;
    s->procs = pr;
    return pr;
}

/* waitpid(pid, WNOHANG): pid (reaped, *status set), 0 (running), or -1
 * with errno (ECHILD). */
static pid_t try_reap(pid_t pid, int *status)
{
    pid_t r;
    do
        r = waitpid(pid, status, WNOHANG);
    while (r < 0 && errno == EINTR);
    return r;
}

static void sigchld_arrived(struct sched *s, const coro_siginfo_t *info);

/* Drop the SIGCHLD subscription once no waiter needs it. */
static void sigchld_release(struct sched *s, struct coro__procs *pr)
{
    if (pr->on_sigchld == 0)
        coro__signal_unsubscribe(s, SIGCHLD);
}

/* Stop watching a pidfd nobody needs any more. */
static void pidfd_release(struct sched *s, int pidfd)
{
    int saved = errno;
    coro__fd_drop_internal(s, pidfd);
    close(pidfd);
    errno = saved;
}

/* pid has ended (err 0, status set) or was reaped elsewhere (err ECHILD):
 * hand it to every waiter of pid and release what watched it. */
static void deliver(struct sched *s, struct coro__procs *pr, pid_t pid,
                    int err, int status)
{
    int pidfd = -1;
    for (struct coro__wait *w = pr->waiters.head, *next; w != NULL;
         w = next) {
        next = w->next;
        struct pid_wait *pw = (struct pid_wait *)w;
        if (pw->pid != pid)
            continue;
        coro__waitq_remove(&pr->waiters, w);
        if (pw->pidfd < 0)
            pr->on_sigchld--;
        pidfd = pw->pidfd;
        pw->status = status;
        pw->err = err;
        pw->done = true;
        if (pw->cmd != NULL && err == 0) {
            pw->cmd->status = status;
            pw->cmd->reaped = true;
        }
        coro__wake(w, 0);
    }
    if (pidfd >= 0)
        pidfd_release(s, pidfd);
    sigchld_release(s, pr);
}

/* Try to reap pid for its waiters; true if it has ended (delivered). */
static bool reap_for_waiters(struct sched *s, struct coro__procs *pr,
                             pid_t pid)
{
    int status = 0;
    pid_t r = try_reap(pid, &status);
    if (r == 0)
        return false;
    deliver(s, pr, pid, r < 0 ? errno : 0, status);
    return true;
}

/* A pidfd is readable: its process has ended. */
static void pidfd_ready(struct sched *s, int fd, unsigned bits, void *ud)
{
    (void)fd;
    (void)bits;
    reap_for_waiters(s, s->procs, (pid_t)(intptr_t)ud);
}

/* SIGCHLD: some child ended (several, as SIGCHLDs merge): try each pid
 * waited for on this path, starting over after each delivery since it
 * changes the queue. */
static void sigchld_arrived(struct sched *s, const coro_siginfo_t *info)
{
    (void)info;
    struct coro__procs *pr = s->procs;
    struct coro__wait *w = pr->waiters.head;
    while (w != NULL) {
        struct pid_wait *pw = (struct pid_wait *)w;
        if (pw->pidfd < 0 && reap_for_waiters(s, pr, pw->pid))
            w = pr->waiters.head;
        else
            w = w->next;
    }
}

static struct pid_wait *find_waiter(struct coro__procs *pr, pid_t pid)
{
    for (struct coro__wait *w = pr->waiters.head; w != NULL; w = w->next)
        if (((struct pid_wait *)w)->pid == pid)
            return (struct pid_wait *)w;
    return NULL;
}

static void pid_wait_cancel(struct coro__wait *w)
{
    struct sched *s = coro__tls_sched;
    struct coro__procs *pr = s->procs;
    struct pid_wait *pw = (struct pid_wait *)w;
    if (!w->queued)
        return; /* delivered: the reaper released everything */
    coro__waitq_remove(&pr->waiters, w);
    if (pw->pidfd < 0) {
        pr->on_sigchld--; /* counted per waiter */
        sigchld_release(s, pr);
    } else if (find_waiter(pr, pw->pid) == NULL) {
        pidfd_release(s, pw->pidfd); /* shared by pid's waiters */
    }
}

void coro__process_after_fork(struct sched *s)
{
    /* The children waited for are the parent's: none is ours. */
    struct coro__procs *pr = s->procs;
    struct coro__wait *w;
    while (pr != NULL && (w = pr->waiters.head) != NULL)
        deliver(s, pr, ((struct pid_wait *)w)->pid, ECHILD, 0);
}

/*
 * Start watching pid for its first waiter: *pidfd receives its pidfd, or
 * -1 for the SIGCHLD path.  Returns 0, 1 when pid ended meanwhile (*status
 * set, nothing left watching), or -1 with errno and nothing changed.
 */
static int watch(struct sched *s, struct coro__procs *pr, pid_t pid,
                 int *pidfd, int *status)
{
    if (!pr->no_pidfd) {
        int fd = coro__sys_pidfd_open(pid);
        if (fd >= 0) {
            coro__fd_fresh(s, fd);
            /* Registering reports the current state: an exit since our
             * first look is not missed. */
            if (coro__fd_set_internal(s, fd, pidfd_ready,
                                      (void *)(intptr_t)pid) == 0) {
                *pidfd = fd;
                return 0;
            }
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        if (errno == ENOSYS)
            pr->no_pidfd = true;
        /* Otherwise (no fd left, a sandbox's EPERM) the SIGCHLD path
         * still works: it needs no fd per child. */
    }
    *pidfd = -1;
    if (pr->on_sigchld == 0 &&
        coro__signal_subscribe(s, SIGCHLD, sigchld_arrived) != 0)
        return -1;
    /* A child that ended before SIGCHLD was caught had its SIGCHLD
     * ignored (the default action): look again now that it is caught. */
    pid_t r = try_reap(pid, status);
    if (r == 0)
        return 0;
    int saved = errno;
    sigchld_release(s, pr);
    errno = saved;
    return r < 0 ? -1 : 1;
}

/* coro_waitpid_at(), marking cmd (if not NULL) reaped at delivery. */
static pid_t waitpid_for(pid_t pid, int *status, const coro_site_t *site,
                         const void *addr, coro_cmd_t *cmd)
{
    struct pid_wait pw;
    coro__wait_init(&pw.w, "waitpid", site, addr);
    if (coro__wait_begin(&pw.w) != 0)
        return -1;
    struct sched *s = coro__tls_sched;
    struct coro__procs *pr = procs_get(s);
    if (pr == NULL)
        return -1;
    int st = 0;
    pid_t r = try_reap(pid, &st);
    if (r < 0)
        return -1; /* ECHILD: not our child, or reaped already */
    if (r == pid) {
        deliver(s, pr, pid, 0, st); /* others waiting for it get it too */
        goto done;
    }
    struct pid_wait *other = find_waiter(pr, pid);
    if (other != NULL) {
        pw.pidfd = other->pidfd; /* share its watch */
    } else {
        int rc = watch(s, pr, pid, &pw.pidfd, &st);
        if (rc < 0)
            return -1;
        if (rc == 1)
            goto done;
    }
    pw.pid = pid;
    pw.status = pw.err = 0;
    pw.done = false;
    pw.cmd = cmd;
    pw.w.obj = pr;
    pw.w.cancel = pid_wait_cancel;
    if (pw.pidfd < 0)
        pr->on_sigchld++;
    coro__waitq_push(&pr->waiters, &pw.w);
    coro__io_hold(s, 1);
    int rc = coro__wait_park(&pw.w);
    coro__io_hold(s, -1);
    if (rc != 0) {
        if (!pw.done)
            return -1; /* the child is still ours to wait for */
        /* Reaped, then an interrupt or deadline replaced the wake-up: the
         * status cannot be given back, so the wait succeeds (as a join
         * does) and an interrupt fails the next blocking call instead. */
        if (pw.w.cause == CORO__WOKEN_BY_INTERRUPT)
            s->current->pending_err = errno;
    }
    if (pw.err != 0) {
        errno = pw.err;
        return -1;
    }
    st = pw.status;
done:
    if (status != NULL)
        *status = st;
    return pid;
}

pid_t coro_waitpid_at(pid_t pid, int *status, const coro_site_t *site)
{
    if (pid <= 0) {
        errno = EINVAL;
        return -1;
    }
    return waitpid_for(pid, status, site, __builtin_return_address(0), NULL);
}

pid_t(coro_waitpid)(pid_t pid, int *status)
{
    return coro_waitpid_at(pid, status, NULL);
}

void coro__process_fini(struct sched *s)
{
    /* No coroutine exists, so nobody waits: only the state to free. */
    coro__sys_free(s->procs);
    s->procs = NULL;
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */

#define CMD_FLAGS                                                          \
    (CORO_CMD_STDIN | CORO_CMD_STDOUT | CORO_CMD_STDERR | CORO_CMD_MERGE)

static void close_pipes(int p[3][2])
{
    int saved = errno;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            if (p[i][j] >= 0)
                close(p[i][j]);
    errno = saved;
}

/* posix_spawn with file actions connecting the child ends of p to its
 * stdin/stdout/stderr, and a signal mask without coro's blocks.  0, or an
 * errno (posix_spawn's convention). */
static int spawn(struct sched *s, pid_t *pid, const char *const argv[],
                 int p[3][2], int flags)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0)
        return rc;
    rc = posix_spawnattr_init(&at);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    /* Every pipe fd is close-on-exec; dup2 makes the child's copies not. */
    if (p[0][0] >= 0)
        rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, p[0][0], 0);
    if (p[1][1] >= 0)
        rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, p[1][1], 1);
    if (p[2][1] >= 0)
        rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, p[2][1], 2);
    if (flags & CORO_CMD_MERGE)
        rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, p[1][1], 2);
    sigset_t mask;
    coro__signal_child_mask(s, &mask);
    rc = rc ? rc : posix_spawnattr_setsigmask(&at, &mask);
    short spawn_flags = POSIX_SPAWN_SETSIGMASK;
    if (coro__sys_sigpipe_ours()) {
        /* We ignored SIGPIPE for our own writes; the child gets the
         * program's default, or a child writing to a closed pipe would
         * never end (a shell cannot undo an ignore it started with). */
        sigset_t dfl;
        sigemptyset(&dfl);
        sigaddset(&dfl, SIGPIPE);
        rc = rc ? rc : posix_spawnattr_setsigdefault(&at, &dfl);
        spawn_flags |= POSIX_SPAWN_SETSIGDEF;
    }
    rc = rc ? rc : posix_spawnattr_setflags(&at, spawn_flags);
    if (rc == 0)
        rc = posix_spawnp(pid, argv[0], &fa, &at, (char *const *)argv,
                          environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

int coro_cmd_spawn(coro_cmd_t *cmd, const char *const argv[], int flags)
{
    if (cmd == NULL || argv == NULL || argv[0] == NULL ||
        (flags & ~CMD_FLAGS) ||
        ((flags & CORO_CMD_MERGE) &&
         (!(flags & CORO_CMD_STDOUT) || (flags & CORO_CMD_STDERR)))) {
        errno = EINVAL;
        return -1;
    }
    struct sched *s = coro__sched();
    if (s == NULL)
        return -1;
    static const int wanted[3] = {CORO_CMD_STDIN, CORO_CMD_STDOUT,
                                  CORO_CMD_STDERR};
    int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    for (int i = 0; i < 3; i++) {
        if ((flags & wanted[i]) && coro__sys_pipe_cloexec(p[i]) != 0) {
            close_pipes(p);
            return -1;
        }
    }
    pid_t pid;
    int rc = spawn(s, &pid, argv, p, flags);
    if (rc != 0) {
        close_pipes(p);
        errno = rc;
        return -1;
    }
    /* Keep our ends (stdin's write end, the others' read ends), close the
     * child's, which it has now. */
    int ours[3] = {p[0][1], p[1][0], p[2][0]};
    for (int i = 0; i < 3; i++) {
        int theirs = i == 0 ? p[0][0] : p[i][1];
        if (theirs >= 0)
            close(theirs);
        if (ours[i] >= 0) {
            fcntl(ours[i], F_SETFL, fcntl(ours[i], F_GETFL) | O_NONBLOCK);
            coro__fd_fresh(s, ours[i]);
        }
    }
    *cmd = (coro_cmd_t){.pid = pid, .in = ours[0], .out = ours[1],
                        .err = ours[2], .status = 0, .reaped = false};
    return 0;
}

int coro_cmd_wait_at(coro_cmd_t *cmd, int *status, const coro_site_t *site)
{
    if (cmd == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (!cmd->reaped) {
        if (cmd->pid <= 0) {
            errno = EINVAL;
            return -1;
        }
        int st;
        if (waitpid_for(cmd->pid, &st, site, __builtin_return_address(0),
                        cmd) < 0)
            return -1;
        cmd->status = st;
        cmd->reaped = true;
    }
    if (status != NULL)
        *status = cmd->status;
    return 0;
}

int(coro_cmd_wait)(coro_cmd_t *cmd, int *status)
{
    return coro_cmd_wait_at(cmd, status, NULL);
}

int coro_cmd_kill(coro_cmd_t *cmd, int signo)
{
    if (cmd == NULL || signo < 0) {
        errno = EINVAL;
        return -1;
    }
    if (cmd->reaped) {
        errno = ESRCH; /* its pid may be another process's by now */
        return -1;
    }
    /* A cmd that holds no child (zeroed, or its spawn failed): kill(0) or
     * kill(-1) would signal our process group or every process we may. */
    if (cmd->pid <= 0) {
        errno = EINVAL;
        return -1;
    }
    return kill(cmd->pid, signo);
}

int coro_cmd_close(coro_cmd_t *cmd)
{
    if (cmd == NULL) {
        errno = EINVAL;
        return -1;
    }
    int rc = 0, err = 0;
    int *fds[3] = {&cmd->in, &cmd->out, &cmd->err};
    for (int i = 0; i < 3; i++) {
        if (*fds[i] < 0)
            continue;
        if (coro_close(*fds[i]) != 0 && rc == 0) {
            rc = -1;
            err = errno;
        }
        *fds[i] = -1;
    }
    if (rc != 0)
        errno = err;
    return rc;
}
