/*
 * Child processes: coro_waitpid() and commands with pipes, over real
 * processes.  Every waitpid test runs twice: on the pidfd path (suite
 * waitpid) and on the SIGCHLD path (suite waitpid_sigchld, chosen with
 * CORO_WAITPID=sigchld).  Exit status 0, non-zero and death by signal
 * must be reported at once: the bounds are generous (seconds) but far
 * below Shrapnel's 4 s polling.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void sigchld_setup(void)
{
    setenv("CORO_WAITPID", "sigchld", 1);
    sched_setup();
}

TestSuite(waitpid, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);
TestSuite(waitpid_sigchld, .init = sigchld_setup,
          .fini = sched_expect_empty, .timeout = 30);
TestSuite(cmd, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);

/* A test run on both waitpid paths. */
#define BOTH_PATHS(name)                                                   \
    static void name##_body(void);                                         \
    Test(waitpid, name) { name##_body(); }                                 \
    Test(waitpid_sigchld, name) { name##_body(); }                         \
    static void name##_body(void)

/* Start sh -c script with the given pipes; fails the test on error. */
static void sh(coro_cmd_t *cmd, const char *script, int flags)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    cr_assert_eq(coro_cmd_spawn(cmd, argv, flags), 0, "spawn: %s",
                 strerror(errno));
}

/* Read fd (non-blocking) to EOF into buf, waiting with the runtime. */
static ssize_t read_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0)
            break;
        if (errno != EAGAIN || coro_wait_readable(fd) != 0)
            return -1;
    }
    buf[got] = '\0';
    return (ssize_t)got;
}

/* Waits for a child and times the wait. */
struct reaper {
    pid_t pid;
    pid_t rc;
    int status, err;
    double sec; /* how long the wait took */
};

static int reaper(void *arg)
{
    struct reaper *r = arg;
    double t0 = mono_sec();
    r->rc = coro_waitpid(r->pid, &r->status);
    r->err = errno;
    r->sec = mono_sec() - t0;
    return 0;
}

