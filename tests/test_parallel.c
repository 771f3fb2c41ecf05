/*
 * coro_in_parallel: results and failures per task, concurrency, the
 * caller's deadline and interrupts (every child cancelled and reaped), bad
 * input and allocation failure; and futures made of a joinable coroutine.
 * Timings use generous bounds: a loaded machine may run late, never early.
 */
#include "helpers.h"

#include "coro_internal.h" /* coro__sys_fail: the allocation seams */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

TestSuite(in_parallel, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);
TestSuite(future, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);

/* For tests where tasks fail on purpose: keep stderr clean. */
static void quiet(coro_t *co, int status, int err)
{
    (void)co, (void)status, (void)err;
}

/* What one task did; the task's arg. */
struct job {
    int result;    /* returned when it succeeds */
    int fail_with; /* when not 0: return -1 with this errno */
    double sleep;  /* seconds to sleep first (0: none) */
    bool ran;      /* it started */
    bool finished; /* it got past its sleep and returned */
    int sleep_rc, sleep_err;
    int linger_rc; /* the sleep after a cancellation, see linger() */
    coro_t *self;  /* its coroutine */
};

static int job(void *arg)
{
    struct job *j = arg;
    j->ran = true;
    j->self = coro_current();
    if (j->sleep > 0) {
        j->sleep_rc = coro_sleep(j->sleep);
        j->sleep_err = errno;
        if (j->sleep_rc != 0)
            return -1; /* errno is still the sleep's */
    }
    j->finished = true;
    if (j->fail_with != 0) {
        errno = j->fail_with;
        return -1;
    }
    return j->result;
}

/* A run of in_parallel in a coroutine, and what it saw. */
struct par {
    coro_task_t *tasks;
    size_t n;
    int rc, err;
    double took;
    size_t count_before, count_after;
};

static int run_parallel(void *arg)
{
    struct par *p = arg;
    p->count_before = coro_count();
    double t0 = mono_sec();
    p->rc = coro_in_parallel(p->tasks, p->n);
    p->err = errno;
    p->took = mono_sec() - t0;
    p->count_after = coro_count();
    return p->rc;
}

static void tasks_for(coro_task_t *t, struct job *j, size_t n)
{
    for (size_t i = 0; i < n; i++)
        t[i] = (coro_task_t){.fn = job, .arg = &j[i], .status = -7, .err = -7};
}

/* ------------------------------------------------------------------ */
/* Results.                                                            */

Test(in_parallel, when_all_tasks_succeed_it_returns_0_and_each_result)
{
    struct job j[5];
    coro_task_t t[5];
    for (int i = 0; i < 5; i++)
        j[i] = (struct job){.result = 10 * i + 1};
    tasks_for(t, j, 5);
    struct par p = {.tasks = t, .n = 5};
    cr_assert_eq(run_in_coro(run_parallel, &p), 0);
    cr_assert_eq(p.rc, 0);
    for (int i = 0; i < 5; i++) {
        cr_assert(j[i].ran);
        cr_assert_eq(t[i].status, 10 * i + 1, "task %d", i);
        cr_assert_eq(t[i].err, 0, "task %d", i);
    }
    cr_assert_eq(p.count_after, p.count_before);
}

Test(in_parallel, failed_tasks_are_counted_and_keep_their_errno)
{
    struct job j[6];
    coro_task_t t[6];
    const int fail[6] = {0, EIO, 0, ENOENT, EACCES, 0};
    for (int i = 0; i < 6; i++)
        j[i] = (struct job){
            .result = i, .fail_with = fail[i], .sleep = i % 2 ? 0.01 : 0};
    tasks_for(t, j, 6);
    struct par p = {.tasks = t, .n = 6};
    coro_set_exit_notifier(quiet);
    run_in_coro(run_parallel, &p);
    cr_assert_eq(p.rc, 3, "three tasks failed");
    for (int i = 0; i < 6; i++) {
        if (fail[i] != 0) {
            cr_assert_eq(t[i].status, -1, "task %d", i);
            cr_assert_eq(t[i].err, fail[i], "task %d", i);
        } else {
            cr_assert_eq(t[i].status, i, "task %d", i);
            cr_assert_eq(t[i].err, 0, "task %d", i);
        }
    }
    cr_assert_eq(p.count_after, p.count_before);
}

