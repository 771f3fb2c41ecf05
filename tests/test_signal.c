/*
 * Signals: real signals sent with kill() (process-directed) and raise(),
 * waiters, pending arrivals, several signals at once, deadlines and
 * interrupts, bad input, the default SIGINT/SIGTERM shutdown of the loop
 * (from a coroutine and from a child process) and the signal mask the
 * loop leaves behind.  Criterion runs each test in its own process, and
 * its own thread blocks every signal, so process-directed signals reach
 * the loop's thread.
 */
#include "helpers.h"
#include "signal_internal.h" /* coro__sigsrc_blocks: which source */

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(signal_wait, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);
TestSuite(signal_watch, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);
TestSuite(default_signals, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);

/* Whether the signal source blocks what it catches (signalfd does; the
 * self-pipe source installs a handler instead): mask checks apply only
 * then. */
static bool source_blocks(void)
{
    return coro__sigsrc_blocks();
}

static bool blocked(int signo)
{
    sigset_t m;
    pthread_sigmask(SIG_BLOCK, NULL, &m);
    return sigismember(&m, signo) == 1;
}

/* Waits for one signal and records what came. */
struct waiter {
    int signo;
    int rc, err;
    coro_siginfo_t info;
    bool waiting, done;
};

static int waiter(void *arg)
{
    struct waiter *w = arg;
    w->waiting = true;
    w->rc = coro_wait_signal(w->signo, &w->info);
    w->err = errno;
    w->waiting = false;
    w->done = true;
    return 0;
}

/* Sends signo to the whole process with kill() once scheduled. */
static int killer(void *arg)
{
    return kill(getpid(), *(int *)arg);
}

