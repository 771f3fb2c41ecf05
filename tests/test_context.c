/*
 * The context switch: each coroutine keeps its own registers, stack data
 * and floating-point control state across switches.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <fenv.h>
#include <string.h>

TestSuite(context, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);

/* 1/3 rounded in the current mode, in SSE (double) and x87 (long double)
 * arithmetic: both control words must follow the mode. */
static double third(void)
{
    volatile double a = 1, b = 3;
    return a / b;
}

static long double third_x87(void)
{
    volatile long double a = 1, b = 3;
    return a / b;
}

struct fp {
    int mode;
    double want;
    long double want_x87;
    int ok;
};

static int keep_rounding(void *arg)
{
    struct fp *f = arg;
    fesetround(f->mode);
    f->want = third();
    f->want_x87 = third_x87();
    for (int i = 0; i < 100; i++) {
        coro_yield();
        if (fegetround() != f->mode || third() != f->want ||
            third_x87() != f->want_x87)
            return -1;
    }
    f->ok = 1;
    return 0;
}

Test(context, each_coroutine_keeps_its_own_rounding_mode)
{
    struct fp up = {.mode = FE_UPWARD}, down = {.mode = FE_DOWNWARD};
    struct fp zero = {.mode = FE_TOWARDZERO};
    cr_assert_neq(fesetround(FE_TONEAREST), -1);
    coro_spawn(keep_rounding, &up, "up");
    coro_spawn(keep_rounding, &down, "down");
    coro_spawn(keep_rounding, &zero, "zero");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert(up.ok && down.ok && zero.ok);
    cr_assert(up.want > down.want, "modes really differ");
    cr_assert_eq(fegetround(), FE_TONEAREST, "the loop's mode survived");
}

static int end_in_upward_mode(void *arg)
{
    (void)arg;
    fesetround(FE_UPWARD);
    return 0;
}

static int report_mode(void *arg)
{
    *(int *)arg = fegetround();
    return 0;
}

struct modes {
    int after_join;   /* the joiner's mode after a child ended in another */
    int started;      /* mode a coroutine began with, started by one that
                         ended in another mode */
    int after_joins;  /* the joiner's mode after both */
};

static int join_children_in_other_modes(void *arg)
{
    struct modes *m = arg;
    static const coro_opts_t joinable = {.joinable = true};
    fesetround(FE_DOWNWARD);
    coro_t *a = coro_spawn_opts(end_in_upward_mode, NULL, &joinable);
    if (a == NULL || coro_join(a, NULL, NULL) != 0)
        return -1;
    m->after_join = fegetround();
    /* b ends and c, created here, starts straight from b's end. */
    coro_t *b = coro_spawn_opts(end_in_upward_mode, NULL, &joinable);
    coro_t *c = coro_spawn_opts(report_mode, &m->started, &joinable);
    if (b == NULL || c == NULL || coro_join(b, NULL, NULL) != 0 ||
        coro_join(c, NULL, NULL) != 0)
        return -1;
    m->after_joins = fegetround();
    fesetround(FE_TONEAREST);
    return 0;
}

Test(context, a_new_coroutine_begins_in_its_creators_rounding_mode)
{
    struct modes m = {-1, -1, -1};
    cr_assert_neq(fesetround(FE_TONEAREST), -1);
    coro_t *p = coro_spawn(join_children_in_other_modes, &m, "parent");
    cr_assert_not_null(p);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(m.after_join, FE_DOWNWARD,
                 "a child that ended upward changed its joiner's mode");
    cr_assert_eq(m.started, FE_DOWNWARD,
                 "a coroutine began in the mode of the one that started it, "
                 "not its creator's");
    cr_assert_eq(m.after_joins, FE_DOWNWARD);
    cr_assert_eq(fegetround(), FE_TONEAREST, "the loop's mode survived");
}

static int fill_and_check(void *arg)
{
    int id = (int)(intptr_t)arg;
    int data[1024];
    for (int i = 0; i < 1024; i++)
        data[i] = id * 7919 + i;
    for (int round = 0; round < 50; round++) {
        coro_yield();
        for (int i = 0; i < 1024; i++)
            if (data[i] != id * 7919 + i)
                return -1;
    }
    return 0;
}

static int check_all(void *arg)
{
    (void)arg;
    coro_task_t t[64];
    for (int i = 0; i < 64; i++)
        t[i] = (coro_task_t){.fn = fill_and_check, .arg = (void *)(intptr_t)i};
    return coro_in_parallel(t, 64);
}

Test(context, stack_data_survives_many_interleaved_switches)
{
    cr_assert_eq(run_in_coro(check_all, NULL), 0);
}

static int depth_sum(int n)
{
    volatile int x = n;
    if (n == 0) {
        coro_yield();
        return 0;
    }
    return depth_sum(n - 1) + x;
}

static int deep(void *arg)
{
    (void)arg;
    return depth_sum(1000) == 1000 * 1001 / 2 ? 0 : -1;
}

Test(context, a_coroutine_switched_out_deep_in_recursion_resumes_there)
{
    cr_assert_eq(run_in_coro(deep, NULL), 0);
}