Test(in_parallel, when_every_task_fails_it_returns_n)
{
    struct job j[3];
    coro_task_t t[3];
    for (int i = 0; i < 3; i++)
        j[i] = (struct job){.fail_with = EPIPE};
    tasks_for(t, j, 3);
    struct par p = {.tasks = t, .n = 3};
    coro_set_exit_notifier(quiet);
    run_in_coro(run_parallel, &p);
    cr_assert_eq(p.rc, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(t[i].err, EPIPE);
}

Test(in_parallel, no_tasks_return_0_at_once)
{
    coro_task_t t[1] = {{.fn = job, .arg = NULL}};
    struct par p = {.tasks = t, .n = 0};
    cr_assert_eq(run_in_coro(run_parallel, &p), 0);
    cr_assert_eq(p.rc, 0);
    struct par none = {.tasks = NULL, .n = 0};
    cr_assert_eq(run_in_coro(run_parallel, &none), 0, "NULL with n == 0");
    cr_assert_eq(none.rc, 0);
}

Test(in_parallel, each_task_runs_in_its_own_coroutine_not_the_callers)
{
    struct job j[3] = {{0}};
    coro_task_t t[3];
    tasks_for(t, j, 3);
    struct par p = {.tasks = t, .n = 3};
    cr_assert_eq(run_in_coro(run_parallel, &p), 0);
    cr_assert_neq(j[0].self, j[1].self);
    cr_assert_neq(j[1].self, j[2].self);
    cr_assert_neq(j[0].self, j[2].self);
    cr_assert_not_null(j[0].self);
}

Test(in_parallel, tasks_run_concurrently)
{
    enum { N = 10 };
    struct job j[N];
    coro_task_t t[N];
    for (int i = 0; i < N; i++)
        j[i] = (struct job){.result = i, .sleep = 0.1};
    tasks_for(t, j, N);
    struct par p = {.tasks = t, .n = N};
    run_in_coro(run_parallel, &p);
    cr_assert_eq(p.rc, 0);
    for (int i = 0; i < N; i++)
        cr_assert(j[i].finished);
    cr_assert_geq(p.took, 0.099, "took %.3f s", p.took);
    cr_assert_lt(p.took, 0.9, "%d sleeps of 0.1 s took %.3f s", N, p.took);
}

/* ------------------------------------------------------------------ */
/* The caller's deadline and interrupts.                               */

struct timed {
    struct par p;
    int wt_rc, wt_err;
    double took;
    size_t count_before, count_after;
};

static int parallel_under_timeout(void *arg)
{
    struct timed *tm = arg;
    tm->count_before = coro_count();
    double t0 = mono_sec();
    tm->wt_rc = coro_with_timeout(0.05, run_parallel, &tm->p);
    tm->wt_err = errno;
    tm->took = mono_sec() - t0;
    tm->count_after = coro_count();
    return 0;
}

Test(in_parallel, the_callers_deadline_cancels_and_reaps_every_task)
{
    enum { N = 5 };
    struct job j[N];
    coro_task_t t[N];
    for (int i = 0; i < N; i++)
        j[i] = (struct job){.sleep = 20};
    tasks_for(t, j, N);
    struct timed tm = {.p = {.tasks = t, .n = N}};
    coro_set_exit_notifier(quiet);
    run_in_coro(parallel_under_timeout, &tm);
    cr_assert_eq(tm.p.rc, -1);
    cr_assert_eq(tm.p.err, ETIMEDOUT);
    cr_assert_eq(tm.wt_rc, -1);
    cr_assert_eq(tm.wt_err, ETIMEDOUT);
    cr_assert_geq(tm.took, 0.049, "took %.3f s", tm.took);
    cr_assert_lt(tm.took, 5.0, "took %.3f s", tm.took);
    for (int i = 0; i < N; i++) {
        cr_assert(j[i].ran, "task %d", i);
        cr_assert_eq(j[i].sleep_rc, -1, "task %d", i);
        cr_assert_eq(j[i].sleep_err, ECANCELED, "task %d", i);
        cr_assert_not(j[i].finished, "task %d", i);
        cr_assert_eq(t[i].status, -1, "task %d", i);
        cr_assert_eq(t[i].err, ECANCELED, "task %d", i);
    }
    cr_assert_eq(tm.p.count_after, tm.p.count_before, "all reaped");
    cr_assert_eq(tm.count_after, tm.count_before);
    cr_assert_eq(tm.count_after, 1, "only the caller is left");
}

Test(in_parallel, tasks_that_ended_before_the_deadline_keep_their_results)
{
    struct job j[3] = {
        {.result = 4}, {.sleep = 20}, {.result = 6, .sleep = 0.001}};
    coro_task_t t[3];
    tasks_for(t, j, 3);
    struct timed tm = {.p = {.tasks = t, .n = 3}};
    coro_set_exit_notifier(quiet);
    run_in_coro(parallel_under_timeout, &tm);
    cr_assert_eq(tm.p.rc, -1);
    cr_assert_eq(tm.p.err, ETIMEDOUT);
    cr_assert_eq(t[0].status, 4);
    cr_assert_eq(t[0].err, 0);
    cr_assert_eq(t[1].status, -1);
    cr_assert_eq(t[1].err, ECANCELED);
    cr_assert_eq(t[2].status, 6, "ended before the deadline");
    cr_assert_eq(t[2].err, 0);
    cr_assert_eq(tm.count_after, tm.count_before);
}

/* Catches its cancellation and sleeps on a little before it ends. */
static int linger(void *arg)
{
    struct job *j = arg;
    j->ran = true;
    j->sleep_rc = coro_sleep(20);
    j->sleep_err = errno;
    /* Interrupted once: the next blocking call works normally. */
    j->linger_rc = coro_sleep(0.05);
    j->finished = true;
    return 0;
}

Test(in_parallel, a_task_that_ignores_cancellation_for_a_while_is_waited_for)
{
    struct job j[3];
    coro_task_t t[3];
    for (int i = 0; i < 3; i++)
        j[i] = (struct job){.sleep = 20};
    tasks_for(t, j, 3);
    t[1].fn = linger;
    struct timed tm = {.p = {.tasks = t, .n = 3}};
    coro_set_exit_notifier(quiet);
    run_in_coro(parallel_under_timeout, &tm);
    cr_assert_eq(tm.p.rc, -1);
    cr_assert_eq(tm.p.err, ETIMEDOUT);
    cr_assert_eq(j[1].sleep_rc, -1);
    cr_assert_eq(j[1].sleep_err, ECANCELED);
    cr_assert_eq(j[1].linger_rc, 0, "its next sleep was not cut short");
    cr_assert(j[1].finished, "in_parallel waited for it");
    cr_assert_eq(t[1].status, 0, "it ended normally");
    cr_assert_eq(t[0].err, ECANCELED);
    cr_assert_eq(t[2].err, ECANCELED);
    cr_assert_geq(tm.took, 0.099, "deadline then linger: %.3f s", tm.took);
    cr_assert_lt(tm.took, 5.0, "took %.3f s", tm.took);
    cr_assert_eq(tm.count_after, tm.count_before, "nothing left running");
}

static int parallel_under_zero_timeout(void *arg)
{
    struct timed *tm = arg;
    tm->count_before = coro_count();
    tm->wt_rc = coro_with_timeout(0, run_parallel, &tm->p);
    tm->wt_err = errno;
    tm->count_after = coro_count();
    return 0;
}

Test(in_parallel, a_deadline_already_passed_cancels_tasks_at_their_first_block)
{
    struct job j[3] = {{.sleep = 20}, {.result = 5}, {.sleep = 20}};
    coro_task_t t[3];
    tasks_for(t, j, 3);
    struct timed tm = {.p = {.tasks = t, .n = 3}};
    coro_set_exit_notifier(quiet);
    run_in_coro(parallel_under_zero_timeout, &tm);
    cr_assert_eq(tm.p.rc, -1);
    cr_assert_eq(tm.p.err, ETIMEDOUT);
    cr_assert_eq(tm.wt_rc, -1);
    cr_assert_eq(tm.wt_err, ETIMEDOUT);
    cr_assert_eq(j[0].sleep_err, ECANCELED);
    cr_assert_eq(j[2].sleep_err, ECANCELED);
    cr_assert_eq(t[1].status, 5, "a task that never blocks just ends");
    cr_assert_eq(tm.count_after, tm.count_before);
}

/* A task that runs in_parallel itself: cancelling it cancels its own. */
struct nested {
    struct job inner_jobs[3];
    coro_task_t inner_tasks[3];
    struct par inner;
};

static int run_inner_parallel(void *arg)
{
    struct nested *ne = arg;
    return run_parallel(&ne->inner);
}

Test(in_parallel, cancelling_a_nested_in_parallel_reaps_the_grandchildren)
{
    struct nested ne;
    for (int i = 0; i < 3; i++)
        ne.inner_jobs[i] = (struct job){.sleep = 20};
    tasks_for(ne.inner_tasks, ne.inner_jobs, 3);
    ne.inner = (struct par){.tasks = ne.inner_tasks, .n = 3};
    struct job j[1] = {{.sleep = 20}};
    coro_task_t t[2];
    tasks_for(t, j, 1);
    t[1] = (coro_task_t){.fn = run_inner_parallel, .arg = &ne};
    struct timed tm = {.p = {.tasks = t, .n = 2}};
    coro_set_exit_notifier(quiet);
    run_in_coro(parallel_under_timeout, &tm);
    cr_assert_eq(tm.p.rc, -1);
    cr_assert_eq(tm.p.err, ETIMEDOUT);
    cr_assert_lt(tm.took, 5.0, "took %.3f s", tm.took);
    cr_assert_eq(ne.inner.rc, -1);
    cr_assert_eq(ne.inner.err, ECANCELED, "the inner call was cancelled");
    cr_assert_eq(t[1].status, -1);
    cr_assert_eq(t[1].err, ECANCELED);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(ne.inner_jobs[i].sleep_err, ECANCELED, "inner %d", i);
        cr_assert_eq(ne.inner_tasks[i].err, ECANCELED, "inner %d", i);
    }
    cr_assert_eq(tm.count_after, tm.count_before, "nothing left running");
}