Test(signal_wait, a_waiter_gets_a_signal_sent_to_the_process_with_kill)
{
    struct waiter w = {.signo = SIGUSR1};
    int sig = SIGUSR1;
    cr_assert_not_null(coro_spawn(waiter, &w, "waiter"));
    cr_assert_not_null(coro_spawn(killer, &sig, "killer"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(w.rc, SIGUSR1, "rc %d errno %d", w.rc, w.err);
    cr_assert_eq(w.info.signo, SIGUSR1);
    cr_assert_eq(w.info.code, SI_USER);
    cr_assert_eq(w.info.pid, getpid());
    cr_assert_eq(w.info.uid, getuid());
}

/* Interrupts the third waiter once the first two have their signal. */
struct after {
    struct waiter *w;
    coro_t *victim;
};

static int interrupt_when_done(void *arg)
{
    struct after *a = arg;
    while (!(a->w[0].done && a->w[1].done))
        if (coro_sleep(0.001) != 0)
            return -1;
    return coro_interrupt(a->victim, ECANCELED);
}

Test(signal_wait, one_arrival_wakes_all_its_waiters_and_no_other)
{
    struct waiter w[3] = {{.signo = SIGUSR2}, {.signo = SIGUSR2},
                          {.signo = SIGUSR1}};
    int sig = SIGUSR2;
    coro_t *third = NULL;
    for (int i = 0; i < 3; i++) {
        coro_t *co = coro_spawn(waiter, &w[i], "waiter");
        cr_assert_not_null(co);
        third = co;
    }
    struct after a = {.w = w, .victim = third};
    cr_assert_not_null(coro_spawn(killer, &sig, "killer"));
    cr_assert_not_null(coro_spawn(interrupt_when_done, &a, "stopper"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(w[0].rc, SIGUSR2);
    cr_assert_eq(w[1].rc, SIGUSR2);
    cr_assert_eq(w[2].rc, -1, "the SIGUSR1 waiter did not get SIGUSR2");
    cr_assert_eq(w[2].err, ECANCELED);
}

static int wait_usr1(void *arg)
{
    (void)arg;
    return coro_wait_signal(SIGUSR1, NULL);
}

/* One arrival wakes A and B; A is interrupted before it runs.  B has the
 * signal already, so it must not come again. */
struct dup_check {
    coro_t *a;
    int b_count;
};

static int count_usr1(void *arg)
{
    struct dup_check *d = arg;
    while (coro_wait_signal(SIGUSR1, NULL) == SIGUSR1)
        d->b_count++;
    return 0;
}

static int interrupt_a_once_woken(void *arg)
{
    struct dup_check *d = arg;
    /* Yielding keeps us ahead of A: we run right after the arrival. */
    while (coro_state(d->a) != CORO_RUNNABLE)
        if (coro_yield() != 0)
            return -1;
    return coro_interrupt(d->a, EINTR);
}

static int dup_body(void *arg)
{
    struct dup_check *d = arg;
    cr_assert_eq(coro_signal_watch(SIGUSR1), 0);
    d->a = coro_spawn_opts(wait_usr1, NULL, &(coro_opts_t){.joinable = true});
    coro_t *b = coro_spawn_opts(count_usr1, d, &(coro_opts_t){.joinable = true});
    coro_sleep(0.01); /* both wait */
    cr_assert_not_null(coro_spawn(interrupt_a_once_woken, d, "interrupter"));
    cr_assert_eq(kill(getpid(), SIGUSR1), 0);
    int st;
    cr_assert_eq(coro_join(d->a, &st, NULL), 0);
    coro_sleep(0.05); /* a duplicate would reach B by now */
    cr_assert_eq(coro_interrupt(b, ECANCELED), 0);
    cr_assert_eq(coro_join(b, NULL, NULL), 0);
    return 0;
}

Test(signal_wait, an_arrival_two_waiters_got_is_not_kept_again_when_one_is_interrupted)
{
    struct dup_check d = {0};
    cr_assert_eq(run_in_coro(dup_body, &d), 0);
    cr_assert_eq(d.b_count, 1, "B saw %d arrivals of one signal", d.b_count);
}

static int pending_kept_once(void *arg)
{
    (void)arg;
    if (coro_signal_watch(SIGUSR1) != 0)
        return -1;
    raise(SIGUSR1);
    raise(SIGUSR1);
    if (coro_sleep(0.01) != 0) /* let the loop read them */
        return -2;
    coro_siginfo_t info;
    if (coro_wait_signal(SIGUSR1, &info) != SIGUSR1)
        return -3;
    if (info.code != SI_TKILL || info.pid != getpid())
        return -4;
    /* Merged: a second wait finds nothing pending. */
    if (coro_with_timeout(0.05, wait_usr1, NULL) != -1 || errno != ETIMEDOUT)
        return -5;
    return 0;
}

Test(signal_watch, an_arrival_nobody_waits_for_is_kept_once_for_the_next_wait)
{
    cr_assert_eq(run_in_coro(pending_kept_once, NULL), 0, "errno %d",
                 test_errno);
    cr_assert(blocked(SIGUSR1) == source_blocks(),
              "stays watched until unwatched");
    cr_assert_eq(coro_signal_unwatch(SIGUSR1), 0);
    cr_assert_not(blocked(SIGUSR1), "unwatching gives the mask back");
}

static int wait_for_several(void *arg)
{
    (void)arg;
    const int set[] = {SIGHUP, SIGUSR2, SIGWINCH};
    int sig = SIGUSR2;
    if (coro_spawn(killer, &sig, "killer") == NULL)
        return -1;
    coro_siginfo_t info;
    int rc = coro_wait_signals(set, 3, &info);
    return rc == SIGUSR2 && info.signo == SIGUSR2 ? 0 : -2;
}

Test(signal_wait, a_wait_for_several_signals_returns_the_one_that_came)
{
    cr_assert_eq(run_in_coro(wait_for_several, NULL), 0);
}

static int several_pending(void *arg)
{
    (void)arg;
    const int set[] = {SIGUSR2, SIGHUP};
    if (coro_signal_watch(SIGHUP) != 0 || coro_signal_watch(SIGUSR2) != 0)
        return -1;
    raise(SIGUSR2);
    raise(SIGHUP);
    if (coro_sleep(0.01) != 0)
        return -2;
    int a = coro_wait_signals(set, 2, NULL);
    int b = coro_wait_signals(set, 2, NULL);
    return a == SIGHUP && b == SIGUSR2 ? 0 : -3;
}

Test(signal_wait, pending_signals_come_lowest_number_first)
{
    cr_assert_eq(run_in_coro(several_pending, NULL), 0);
}

static int wait_with_timeout(void *arg)
{
    (void)arg;
    return coro_with_timeout(0.02, wait_usr1, NULL);
}

Test(signal_wait, a_deadline_ends_the_wait_with_etimedout)
{
    double t0 = mono_sec();
    cr_assert_eq(run_in_coro(wait_with_timeout, NULL), -1);
    cr_assert_eq(test_errno, ETIMEDOUT);
    cr_assert_lt(mono_sec() - t0, 5.0);
}

static int interrupter(void *arg)
{
    return coro_interrupt(arg, EINTR);
}

Test(signal_wait, an_interrupt_ends_the_wait_with_its_errno)
{
    struct waiter w = {.signo = SIGHUP};
    coro_t *co = coro_spawn(waiter, &w, "waiter");
    cr_assert_not_null(co);
    cr_assert_not_null(coro_spawn(interrupter, co, "interrupter"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(w.rc, -1);
    cr_assert_eq(w.err, EINTR);
}

static int reap_cmd(void *arg)
{
    coro_cmd_t *cmd = arg;
    int st;
    if (coro_cmd_wait(cmd, &st) != 0 || !WIFEXITED(st))
        return -1;
    return coro_cmd_close(cmd);
}

Test(signal_wait, a_lone_waiter_holds_the_loop_until_a_child_signals_it)
{
    /* Watch first: the child may signal before the wait begins. */
    cr_assert_eq(coro_signal_watch(SIGUSR1), 0);
    coro_cmd_t cmd;
    const char *argv[] = {"sh", "-c", "kill -USR1 $PPID", NULL};
    cr_assert_eq(coro_cmd_spawn(&cmd, argv, 0), 0);
    struct waiter w = {.signo = SIGUSR1};
    cr_assert_not_null(coro_spawn(waiter, &w, "waiter"));
    cr_assert_eq(coro_event_loop(), 0, "no EDEADLK: errno %d", errno);
    cr_assert_eq(w.rc, SIGUSR1);
    cr_assert_eq(w.info.pid, cmd.pid);
    cr_assert_eq(run_in_coro(reap_cmd, &cmd), 0);
    cr_assert_eq(coro_signal_unwatch(SIGUSR1), 0);
}

static int bad_input(void *arg)
{
    (void)arg;
    const int bad[] = {0, -1, 65, 1000, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS,
                       SIGFPE, SIGILL, SIGTRAP, 32, 33};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        if (coro_wait_signal(bad[i], NULL) != -1 || errno != EINVAL)
            return -1 - (int)i;
        if (coro_signal_watch(bad[i]) != -1 || errno != EINVAL)
            return -100 - (int)i;
        if (coro_signal_unwatch(bad[i]) != -1 || errno != EINVAL)
            return -200 - (int)i;
        if (coro_wait_signals(&bad[i], 1, NULL) != -1 || errno != EINVAL)
            return -300 - (int)i;
    }
    const int good[] = {SIGUSR1, 0};
    if (coro_wait_signals(NULL, 1, NULL) != -1 || errno != EINVAL)
        return -400;
    if (coro_wait_signals(good, 0, NULL) != -1 || errno != EINVAL)
        return -401;
    if (coro_wait_signals(good, 2, NULL) != -1 || errno != EINVAL)
        return -402;
    if (blocked(SIGUSR1))
        return -403; /* a failed call watched nothing */
    return 0;
}

Test(signal_wait, bad_signal_numbers_fail_with_einval_and_watch_nothing)
{
    cr_assert_eq(run_in_coro(bad_input, NULL), 0);
}

Test(signal_wait, outside_a_coroutine_fails_with_eperm)
{
    cr_assert_eq(coro_wait_signal(SIGUSR1, NULL), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_not(blocked(SIGUSR1));
}

static int unwatch_while_waited(void *arg)
{
    (void)arg;
    errno = 0;
    int rc = coro_signal_unwatch(SIGHUP);
    return rc == -1 && errno == EBUSY ? 0 : -1;
}

Test(signal_watch, unwatching_a_signal_someone_waits_for_fails_with_ebusy)
{
    struct waiter w = {.signo = SIGHUP};
    coro_t *co = coro_spawn(waiter, &w, "waiter");
    cr_assert_not_null(co);
    coro_t *u = coro_spawn_opts(unwatch_while_waited, NULL,
                                &(coro_opts_t){.joinable = true});
    cr_assert_not_null(u);
    cr_assert_not_null(coro_spawn(interrupter, co, "interrupter"));
    cr_assert_eq(coro_event_loop(), 0);
    int st;
    cr_assert_eq(coro_join(u, &st, NULL), 0);
    cr_assert_eq(st, 0);
    cr_assert_eq(w.err, EINTR);
    cr_assert_eq(coro_signal_unwatch(SIGHUP), 0, "nobody waits now");
    cr_assert_not(blocked(SIGHUP));
}

Test(signal_watch, a_signal_the_application_blocked_stays_blocked_after)
{
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &m, NULL);
    cr_assert_eq(coro_signal_watch(SIGUSR2), 0);
    cr_assert_eq(coro_signal_unwatch(SIGUSR2), 0);
    cr_assert(blocked(SIGUSR2), "coro did not block it: not its to undo");
    cr_assert_eq(coro_signal_unwatch(SIGUSR2), 0, "unwatching twice is ok");
}

/* ------------------------------------------------------------------ */
/* SIGINT and SIGTERM end the loop                                    */

/* Ticks until told to stop; counts its ticks. */
struct ticker {
    bool stop;
    long ticks;
    bool saw_term_blocked;
};

static int ticker(void *arg)
{
    struct ticker *t = arg;
    while (!t->stop) {
        t->saw_term_blocked |= blocked(SIGTERM);
        t->ticks++;
        if (coro_yield() != 0)
            return -1;
    }
    return 0;
}

Test(default_signals, sigterm_ends_the_loop_with_143_and_the_others_go_on)
{
    struct ticker t = {0};
    int sig = SIGTERM;
    cr_assert_not_null(coro_spawn(ticker, &t, "ticker"));
    cr_assert_not_null(coro_spawn(killer, &sig, "killer"));
    cr_assert_not(blocked(SIGTERM));
    cr_assert_eq(coro_event_loop(), 128 + SIGTERM);
    cr_assert(t.saw_term_blocked == source_blocks(),
              "blocked while the loop runs");
    cr_assert_not(blocked(SIGTERM), "and given back when it returns");
    cr_assert_eq(coro_count(), 1, "the ticker still exists");
    long ticks = t.ticks;
    t.stop = true;
    cr_assert_eq(coro_event_loop(), 0, "and goes on when the loop runs");
    cr_assert_gt(t.ticks, ticks - 1);
}

/* Starts a child that sends us SIGINT, and waits for it to end (which
 * holds the loop: no EDEADLK while a child runs).  The SIGINT is read no
 * later than the child's end, as it was sent first. */
static int start_sigint_child(void *arg)
{
    coro_cmd_t *cmd = arg;
    const char *argv[] = {"sh", "-c", "kill -INT $PPID", NULL};
    if (coro_cmd_spawn(cmd, argv, 0) != 0)
        return -1;
    int st;
    return coro_cmd_wait(cmd, &st) == 0 && WIFEXITED(st) ? 0 : -2;
}

Test(default_signals, sigint_from_a_child_process_ends_the_loop_with_130)
{
    coro_cmd_t cmd;
    coro_t *co = coro_spawn_opts(start_sigint_child, &cmd,
                                 &(coro_opts_t){.joinable = true});
    cr_assert_not_null(co);
    double t0 = mono_sec();
    cr_assert_eq(coro_event_loop(), 128 + SIGINT, "errno %d", errno);
    cr_assert_lt(mono_sec() - t0, 10.0);
    cr_assert_eq(coro_event_loop(), 0);
    int st;
    cr_assert_eq(coro_join(co, &st, NULL), 0);
    cr_assert_eq(st, 0);
}

static int term_waiter(void *arg)
{
    int *got = arg;
    int sig = SIGTERM;
    if (coro_spawn(killer, &sig, "killer") == NULL)
        return -1;
    *got = coro_wait_signal(SIGTERM, NULL);
    return 0;
}

Test(default_signals, a_coroutine_waiting_for_sigterm_gets_it_instead)
{
    int got = 0;
    cr_assert_not_null(coro_spawn(term_waiter, &got, "waiter"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(got, SIGTERM);
    cr_assert_eq(coro_signal_unwatch(SIGTERM), 0);
}

static int peek_mask(void *arg)
{
    *(bool *)arg = blocked(SIGTERM) || blocked(SIGINT);
    return 0;
}

Test(default_signals, switched_off_the_loop_leaves_sigint_and_sigterm_alone)
{
    bool was_blocked = true;
    cr_assert_eq(coro_set_default_signals(false), true);
    cr_assert_not_null(coro_spawn(peek_mask, &was_blocked, "peek"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_not(was_blocked);
    cr_assert_eq(coro_set_default_signals(true), false);
    cr_assert_not_null(coro_spawn(peek_mask, &was_blocked, "peek"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert(was_blocked == source_blocks());
}

static int switch_off_then_block_check(void *arg)
{
    bool *res = arg;
    res[0] = blocked(SIGTERM);
    coro_set_default_signals(false);
    res[1] = blocked(SIGTERM);
    coro_set_default_signals(true);
    res[2] = blocked(SIGTERM);
    return 0;
}

Test(default_signals, switching_while_the_loop_runs_takes_effect_at_once)
{
    bool res[3];
    cr_assert_not_null(coro_spawn(switch_off_then_block_check, res, "x"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert(res[0] == source_blocks());
    cr_assert_not(res[1]);
    cr_assert(res[2] == source_blocks());
}
