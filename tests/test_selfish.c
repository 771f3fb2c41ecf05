/*
 * Selfishness: the settings through the public API, and the counter the
 * socket layer calls (coro__selfish_act(), coro__selfish_reset()) through
 * the internal header, as that layer will.
 */
#include "helpers.h"

#include "coro_internal.h"

#include <criterion/criterion.h>
#include <errno.h>

TestSuite(selfish, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);

static int nothing(void *arg)
{
    (void)arg;
    return 0;
}

static coro_info_t info_of(coro_t *co)
{
    coro_info_t info;
    cr_assert_eq(coro_info(co, &info), 0);
    return info;
}

Test(selfish, new_coroutines_get_four_acts_and_no_forced_yields)
{
    cr_assert_eq(coro_selfishness(), 4);
    coro_t *co = coro_spawn(nothing, NULL, "a");
    cr_assert_eq(info_of(co).max_selfish_acts, 4);
    cr_assert_eq(info_of(co).selfish_yields, 0);
    cr_assert_eq(coro_event_loop(), 0);
}

Test(selfish, the_default_applies_to_coroutines_created_later_only)
{
    coro_t *before = coro_new(nothing, NULL, NULL);
    cr_assert_eq(coro_set_selfishness(10), 4);
    cr_assert_eq(coro_selfishness(), 10);
    coro_t *after = coro_spawn(nothing, NULL, "after");
    cr_assert_eq(info_of(before).max_selfish_acts, 4);
    cr_assert_eq(info_of(after).max_selfish_acts, 10);
    cr_assert_eq(coro_set_selfishness(4), 10);
    cr_assert_eq(coro_start(before), 0);
    cr_assert_eq(coro_event_loop(), 0);
}

Test(selfish, out_of_range_values_fail_with_einval_and_change_nothing)
{
    coro_t *co = coro_spawn(nothing, NULL, "a");
    const int bad[] = {0, -1, 32769, -32768};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        cr_assert_eq(coro_set_selfishness(bad[i]), -1);
        cr_assert_eq(errno, EINVAL);
        errno = 0;
        cr_assert_eq(coro_set_max_selfish_acts(co, bad[i]), -1);
        cr_assert_eq(errno, EINVAL);
    }
    cr_assert_eq(coro_selfishness(), 4);
    cr_assert_eq(info_of(co).max_selfish_acts, 4);
    cr_assert_eq(coro_set_selfishness(32768), 4, "the bounds are valid");
    cr_assert_eq(coro_set_selfishness(1), 32768);
    cr_assert_eq(coro_set_max_selfish_acts(co, 32768), 4);
    cr_assert_eq(coro_set_max_selfish_acts(co, 1), 32768);
    errno = 0;
    cr_assert_eq(coro_set_max_selfish_acts(NULL, 4), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_event_loop(), 0);
}

Test(selfish, an_ended_coroutine_fails_with_esrch)
{
    coro_opts_t o = {.joinable = true};
    coro_t *co = coro_spawn_opts(nothing, NULL, &o);
    cr_assert_eq(coro_event_loop(), 0);
    errno = 0;
    cr_assert_eq(coro_set_max_selfish_acts(co, 8), -1);
    cr_assert_eq(errno, ESRCH);
    cr_assert_eq(coro_join(co, NULL, NULL), 0);
}

/* n acts in a row by the calling coroutine; the 1-based index of each one
 * that asked for a yield goes into yields[] (up to 8). */
struct acts {
    int n;         /* in: acts to make */
    int yields[8]; /* out: which acts asked for a yield */
    int count;     /* out: how many did */
};

static void act(struct coro *co, struct acts *a)
{
    for (int i = 1; i <= a->n; i++)
        if (coro__selfish_act(co) && a->count < 8)
            a->yields[a->count++] = i;
}

static int acts_in_a_row(void *arg)
{
    struct acts *a = arg;
    act((struct coro *)coro_current(), a);
    return 0;
}

Test(selfish, every_max_acts_in_a_row_ask_for_one_yield)
{
    struct acts a = {.n = 9};
    coro_opts_t o = {.joinable = true};
    coro_t *co = coro_spawn_opts(acts_in_a_row, &a, &o);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(a.count, 2);
    cr_assert_eq(a.yields[0], 4, "the fourth act yields");
    cr_assert_eq(a.yields[1], 8, "the count was refilled");
    cr_assert_eq(info_of(co).selfish_yields, 2);
    cr_assert_eq(coro_join(co, NULL, NULL), 0);
}

Test(selfish, one_act_means_a_yield_after_every_act)
{
    cr_assert_eq(coro_set_selfishness(1), 4);
    struct acts a = {.n = 3};
    cr_assert_not_null(coro_spawn(acts_in_a_row, &a, "greedy"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(a.count, 3);
    cr_assert_eq(a.yields[2], 3);
}

static int set_max_mid_run(void *arg)
{
    struct acts *a = arg;
    struct coro *co = (struct coro *)coro_current();
    a->n = 3;
    act(co, a); /* one left */
    cr_assert_eq(coro_set_max_selfish_acts(coro_current(), 2), 4);
    a->n = 2; /* refilled to 2: the second yields */
    act(co, a);
    return 0;
}

Test(selfish, setting_max_acts_refills_the_count)
{
    struct acts a = {0};
    cr_assert_not_null(coro_spawn(set_max_mid_run, &a, "setter"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(a.count, 1);
    cr_assert_eq(a.yields[0], 2);
}

static int block_mid_run(void *arg)
{
    struct acts *a = arg;
    struct coro *co = (struct coro *)coro_current();
    a->n = 3;
    act(co, a);
    coro__selfish_reset(co); /* as after an operation that had to wait */
    a->n = 4;
    act(co, a);
    return 0;
}

Test(selfish, an_operation_that_blocked_refills_the_count)
{
    struct acts a = {0};
    cr_assert_not_null(coro_spawn(block_mid_run, &a, "blocker"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(a.count, 1);
    cr_assert_eq(a.yields[0], 4, "four free acts after the reset");
}