/* The caller interrupted by another coroutine once every task sleeps. */
struct interrupted {
    struct par p;
    struct job *jobs;
    coro_t *caller;
    int caller_state; /* when the interrupt was sent */
    int interrupt_rc;
};

static int run_parallel_as_caller(void *arg)
{
    struct interrupted *in = arg;
    in->caller = coro_current();
    return run_parallel(&in->p);
}

static int interrupt_caller(void *arg)
{
    struct interrupted *in = arg;
    for (size_t i = 0; i < in->p.n; i++)
        while (!in->jobs[i].ran)
            cr_assert_eq(coro_yield(), 0);
    /* The tasks ran up to their sleep; the caller waits for them. */
    in->caller_state = coro_state(in->caller);
    in->interrupt_rc = coro_interrupt(in->caller, EINTR);
    return 0; /* ends before the caller runs again */
}

Test(in_parallel, interrupting_the_caller_cancels_and_reaps_every_task)
{
    enum { N = 4 };
    struct job j[N];
    coro_task_t t[N];
    for (int i = 0; i < N; i++)
        j[i] = (struct job){.sleep = 20};
    tasks_for(t, j, N);
    struct interrupted in = {.p = {.tasks = t, .n = N}, .jobs = j};
    coro_set_exit_notifier(quiet);
    cr_assert_not_null(coro_spawn(run_parallel_as_caller, &in, "caller"));
    cr_assert_not_null(coro_spawn(interrupt_caller, &in, "interrupter"));
    double t0 = mono_sec();
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_lt(mono_sec() - t0, 5.0);
    cr_assert_eq(in.caller_state, CORO_WAITING);
    cr_assert_eq(in.interrupt_rc, 0);
    cr_assert_eq(in.p.rc, -1);
    cr_assert_eq(in.p.err, EINTR);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(j[i].sleep_rc, -1, "task %d", i);
        cr_assert_eq(j[i].sleep_err, ECANCELED, "task %d", i);
        cr_assert_eq(t[i].status, -1, "task %d", i);
        cr_assert_eq(t[i].err, ECANCELED, "task %d", i);
    }
    /* Before: the caller and the interrupter; after: the caller alone. */
    cr_assert_eq(in.p.count_before, 2);
    cr_assert_eq(in.p.count_after, 1, "every task reaped");
}