/* Spawn script, wait for it in a coroutine, return its status. */
static int status_of(const char *script, double *sec)
{
    coro_cmd_t cmd;
    sh(&cmd, script, 0);
    struct reaper r = {.pid = cmd.pid};
    cr_assert_not_null(coro_spawn(reaper, &r, "reaper"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(r.rc, cmd.pid, "waitpid: %s", strerror(r.err));
    if (sec != NULL)
        *sec = r.sec;
    return r.status;
}

BOTH_PATHS(exit_status_0_is_reported_at_once)
{
    double sec;
    int st = status_of("exit 0", &sec);
    cr_assert(WIFEXITED(st));
    cr_assert_eq(WEXITSTATUS(st), 0);
    cr_assert_lt(sec, 2.0, "took %.3f s", sec);
}

BOTH_PATHS(a_nonzero_exit_status_is_reported_at_once)
{
    double sec;
    int st = status_of("sleep 0.05; exit 3", &sec);
    cr_assert(WIFEXITED(st));
    cr_assert_eq(WEXITSTATUS(st), 3);
    cr_assert_lt(sec, 2.0, "took %.3f s", sec);
}

BOTH_PATHS(death_by_signal_is_reported_at_once)
{
    double sec;
    int st = status_of("sleep 0.05; kill -9 $$", &sec);
    cr_assert(WIFSIGNALED(st));
    cr_assert_eq(WTERMSIG(st), SIGKILL);
    cr_assert_lt(sec, 2.0, "took %.3f s", sec);
}

BOTH_PATHS(a_child_gets_no_blocked_signals_from_the_loop)
{
    /* The loop blocks SIGTERM while it runs; a child started from it can
     * still be killed by SIGTERM. */
    int st = status_of("kill -TERM $$; sleep 5", NULL);
    cr_assert(WIFSIGNALED(st), "status %#x", st);
    cr_assert_eq(WTERMSIG(st), SIGTERM);
}

static int wait_non_child(void *arg)
{
    (void)arg;
    int st = 12345;
    if (coro_waitpid(getppid(), &st) != -1 || errno != ECHILD)
        return -1;
    if (coro_waitpid(1, &st) != -1 || errno != ECHILD)
        return -2;
    if (st != 12345)
        return -3; /* a failed call wrote nothing */
    return 0;
}

BOTH_PATHS(waiting_for_a_process_that_is_not_a_child_fails_with_echild)
{
    cr_assert_eq(run_in_coro(wait_non_child, NULL), 0);
}

static int wait_twice(void *arg)
{
    pid_t pid = *(pid_t *)arg;
    int st;
    if (coro_waitpid(pid, &st) != pid || !WIFEXITED(st))
        return -1;
    if (coro_waitpid(pid, &st) != -1 || errno != ECHILD)
        return -2;
    return 0;
}

BOTH_PATHS(a_child_is_reaped_once_and_then_unknown)
{
    coro_cmd_t cmd;
    sh(&cmd, "exit 0", 0);
    cr_assert_eq(run_in_coro(wait_twice, &cmd.pid), 0);
}

BOTH_PATHS(every_waiter_of_one_child_gets_its_status)
{
    coro_cmd_t cmd;
    sh(&cmd, "sleep 0.05; exit 7", 0);
    struct reaper r[3] = {{.pid = cmd.pid}, {.pid = cmd.pid},
                          {.pid = cmd.pid}};
    for (int i = 0; i < 3; i++)
        cr_assert_not_null(coro_spawn(reaper, &r[i], "reaper"));
    cr_assert_eq(coro_event_loop(), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(r[i].rc, cmd.pid, "%d: %s", i, strerror(r[i].err));
        cr_assert_eq(WEXITSTATUS(r[i].status), 7);
    }
}

BOTH_PATHS(children_ending_together_are_each_reported)
{
    enum { N = 5 };
    coro_cmd_t cmd[N];
    struct reaper r[N];
    for (int i = 0; i < N; i++) {
        char script[32];
        snprintf(script, sizeof script, "exit %d", 10 + i);
        sh(&cmd[i], script, 0);
        r[i] = (struct reaper){.pid = cmd[i].pid};
        cr_assert_not_null(coro_spawn(reaper, &r[i], "reaper"));
    }
    cr_assert_eq(coro_event_loop(), 0);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(r[i].rc, cmd[i].pid);
        cr_assert_eq(WEXITSTATUS(r[i].status), 10 + i);
    }
}

static int wait_briefly(void *arg)
{
    struct reaper *r = arg;
    return coro_with_timeout(0.05, reaper, r);
}

static int wait_timeout_then_kill(void *arg)
{
    coro_cmd_t *cmd = arg;
    struct reaper r = {.pid = cmd->pid};
    if (wait_briefly(&r) != -1 || r.rc != -1 || r.err != ETIMEDOUT)
        return -1;
    /* Still ours: kill it and wait again. */
    if (coro_cmd_kill(cmd, SIGKILL) != 0)
        return -2;
    int st;
    if (coro_cmd_wait(cmd, &st) != 0 || !WIFSIGNALED(st))
        return -3;
    if (coro_cmd_kill(cmd, SIGKILL) != -1 || errno != ESRCH)
        return -4; /* reaped: its pid is not ours any more */
    return 0;
}

BOTH_PATHS(a_deadline_ends_the_wait_and_leaves_the_child_to_wait_for_again)
{
    coro_cmd_t cmd;
    sh(&cmd, "exec sleep 10", 0);
    cr_assert_eq(run_in_coro(wait_timeout_then_kill, &cmd), 0);
}

static int interrupter(void *arg)
{
    return coro_interrupt(arg, ECANCELED);
}

BOTH_PATHS(an_interrupt_ends_the_wait_with_its_errno)
{
    coro_cmd_t cmd;
    sh(&cmd, "exec sleep 10", 0);
    struct reaper r = {.pid = cmd.pid};
    coro_t *co = coro_spawn(reaper, &r, "reaper");
    cr_assert_not_null(co);
    cr_assert_not_null(coro_spawn(interrupter, co, "interrupter"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(r.rc, -1);
    cr_assert_eq(r.err, ECANCELED);
    cr_assert_eq(kill(cmd.pid, SIGKILL), 0);
    int st;
    cr_assert_eq(waitpid(cmd.pid, &st, 0), cmd.pid);
}

/* Looks for a pidfd among this process's fds while a wait is parked. */
static int count_pidfds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[300], link[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, link, sizeof link - 1);
        if (len > 0) {
            link[len] = '\0';
            n += strstr(link, "pidfd") != NULL;
        }
    }
    closedir(d);
    return n;
}

static int look_for_pidfds(void *arg)
{
    coro_cmd_t *cmd = arg;
    int n = count_pidfds();
    coro_cmd_kill(cmd, SIGKILL);
    return n;
}

static int pidfds_while_waiting(void)
{
    coro_cmd_t cmd;
    sh(&cmd, "exec sleep 10", 0);
    struct reaper r = {.pid = cmd.pid};
    cr_assert_not_null(coro_spawn(reaper, &r, "reaper"));
    coro_t *look = coro_spawn_opts(look_for_pidfds, &cmd,
                                   &(coro_opts_t){.joinable = true});
    cr_assert_not_null(look);
    cr_assert_eq(coro_event_loop(), 0);
    int n;
    cr_assert_eq(coro_join(look, &n, NULL), 0);
    cr_assert(WIFSIGNALED(r.status));
    cr_assert_eq(count_pidfds(), 0, "released after the wait");
    return n;
}

/* Whether SIGCHLD is blocked in this thread (the SIGCHLD path's watch). */
static bool sigchld_blocked(void)
{
    sigset_t cur;
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    return sigismember(&cur, SIGCHLD) == 1;
}

static int wait_for_pid(void *arg)
{
    return coro_waitpid(*(pid_t *)arg, NULL) > 0 ? 0 : -1;
}

struct quitter {
    pid_t pid;
    int rc, err;
};

static int give_up_on(void *arg)
{
    struct quitter *q = arg;
    q->rc = coro_with_timeout(0.1, wait_for_pid, &q->pid);
    q->err = errno;
    return 0;
}

BOTH_PATHS(a_waiter_that_gives_up_leaves_sigchld_as_it_was)
{
    cr_assert_not(sigchld_blocked());
    coro_cmd_t cmd;
    sh(&cmd, "sleep 1; exit 3", 0);
    struct reaper r = {.pid = cmd.pid};
    struct quitter q = {.pid = cmd.pid};
    cr_assert_not_null(coro_spawn(reaper, &r, "reaper"));
    cr_assert_not_null(coro_spawn(give_up_on, &q, "quitter"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(q.rc, -1);
    cr_assert_eq(q.err, ETIMEDOUT);
    cr_assert_eq(r.rc, cmd.pid);
    cr_assert_eq(WEXITSTATUS(r.status), 3);
    cr_assert_not(sigchld_blocked(), "nobody waits: SIGCHLD is released");
}

/* Coroutines waiting for children in a fork() child: those children are
 * the parent's, so the waits fail with ECHILD at once. */
static int fork_with_a_waiter(void *arg)
{
    pid_t *pids = arg; /* [0] the parent's child, [1] the fork child */
    coro_yield(); /* the reaper parks first */
    pids[1] = fork();
    if (pids[1] == 0)
        return 0; /* the fork child: its loop runs the inherited reaper */
    return 0;
}

BOTH_PATHS(a_fork_childs_copy_of_a_wait_fails_with_echild_at_once)
{
    SKIP_UNDER_TSAN("coroutines run in a forked child");
    coro_cmd_t cmd;
    sh(&cmd, "sleep 2", 0);
    pid_t pids[2] = {cmd.pid, -1};
    struct reaper r = {.pid = cmd.pid};
    cr_assert_not_null(coro_spawn(reaper, &r, "reaper"));
    cr_assert_not_null(coro_spawn(fork_with_a_waiter, pids, "forker"));
    coro_event_loop();
    if (pids[1] == 0) /* the fork child: report how its reaper ended */
        _exit(r.rc == -1 && r.err == ECHILD && r.sec < 1.5 ? 0 : 1);
    cr_assert_eq(r.rc, cmd.pid, "the parent's own wait got the child");
    /* The fork child ended long ago if it works; bounded if it hangs. */
    int st = 0;
    pid_t got = 0;
    for (double end = mono_sec() + 10; got == 0 && mono_sec() < end;)
        if ((got = waitpid(pids[1], &st, WNOHANG)) == 0)
            usleep(10000);
    if (got == 0) {
        kill(pids[1], SIGKILL);
        waitpid(pids[1], &st, 0);
    }
    cr_assert(got == pids[1] && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "the fork child's wait did not fail with ECHILD at once");
}

Test(waitpid, waits_through_a_pidfd_where_the_kernel_has_them)
{
    cr_assert_eq(pidfds_while_waiting(), 1);
}

Test(waitpid_sigchld, waits_without_a_pidfd_when_told_to)
{
    cr_assert_eq(pidfds_while_waiting(), 0);
}

Test(waitpid, bad_pids_fail_with_einval_and_outside_a_coroutine_eperm)
{
    cr_assert_eq(coro_waitpid(1, NULL), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(run_in_coro(wait_non_child, NULL), 0);
    struct reaper r = {.pid = 0};
    cr_assert_not_null(coro_spawn(reaper, &r, "reaper"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(r.rc, -1);
    cr_assert_eq(r.err, EINVAL);
    r = (struct reaper){.pid = -1};
    cr_assert_not_null(coro_spawn(reaper, &r, "reaper"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(r.err, EINVAL);
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */

struct run {
    coro_cmd_t cmd;
    char out[256];
    ssize_t got;
    int status;
    long ticks_seen; /* ticks of the ticker while the run waited */
    bool done;
};

/* Ticks (sleeps 1 ms at a time) until the run is done; at the third tick
 * it feeds the command's stdin, so the reader cannot finish unless the
 * ticker ran while it waited. */
struct ticker {
    struct run *run;
    long ticks;
};

static int ticker(void *arg)
{
    struct ticker *t = arg;
    while (!t->run->done) {
        if (coro_sleep(0.001) != 0)
            return -1;
        if (++t->ticks == 3) {
            const char line[] = "hello\n";
            if (write(t->run->cmd.in, line, sizeof line - 1) !=
                sizeof line - 1)
                return -2;
            coro_close(t->run->cmd.in);
            t->run->cmd.in = -1;
        }
    }
    return 0;
}

static int read_then_wait(void *arg)
{
    struct run *r = arg;
    r->got = read_all(r->cmd.out, r->out, sizeof r->out);
    if (r->got < 0)
        return -1;
    if (coro_cmd_wait(&r->cmd, &r->status) != 0)
        return -2;
    r->done = true;
    return coro_cmd_close(&r->cmd);
}

Test(cmd, reads_a_commands_output_while_another_coroutine_runs)
{
    struct run r = {0};
    sh(&r.cmd, "read line; echo \"got $line\"; exit 3",
       CORO_CMD_STDIN | CORO_CMD_STDOUT);
    cr_assert_geq(r.cmd.in, 0);
    cr_assert_geq(r.cmd.out, 0);
    cr_assert_eq(r.cmd.err, -1);
    struct ticker t = {.run = &r};
    cr_assert_not_null(coro_spawn(read_then_wait, &r, "reader"));
    cr_assert_not_null(coro_spawn(ticker, &t, "ticker"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_str_eq(r.out, "got hello\n");
    cr_assert(WIFEXITED(r.status));
    cr_assert_eq(WEXITSTATUS(r.status), 3);
    cr_assert_geq(t.ticks, 3);
    cr_assert_eq(r.cmd.out, -1, "closed");
}

static int echo_hello(void *arg)
{
    struct run *r = arg;
    r->got = read_all(r->cmd.out, r->out, sizeof r->out);
    int st;
    if (coro_cmd_wait(&r->cmd, &r->status) != 0 ||
        coro_cmd_wait(&r->cmd, &st) != 0 || st != r->status)
        return -1; /* a second wait gives the kept status */
    return coro_cmd_close(&r->cmd);
}

Test(cmd, echo_hello_exit_3_gives_hello_and_status_3)
{
    struct run r = {0};
    sh(&r.cmd, "echo hello; exit 3", CORO_CMD_STDOUT);
    cr_assert_eq(run_in_coro(echo_hello, &r), 0);
    cr_assert_str_eq(r.out, "hello\n");
    cr_assert_eq(WEXITSTATUS(r.status), 3);
}

/* A generator framework's CommandTest: /bin/echo cat, stdout "cat\n", stderr "". */
struct seed {
    coro_cmd_t cmd;
    char out[64], err[64];
    int status;
};

static int seed_run(void *arg)
{
    struct seed *s = arg;
    if (read_all(s->cmd.out, s->out, sizeof s->out) < 0 ||
        read_all(s->cmd.err, s->err, sizeof s->err) < 0)
        return -1;
    if (coro_cmd_wait(&s->cmd, &s->status) != 0)
        return -2;
    return coro_cmd_close(&s->cmd);
}

Test(cmd, the_seed_command_echo_cat_gives_cat_and_no_stderr)
{
    struct seed s;
    const char *argv[] = {"/bin/echo", "cat", NULL};
    cr_assert_eq(coro_cmd_spawn(&s.cmd, argv,
                                CORO_CMD_STDOUT | CORO_CMD_STDERR), 0);
    cr_assert_eq(run_in_coro(seed_run, &s), 0);
    cr_assert_str_eq(s.out, "cat\n");
    cr_assert_str_eq(s.err, "");
    cr_assert_eq(s.status, 0);
}

Test(cmd, merged_stderr_comes_through_the_stdout_pipe)
{
    struct run r = {0};
    sh(&r.cmd, "echo out; echo err >&2", CORO_CMD_STDOUT | CORO_CMD_MERGE);
    cr_assert_eq(r.cmd.err, -1);
    cr_assert_eq(run_in_coro(echo_hello, &r), 0);
    cr_assert_str_eq(r.out, "out\nerr\n");
}

/* Open fds of this process. */
static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

Test(cmd, bad_input_fails_with_einval_and_leaves_nothing)
{
    coro_cmd_t cmd = {.pid = 99};
    const char *empty[] = {NULL};
    const char *argv[] = {"true", NULL};
    int fds = count_fds();
    cr_assert_eq(coro_cmd_spawn(&cmd, NULL, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_cmd_spawn(&cmd, empty, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_cmd_spawn(NULL, argv, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_cmd_spawn(&cmd, argv, 0x100), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_cmd_spawn(&cmd, argv, CORO_CMD_MERGE), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_cmd_spawn(&cmd, argv,
                                CORO_CMD_STDOUT | CORO_CMD_STDERR |
                                    CORO_CMD_MERGE), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(cmd.pid, 99, "a failed call wrote nothing");
    cr_assert_eq(coro_cmd_wait(NULL, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_cmd_kill(NULL, SIGTERM), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_cmd_close(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(count_fds(), fds);
}

Test(cmd, a_program_that_does_not_exist_fails_with_enoent_and_leaves_nothing)
{
    coro_cmd_t cmd = {.pid = 99};
    const char *argv[] = {"/nonexistent/coro-test-program", NULL};
    const char *bare[] = {"coro-test-no-such-program", NULL};
    int fds = count_fds();
    cr_assert_eq(coro_cmd_spawn(&cmd, argv, CORO_CMD_STDIN |
                                CORO_CMD_STDOUT | CORO_CMD_STDERR), -1);
    cr_assert_eq(errno, ENOENT);
    cr_assert_eq(coro_cmd_spawn(&cmd, bare, CORO_CMD_STDOUT), -1);
    cr_assert_eq(errno, ENOENT, "searched in PATH: %s", strerror(errno));
    cr_assert_eq(cmd.pid, 99);
    cr_assert_eq(count_fds(), fds, "no pipe left open");
    int st;
    cr_assert_eq(waitpid(-1, &st, WNOHANG), -1, "no child left behind");
    cr_assert_eq(errno, ECHILD);
}

/* kill(0) and kill(-1) would signal our process group or every process
 * we may signal: a cmd with no child in it must be refused.  Signal 0
 * keeps a failure of this test harmless. */
/* Between the reaping of a command's child (delivered to a waiter) and
 * that waiter's resumption, another coroutine asks for the status. */
struct late_ask {
    coro_cmd_t cmd;
    coro_t *first;        /* waits in coro_cmd_wait() */
    int rc, err, status;  /* the late caller's */
    int kill_rc, kill_err;
};

static int first_waiter(void *arg)
{
    struct late_ask *a = arg;
    return coro_cmd_wait(&a->cmd, NULL);
}

static int late_asker(void *arg)
{
    struct late_ask *a = arg;
    /* Yielding keeps us ahead of the first waiter in the run queue: we
     * run right after the loop has delivered the child's end to it. */
    while (coro_state(a->first) != CORO_RUNNABLE)
        if (coro_yield() != 0)
            return -1;
    a->rc = coro_cmd_wait(&a->cmd, &a->status);
    a->err = errno;
    a->kill_rc = coro_cmd_kill(&a->cmd, SIGTERM);
    a->kill_err = errno;
    return 0;
}

Test(cmd, a_wait_right_after_the_reaping_gets_the_kept_status)
{
    static struct late_ask a;
    sh(&a.cmd, "sleep 0.2; exit 7", 0); /* exits after the first parks */
    a.first = coro_spawn_opts(first_waiter, &a,
                              &(coro_opts_t){.joinable = true});
    cr_assert_not_null(a.first);
    cr_assert_not_null(coro_spawn(late_asker, &a, "late"));
    cr_assert_eq(coro_event_loop(), 0);
    int st;
    cr_assert_eq(coro_join(a.first, &st, NULL), 0);
    cr_assert_eq(st, 0);
    cr_assert_eq(a.rc, 0, "late wait: %s", strerror(a.err));
    cr_assert(WIFEXITED(a.status) && WEXITSTATUS(a.status) == 7);
    cr_assert_eq(a.kill_rc, -1, "no signal to a reaped pid");
    cr_assert_eq(a.kill_err, ESRCH);
}

/* coro ignores SIGPIPE for its own writes; a command must not inherit
 * that, or one writing into a pipe nobody reads would never end. */
struct sigpipe_run {
    coro_cmd_t cmd;
    int rc, status;
};

static int wait_cmd(void *arg)
{
    struct sigpipe_run *r = arg;
    return coro_cmd_wait(&r->cmd, &r->status);
}

static int close_on_a_writer(void *arg)
{
    struct sigpipe_run *r = arg;
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(coro_write(p[1], "x", 1), 1); /* coro ignores SIGPIPE */
    cr_assert_eq(coro_close(p[0]), 0);
    cr_assert_eq(coro_close(p[1]), 0);
    sh(&r->cmd, "while :; do echo x; done", CORO_CMD_STDOUT);
    char buf[16];
    cr_assert_gt(coro_read(r->cmd.out, buf, sizeof buf), 0);
    cr_assert_eq(coro_close(r->cmd.out), 0);
    r->cmd.out = -1;
    r->rc = coro_with_timeout(10, wait_cmd, r);
    if (r->rc != 0) { /* still writing: end it, then fail */
        coro_cmd_kill(&r->cmd, SIGKILL);
        coro_cmd_wait(&r->cmd, NULL);
    }
    return 0;
}

Test(cmd, a_command_writing_to_a_pipe_nobody_reads_dies_of_sigpipe)
{
    static struct sigpipe_run r;
    cr_assert_eq(run_in_coro(close_on_a_writer, &r), 0);
    cr_assert_eq(r.rc, 0, "the command outlived its reader by 10 s");
    cr_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGPIPE,
              "status %#x", r.status);
    cr_assert_eq(coro_cmd_close(&r.cmd), 0);
}

Test(cmd, kill_refuses_a_cmd_that_holds_no_child)
{
    coro_cmd_t zeroed = {0};
    cr_assert_eq(coro_cmd_kill(&zeroed, 0), -1);
    cr_assert_eq(errno, EINVAL);
    coro_cmd_t minus = {.pid = -1};
    cr_assert_eq(coro_cmd_kill(&minus, 0), -1);
    cr_assert_eq(errno, EINVAL);
    coro_cmd_t failed = {0};
    const char *argv[] = {"/nonexistent/coro-test-program", NULL};
    cr_assert_eq(coro_cmd_spawn(&failed, argv, 0), -1);
    cr_assert_eq(coro_cmd_kill(&failed, 0), -1, "the failed spawn's cmd");
    cr_assert_eq(errno, EINVAL);
}

static int close_while_reading(void *arg)
{
    coro_cmd_t *cmd = arg;
    char buf[8];
    int rc = (int)read_all(cmd->out, buf, sizeof buf);
    return rc == -1 && errno == EBADF ? 0 : -1;
}

static int closer(void *arg)
{
    coro_cmd_t *cmd = arg;
    if (coro_cmd_close(cmd) != 0 || cmd->out != -1)
        return -1;
    if (coro_cmd_kill(cmd, SIGKILL) != 0)
        return -2;
    int st;
    return coro_cmd_wait(cmd, &st) == 0 && WIFSIGNALED(st) ? 0 : -3;
}

Test(cmd, closing_wakes_a_reader_with_ebadf_and_kill_ends_the_child)
{
    coro_cmd_t cmd;
    sh(&cmd, "exec sleep 10", CORO_CMD_STDOUT);
    coro_t *r = coro_spawn_opts(close_while_reading, &cmd,
                                &(coro_opts_t){.joinable = true});
    coro_t *c = coro_spawn_opts(closer, &cmd,
                                &(coro_opts_t){.joinable = true});
    cr_assert_eq(coro_event_loop(), 0);
    int st;
    cr_assert_eq(coro_join(r, &st, NULL), 0);
    cr_assert_eq(st, 0);
    cr_assert_eq(coro_join(c, &st, NULL), 0);
    cr_assert_eq(st, 0);
}
