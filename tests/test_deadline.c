/*
 * Sleeping, with_timeout and its nesting rules, interrupts, grace periods.
 * Timings use generous bounds: a loaded machine may run late, never early.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <tsc_time/tsc_time.h>

TestSuite(with_timeout, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 60);
TestSuite(interrupt, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 60);
TestSuite(sleep, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 60);

static int sleep_arg(void *arg)
{
    return coro_sleep(*(double *)arg);
}

struct timed {
    double timeout, sleep;
    int rc, err;
    double took;
};

static int timed_sleep(void *arg)
{
    struct timed *t = arg;
    double t0 = mono_sec();
    t->rc = coro_with_timeout(t->timeout, sleep_arg, &t->sleep);
    t->err = errno;
    t->took = mono_sec() - t0;
    return 0;
}

Test(with_timeout, a_deadline_that_passes_fails_the_call_with_etimedout)
{
    struct timed t = {.timeout = 0.05, .sleep = 10};
    run_in_coro(timed_sleep, &t);
    cr_assert_eq(t.rc, -1);
    cr_assert_eq(t.err, ETIMEDOUT);
    cr_assert_geq(t.took, 0.05);
    cr_assert_lt(t.took, 5.0);
}

Test(with_timeout, a_call_that_finishes_first_returns_its_own_result)
{
    struct timed t = {.timeout = 10, .sleep = 0.01};
    run_in_coro(timed_sleep, &t);
    cr_assert_eq(t.rc, 0);
    cr_assert_lt(t.took, 5.0);
}

Test(with_timeout, a_zero_timeout_around_a_zero_sleep_times_out)
{
    struct timed t = {.timeout = 0, .sleep = 0};
    run_in_coro(timed_sleep, &t);
    cr_assert_eq(t.rc, -1);
    cr_assert_eq(t.err, ETIMEDOUT);
}

/* A coroutine woken in a tight loop by another must still time out. */
static int yield_forever(void *arg)
{
    long *n = arg;
    for (;;) {
        if (coro_yield() != 0)
            return -1;
        ++*n;
    }
}

struct busy {
    long spins;
    int rc, err;
    double took;
};

static int waker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5000000; i++)
        if (coro_yield() != 0)
            return -1;
    return 0;
}

static int busy_with_timeout(void *arg)
{
    struct busy *b = arg;
    coro_t *w = coro_spawn(waker, NULL, "waker");
    double t0 = mono_sec();
    b->rc = coro_with_timeout(0.1, yield_forever, &b->spins);
    b->err = errno;
    b->took = mono_sec() - t0;
    coro_interrupt(w, ECANCELED);
    return 0;
}

Test(with_timeout, a_coroutine_woken_in_a_tight_loop_still_times_out_on_time)
{
    struct busy b = {0};
    coro_set_exit_notifier(NULL);
    run_in_coro(busy_with_timeout, &b);
    cr_assert_eq(b.rc, -1);
    cr_assert_eq(b.err, ETIMEDOUT);
    cr_assert_gt(b.spins, 0);
    cr_assert_lt(b.took, 2.0, "took %.3f s", b.took);
}

/* Nested: the inner call's fn. */
struct nest {
    double inner, sleep;
    int inner_rc, inner_err, outer_rc, outer_err;
    int after_rc;
};

static int inner(void *arg)
{
    struct nest *n = arg;
    n->inner_rc = coro_with_timeout(n->inner, sleep_arg, &n->sleep);
    n->inner_err = errno;
    /* After an inner timeout, the outer deadline has not passed yet:
     * blocking works again. */
    double d = 0.001;
    n->after_rc = coro_with_timeout(10, sleep_arg, &d);
    return n->inner_rc;
}

static int nested(double outer, struct nest *n)
{
    n->outer_rc = coro_with_timeout(outer, inner, n);
    n->outer_err = errno;
    return 0;
}

static int outer_first(void *arg)
{
    return nested(0.05, arg);
}