/* A task that interrupts the caller itself, before the caller waits. */
static int interrupt_my_caller(void *arg)
{
    struct interrupted *in = arg;
    in->caller_state = coro_state(in->caller);
    in->interrupt_rc = coro_interrupt(in->caller, EINTR);
    in->jobs[0].sleep_rc = coro_sleep(20);
    in->jobs[0].sleep_err = errno;
    return 0;
}

Test(in_parallel, a_task_interrupting_its_caller_is_cancelled_with_the_rest)
{
    struct job j[2] = {{0}, {.sleep = 20}};
    struct interrupted in = {.jobs = j};
    coro_task_t t[2] = {{.fn = interrupt_my_caller, .arg = &in},
                        {.fn = job, .arg = &j[1]}};
    in.p = (struct par){.tasks = t, .n = 2};
    coro_set_exit_notifier(quiet);
    cr_assert_eq(run_in_coro(run_parallel_as_caller, &in), -1);
    cr_assert_eq(in.interrupt_rc, 0);
    cr_assert_eq(in.p.rc, -1);
    cr_assert_eq(in.p.err, EINTR);
    cr_assert_eq(j[0].sleep_err, ECANCELED);
    cr_assert_eq(j[1].sleep_err, ECANCELED);
    cr_assert_eq(in.p.count_after, in.p.count_before);
}

