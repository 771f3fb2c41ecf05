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