Test(with_timeout, nested_outer_deadline_first_is_ecanceled_inside)
{
    struct nest n = {.inner = 10, .sleep = 20};
    run_in_coro(outer_first, &n);
    cr_assert_eq(n.inner_rc, -1);
    cr_assert_eq(n.inner_err, ECANCELED, "inner must not claim the outer");
    cr_assert_eq(n.after_rc, -1, "outer deadline still passed");
    cr_assert_eq(n.outer_rc, -1);
    cr_assert_eq(n.outer_err, ETIMEDOUT);
}

static int inner_first(void *arg)
{
    return nested(10, arg);
}

Test(with_timeout, nested_inner_deadline_first_is_etimedout_inside_only)
{
    struct nest n = {.inner = 0.05, .sleep = 20};
    run_in_coro(inner_first, &n);
    cr_assert_eq(n.inner_rc, -1);
    cr_assert_eq(n.inner_err, ETIMEDOUT);
    cr_assert_eq(n.after_rc, 0, "the outer call can still block");
    cr_assert_eq(n.outer_rc, -1, "fn returned inner's -1");
    cr_assert_eq(n.outer_err, ETIMEDOUT, "errno passed through");
}

static int64_t same_deadline;

static int inner_same(void *arg)
{
    struct nest *n = arg;
    n->inner_rc = coro_with_deadline(same_deadline, sleep_arg, &n->sleep);
    n->inner_err = errno;
    return n->inner_rc;
}

static int equal_deadlines(void *arg)
{
    struct nest *n = arg;
    same_deadline = tsc_now() + tsc_sec_to_ticks(0.05);
    n->outer_rc = coro_with_deadline(same_deadline, inner_same, n);
    n->outer_err = errno;
    return 0;
}

Test(with_timeout, equal_deadlines_time_out_both_levels)
{
    struct nest n = {.sleep = 20};
    run_in_coro(equal_deadlines, &n);
    cr_assert_eq(n.inner_rc, -1);
    cr_assert_eq(n.inner_err, ETIMEDOUT);
    cr_assert_eq(n.outer_rc, -1);
    cr_assert_eq(n.outer_err, ETIMEDOUT);
}

static int deadline_passes_without_blocking(void *arg)
{
    (void)arg;
    double t0 = mono_sec();
    while (mono_sec() - t0 < 0.02)
        ; /* busy: the deadline passes, nothing notices */
    return 7;
}

static int wt_no_block(void *arg)
{
    int *rc = arg;
    *rc = coro_with_timeout(0.001, deadline_passes_without_blocking, NULL);
    return 0;
}

Test(with_timeout, a_deadline_that_passes_while_fn_never_blocks_is_unnoticed)
{
    int rc = 0;
    run_in_coro(wt_no_block, &rc);
    cr_assert_eq(rc, 7);
}

static int left(void *arg)
{
    double *out = arg;
    out[0] = coro_time_left();
    return 0;
}

static int measure_left(void *arg)
{
    double *out = arg;
    out[1] = coro_time_left();
    coro_with_timeout(5, left, out);
    return 0;
}

Test(with_timeout, time_left_reports_the_nearest_deadline)
{
    double out[2] = {0, 0};
    run_in_coro(measure_left, out);
    cr_assert(isinf(out[1]));
    cr_assert_gt(out[0], 3.0);
    cr_assert_leq(out[0], 5.0);
    cr_assert(isinf(coro_time_left()));
}

/* Absolute deadlines long past, down to INT64_MIN: the time left is
 * negative, and computing it must not overflow (UBSan checks). */
static int measure_left_past(void *arg)
{
    double *out = arg;
    coro_with_deadline(INT64_MIN, left, &out[0]);
    coro_with_deadline(1, left, &out[1]);
    return 0;
}

Test(with_timeout, time_left_is_negative_for_deadlines_long_past)
{
    double out[2] = {0, 0};
    run_in_coro(measure_left_past, out);
    cr_assert_lt(out[0], -1e9, "INT64_MIN ticks: %g s", out[0]);
    cr_assert_lt(out[1], 0.0, "tick 1: %g s", out[1]);
}