/* ------------------------------------------------------------------ */
/* Bad input and allocation failure: no task runs.                     */

Test(in_parallel, null_tasks_with_n_above_0_fail_with_einval)
{
    struct par p = {.tasks = NULL, .n = 3};
    run_in_coro(run_parallel, &p);
    cr_assert_eq(p.rc, -1);
    cr_assert_eq(p.err, EINVAL);
    cr_assert_eq(p.count_after, p.count_before);
}

Test(in_parallel, a_task_without_fn_fails_with_einval_before_any_task_runs)
{
    struct job j[3] = {{.result = 1}, {.result = 2}, {.result = 3}};
    coro_task_t t[3];
    tasks_for(t, j, 3);
    t[2].fn = NULL;
    struct par p = {.tasks = t, .n = 3};
    run_in_coro(run_parallel, &p);
    cr_assert_eq(p.rc, -1);
    cr_assert_eq(p.err, EINVAL);
    cr_assert_not(j[0].ran);
    cr_assert_not(j[1].ran);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(t[i].status, -7, "a failed call changed nothing");
    cr_assert_eq(p.count_after, p.count_before);
}

Test(in_parallel, outside_a_coroutine_it_fails_with_eperm)
{
    struct job j[2] = {{.result = 1}, {.result = 2}};
    coro_task_t t[2];
    tasks_for(t, j, 2);
    cr_assert_eq(coro_in_parallel(t, 2), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_count(), 0);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_not(j[0].ran);
    cr_assert_not(j[1].ran);
}

