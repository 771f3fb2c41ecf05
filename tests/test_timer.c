/*
 * Timers: the heap fires in deadline order, ties in arming order.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <tsc_time/tsc_time.h>

TestSuite(timer, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 120);

#define N (CORO_TEST_TSAN ? 4000 : 100000) /* see SKIP_UNDER_TSAN */

static int64_t base;
static int64_t *deadlines;
static int *order;
static int fired;

static int sleep_until_mine(void *arg)
{
    int i = (int)(intptr_t)arg;
    cr_assert_eq(coro_sleep_until(deadlines[i]), 0);
    order[fired++] = i;
    return 0;
}

Test(timer, one_hundred_thousand_timers_fire_in_deadline_order)
{
    deadlines = malloc(N * sizeof *deadlines);
    order = malloc(N * sizeof *order);
    srand(12345);
    coro_opts_t o = {.stack_size = CORO_STACK_MIN};
    for (int i = 0; i < N; i++)
        cr_assert_not_null(coro_spawn_opts(sleep_until_mine,
                                           (void *)(intptr_t)i, &o));
    /* Deadlines are read when the coroutines first run: all of them park
     * in the loop's first pass, well before the earliest one. */
    base = tsc_now() + tsc_sec_to_ticks(1.0);
    int64_t spread = tsc_sec_to_ticks(0.5);
    for (int i = 0; i < N; i++)
        deadlines[i] = base + (int64_t)((double)rand() / RAND_MAX * spread);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(fired, N);
    for (int i = 1; i < N; i++)
        cr_assert_leq(deadlines[order[i - 1]], deadlines[order[i]],
                      "timer %d fired before an earlier one", i);
    free(deadlines);
    free(order);
}

Test(timer, equal_deadlines_fire_in_the_order_they_were_set)
{
    deadlines = malloc(64 * sizeof *deadlines);
    order = malloc(64 * sizeof *order);
    int64_t d = tsc_now() + tsc_sec_to_ticks(0.02);
    for (int i = 0; i < 64; i++) {
        deadlines[i] = d;
        coro_spawn(sleep_until_mine, (void *)(intptr_t)i, NULL);
    }
    cr_assert_eq(coro_event_loop(), 0);
    for (int i = 0; i < 64; i++)
        cr_assert_eq(order[i], i);
    free(deadlines);
    free(order);
}

static int scramble(void *arg)
{
    coro_t **co = arg;
    coro_stats_t st;
    coro_stats(&st);
    cr_assert_eq(st.timers, 500, "every sleeper parked with a timer");
    for (int i = 0; i < 500; i++)
        cr_assert_eq(coro_interrupt(co[(i * 263) % 500], ECANCELED), 0);
    return 0;
}

static int sleep_forever(void *arg)
{
    (void)arg;
    return coro_sleep(3600) == -1 && errno == ECANCELED ? 0 : -1;
}

Test(timer, sleepers_interrupted_in_scrambled_order_leave_no_timer_behind)
{
    coro_t *co[500];
    for (int i = 0; i < 500; i++)
        co[i] = coro_spawn(sleep_forever, NULL, NULL);
    coro_spawn(scramble, co, "scramble");
    coro_set_exit_notifier(NULL);
    cr_assert_eq(coro_event_loop(), 0);
    coro_stats_t st;
    coro_stats(&st);
    cr_assert_eq(st.timers, 0);
}