Test(with_timeout, bad_arguments_fail_with_einval_or_eperm)
{
    cr_assert_eq(coro_with_timeout(1, left, NULL), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_with_timeout(NAN, left, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_with_deadline(0, NULL, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_with_grace(1, NULL, NULL), -1);
    cr_assert_eq(errno, EINVAL);
}

/* ------------------------------------------------------------------ */
/* Grace: cleanup after a deadline with a fresh, bounded period.       */

struct grace {
    double cleanup_sleep;
    int work_rc, work_err, cleanup_rc, cleanup_err, grace_rc, grace_err;
};

static int cleanup(void *arg)
{
    struct grace *g = arg;
    g->cleanup_rc = coro_sleep(g->cleanup_sleep);
    g->cleanup_err = errno;
    return g->cleanup_rc;
}

static int work_then_cleanup(void *arg)
{
    struct grace *g = arg;
    double forever = 20;
    g->work_rc = coro_sleep(forever); /* hits the deadline */
    g->work_err = errno;
    g->grace_rc = coro_with_grace(0.2, cleanup, g);
    g->grace_err = errno;
    return -1;
}

static int run_grace(void *arg)
{
    coro_with_timeout(0.05, work_then_cleanup, arg);
    return 0;
}

Test(with_timeout, cleanup_gets_a_fresh_grace_period_after_the_deadline)
{
    struct grace g = {.cleanup_sleep = 0.01};
    run_in_coro(run_grace, &g);
    cr_assert_eq(g.work_rc, -1);
    cr_assert_eq(g.work_err, ETIMEDOUT);
    cr_assert_eq(g.cleanup_rc, 0, "cleanup could block: %d", g.cleanup_err);
    cr_assert_eq(g.grace_rc, 0);
}

Test(with_timeout, a_grace_period_is_bounded_too)
{
    struct grace g = {.cleanup_sleep = 20};
    double t0 = mono_sec();
    run_in_coro(run_grace, &g);
    cr_assert_eq(g.cleanup_rc, -1);
    cr_assert_eq(g.cleanup_err, ETIMEDOUT);
    cr_assert_eq(g.grace_rc, -1);
    cr_assert_eq(g.grace_err, ETIMEDOUT);
    cr_assert_lt(mono_sec() - t0, 10.0);
}

/* ------------------------------------------------------------------ */

struct victim {
    int rc, err;
};

static int sleep_long(void *arg)
{
    struct victim *v = arg;
    v->rc = coro_sleep(20);
    v->err = errno;
    return 0;
}

static int interrupter(void *arg)
{
    coro_t *target = arg;
    coro_sleep(0.01);
    cr_assert_eq(coro_state(target), CORO_WAITING);
    cr_assert_eq(coro_interrupt(target, EINTR), 0);
    return 0;
}

Test(interrupt, a_sleeper_wakes_at_once_with_the_errno_given)
{
    struct victim v = {0};
    coro_t *s = coro_spawn(sleep_long, &v, "sleeper");
    coro_spawn(interrupter, s, "interrupter");
    double t0 = mono_sec();
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_lt(mono_sec() - t0, 5.0);
    cr_assert_eq(v.rc, -1);
    cr_assert_eq(v.err, EINTR);
}

struct join_victim {
    coro_t *target;
    int rc, err;
};

static int joiner(void *arg)
{
    struct join_victim *j = arg;
    j->rc = coro_join(j->target, NULL, NULL);
    j->err = errno;
    return 0;
}

static int slow(void *arg)
{
    (void)arg;
    coro_sleep(0.05);
    return 0;
}

Test(interrupt, a_joiner_wakes_and_the_target_lives_on)
{
    struct join_victim j = {.target = coro_spawn(slow, NULL, "slow")};
    coro_t *jc = coro_spawn(joiner, &j, "joiner");
    coro_spawn(interrupter, jc, "interrupter");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(j.rc, -1);
    cr_assert_eq(j.err, EINTR);
}

static int self_interrupt(void *arg)
{
    struct victim *v = arg;
    coro_interrupt(coro_current(), ECANCELED);
    v->rc = coro_yield();
    v->err = errno;
    /* Delivered once: the next call blocks normally. */
    cr_assert_eq(coro_sleep(0.001), 0);
    return 0;
}

Test(interrupt, a_running_coroutine_gets_it_at_its_next_blocking_call)
{
    struct victim v = {0};
    run_in_coro(self_interrupt, &v);
    cr_assert_eq(v.rc, -1);
    cr_assert_eq(v.err, ECANCELED);
}

static int64_t shared_deadline;

static int interrupt_after_wake(void *arg)
{
    /* Both sleep until the same deadline; this one was armed first, so it
     * runs first in that pass, while the target is woken but not run. */
    coro_t *target = arg;
    cr_assert_eq(coro_sleep_until(shared_deadline), 0);
    cr_assert_eq(coro_state(target), CORO_RUNNABLE);
    cr_assert_eq(coro_interrupt(target, EINTR), 0);
    return 0;
}

static int sleep_until_shared(void *arg)
{
    struct victim *v = arg;
    v->rc = coro_sleep_until(shared_deadline);
    v->err = errno;
    return 0;
}

Test(interrupt, an_interrupt_after_the_wake_up_replaces_it)
{
    struct victim v = {0};
    shared_deadline = tsc_now() + tsc_sec_to_ticks(0.02);
    coro_t *t = coro_new(sleep_until_shared, &v, NULL);
    coro_spawn(interrupt_after_wake, t, "i"); /* parks first */
    coro_start(t);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(v.rc, -1);
    cr_assert_eq(v.err, EINTR);
}

static int not_started(void *arg)
{
    struct victim *v = arg;
    v->rc = coro_yield();
    v->err = errno;
    return 0;
}

Test(interrupt, a_coroutine_not_yet_started_gets_it_at_its_first_block)
{
    struct victim v = {0};
    coro_t *co = coro_new(not_started, &v, NULL);
    cr_assert_eq(coro_interrupt(co, ETIMEDOUT), 0);
    cr_assert_eq(coro_start(co), 0);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(v.rc, -1);
    cr_assert_eq(v.err, ETIMEDOUT);
}

/* ------------------------------------------------------------------ */

static int sleep_measured(void *arg)
{
    double *took = arg;
    double t0 = mono_sec();
    cr_assert_eq(coro_sleep(0.05), 0);
    *took = mono_sec() - t0;
    return 0;
}

Test(sleep, sleeps_at_least_as_long_as_asked)
{
    double took = 0;
    run_in_coro(sleep_measured, &took);
    cr_assert_geq(took, 0.049);
    cr_assert_lt(took, 5.0);
}

static int sleep_until_past(void *arg)
{
    (void)arg;
    cr_assert_eq(coro_sleep_until(tsc_now() - 1000), 0);
    cr_assert_eq(coro_sleep(-1), 0);
    cr_assert_eq(coro_sleep(NAN), -1);
    cr_assert_eq(errno, EINVAL);
    return 0;
}

Test(sleep, a_deadline_in_the_past_returns_after_one_loop_pass)
{
    run_in_coro(sleep_until_past, NULL);
}

/* The deadline wakes the joiner, then the target ends before the joiner
 * runs: the join keeps the status and nothing leaks past with_timeout. */
static coro_t *late_target;
static int64_t late_deadline;

static int join_late_target(void *arg)
{
    (void)arg;
    return coro_join(late_target, NULL, NULL);
}

static int end_at_deadline(void *arg)
{
    (void)arg;
    coro_sleep_until(late_deadline); /* armed after the joiner's timer */
    return 0;
}

static int deadline_then_end(void *arg)
{
    int *out = arg;
    late_deadline = tsc_now() + tsc_sec_to_ticks(0.02);
    late_target = coro_spawn(end_at_deadline, NULL, "target");
    coro_yield(); /* the target parks first: its timer fires first */
    out[0] = coro_with_deadline(late_deadline, join_late_target, NULL);
    out[1] = coro_sleep(0.001); /* no deadline applies any more */
    return 0;
}

Test(with_timeout, a_deadline_that_loses_to_a_join_does_not_leak_past_it)
{
    int out[2] = {-2, -2};
    run_in_coro(deadline_then_end, out);
    cr_assert_eq(out[0], -1, "the deadline was seen");
    cr_assert_eq(out[1], 0, "the next sleep must not fail");
}