static int parallel_without_memory(void *arg)
{
    coro__sys_fail(CORO__SYS_MALLOC, 1, ENOMEM);
    return run_parallel(arg);
}

Test(in_parallel, without_memory_it_fails_with_enomem_and_no_task_runs)
{
    struct job j[3] = {{.result = 1}, {.result = 2}, {.result = 3}};
    coro_task_t t[3];
    tasks_for(t, j, 3);
    struct par p = {.tasks = t, .n = 3};
    run_in_coro(parallel_without_memory, &p);
    cr_assert_eq(p.rc, -1);
    cr_assert_eq(p.err, ENOMEM);
    for (int i = 0; i < 3; i++) {
        cr_assert_not(j[i].ran, "task %d", i);
        cr_assert_eq(t[i].status, -7, "a failed call changed nothing");
    }
    cr_assert_eq(p.count_after, p.count_before);
}

/* Fail the nth allocation (or mapping) of one call, for n = 1, 2, ...
 * until the call no longer reaches an nth: every failure must leave no
 * task run and no coroutine or stack behind. */
struct each_failure {
    enum coro__sys_op op;
    int failures;  /* calls that failed with ENOMEM */
    int other_err; /* errno of a failure that was not ENOMEM, if any */
    bool succeeded;
    bool ran_on_failure;
    size_t leaked; /* coroutines left after a failure */
};

enum { MANY = 300 }; /* enough to grow the id table and map a new slab */
static struct job many_jobs[MANY];
static coro_task_t many_tasks[MANY];

static int fail_each_allocation(void *arg)
{
    struct each_failure *f = arg;
    for (int nth = 1; nth <= 64 && !f->succeeded; nth++) {
        for (int i = 0; i < MANY; i++)
            many_jobs[i] = (struct job){.result = i};
        tasks_for(many_tasks, many_jobs, MANY);
        size_t before = coro_count();
        coro__sys_fail(f->op, nth, ENOMEM);
        int rc = coro_in_parallel(many_tasks, MANY);
        int err = errno;
        coro__sys_fail(f->op, 0, 0); /* unused countdowns must not linger */
        if (rc == 0) {
            f->succeeded = true;
            break;
        }
        if (err == ENOMEM)
            f->failures++;
        else
            f->other_err = err;
        for (int i = 0; i < MANY; i++)
            f->ran_on_failure |= many_jobs[i].ran;
        if (coro_count() != before)
            f->leaked = coro_count() - before;
    }
    return 0;
}

Test(in_parallel, any_allocation_failure_fails_with_enomem_and_no_task_runs)
{
    struct each_failure f = {.op = CORO__SYS_MALLOC};
    run_in_coro(fail_each_allocation, &f);
    cr_assert(f.succeeded, "succeeds once no allocation fails");
    cr_assert_geq(f.failures, 1);
    cr_assert_eq(f.other_err, 0, "failed with errno %d", f.other_err);
    cr_assert_not(f.ran_on_failure);
    cr_assert_eq(f.leaked, 0);
}

Test(in_parallel, any_stack_mapping_failure_fails_with_enomem_and_no_task_runs)
{
    struct each_failure f = {.op = CORO__SYS_MMAP};
    run_in_coro(fail_each_allocation, &f);
    cr_assert(f.succeeded);
    cr_assert_geq(f.failures, 1, "%d tasks need a new slab", MANY);
    cr_assert_eq(f.other_err, 0, "failed with errno %d", f.other_err);
    cr_assert_not(f.ran_on_failure);
    cr_assert_eq(f.leaked, 0);
}

