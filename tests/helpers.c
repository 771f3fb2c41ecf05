#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <time.h>

int test_errno;

void sched_setup(void)
{
    coro_stats_t st;
    cr_assert_eq(coro_stats(&st), 0);
}

void sched_expect_empty(void)
{
    coro_stats_t st;
    cr_assert_eq(coro_stats(&st), 0);
    cr_expect_eq(st.coroutines, 0, "coroutines left: %zu", st.coroutines);
    cr_expect_eq(st.timers, 0, "timers left: %zu", st.timers);
    cr_expect_eq(st.stacks_in_use, 0, "stacks held: %zu", st.stacks_in_use);
    cr_expect_eq(st.fds_watched, 0, "fds still watched: %zu", st.fds_watched);
    cr_expect_eq(st.fd_waiters, 0, "fd waiters left: %zu", st.fd_waiters);
    cr_expect_eq(coro_fini(), 0, "coro_fini: %d", errno);
}

struct run {
    coro_fn fn;
    void *arg;
    int status;
};

static int runner(void *p)
{
    struct run *r = p;
    r->status = r->fn(r->arg);
    test_errno = errno;
    return 0;
}

int run_in_coro(coro_fn fn, void *arg)
{
    struct run r = {fn, arg, 0};
    cr_assert_not_null(coro_spawn(runner, &r, "run_in_coro"));
    cr_assert_eq(coro_event_loop(), 0);
    return r.status;
}

double mono_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}