/* ------------------------------------------------------------------ */
/* Futures: a joinable coroutine computes a value the spawner collects
 * later (Tornado's Future). */

static int compute_square(void *arg)
{
    int x = (int)(intptr_t)arg;
    if (coro_sleep(0.01) != 0)
        return -1;
    return x * x;
}

struct futures {
    int results[4];
    int rc[4];
    bool worked_meanwhile;
    size_t count_at_end;
};

static int use_futures(void *arg)
{
    struct futures *f = arg;
    coro_opts_t o = {.name = "future", .joinable = true};
    coro_t *fut[4];
    for (int i = 0; i < 4; i++) {
        fut[i] = coro_spawn_opts(compute_square, (void *)(intptr_t)(i + 2), &o);
        cr_assert_not_null(fut[i]);
    }
    /* Other work first; the futures resolve meanwhile or later. */
    cr_assert_eq(coro_yield(), 0);
    f->worked_meanwhile = true;
    /* Collect in reverse: the order of joins does not matter. */
    for (int i = 3; i >= 0; i--) {
        int err = -1;
        f->rc[i] = coro_join(fut[i], &f->results[i], &err);
        cr_assert_eq(err, 0);
    }
    f->count_at_end = coro_count();
    return 0;
}

Test(future, a_joinable_coroutine_hands_its_result_to_a_later_join)
{
    struct futures f = {.worked_meanwhile = false};
    run_in_coro(use_futures, &f);
    cr_assert(f.worked_meanwhile);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(f.rc[i], 0);
        cr_assert_eq(f.results[i], (i + 2) * (i + 2));
    }
    cr_assert_eq(f.count_at_end, 1, "joining reaped the futures");
}

struct resolved {
    coro_t *fut;
    int state_before_join;
    int rc, status, err;
};

static int join_a_resolved_future(void *arg)
{
    struct resolved *r = arg;
    coro_opts_t o = {.joinable = true};
    r->fut = coro_spawn_opts(compute_square, (void *)(intptr_t)9, &o);
    cr_assert_not_null(r->fut);
    /* Wait for it some other way, so the join finds it already ended. */
    while (coro_state(r->fut) != CORO_DEAD)
        cr_assert_eq(coro_yield(), 0);
    r->state_before_join = coro_state(r->fut);
    r->rc = coro_join(r->fut, &r->status, &r->err);
    return 0;
}

Test(future, a_future_that_already_resolved_is_joined_without_waiting)
{
    struct resolved r = {0};
    run_in_coro(join_a_resolved_future, &r);
    cr_assert_eq(r.state_before_join, CORO_DEAD);
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.status, 81);
    cr_assert_eq(r.err, 0);
}

/* A task that interrupts its caller as it ends: the caller's join has the
 * status already, the interrupt stops the rest, and everything is reaped. */
static coro_t *the_caller;

static int interrupt_caller_and_end(void *arg)
{
    (void)arg;
    coro_interrupt(the_caller, EINTR);
    return 7;
}

static int sleep_long_task(void *arg)
{
    (void)arg;
    return coro_sleep(20);
}

static int call_with_interrupting_task(void *arg)
{
    int *rc = arg;
    the_caller = coro_current();
    coro_task_t t[2] = {{.fn = interrupt_caller_and_end},
                        {.fn = sleep_long_task}};
    rc[0] = coro_in_parallel(t, 2);
    rc[1] = errno;
    rc[2] = t[0].status;
    rc[3] = (int)coro_count();
    return 0;
}

Test(in_parallel, a_task_interrupting_its_caller_as_it_ends_leaves_nothing)
{
    int rc[4] = {0};
    coro_set_exit_notifier(quiet);
    coro_spawn(call_with_interrupting_task, rc, "caller");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(rc[0], -1);
    cr_assert_eq(rc[1], EINTR);
    cr_assert_eq(rc[2], 7, "the ended task's status was kept");
    cr_assert_eq(rc[3], 1, "only the caller is left");
}
