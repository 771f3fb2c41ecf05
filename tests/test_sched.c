#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>

TestSuite(sched, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);

static int count_to(void *arg)
{
    int *n = arg;
    for (int i = 0; i < 3; i++) {
        (*n)++;
        coro_yield();
    }
    return 0;
}

Test(sched, spawned_coroutines_run_under_the_event_loop)
{
    int a = 0, b = 0;
    cr_assert_not_null(coro_spawn(count_to, &a, "a"));
    cr_assert_not_null(coro_spawn(count_to, &b, "b"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(a, 3);
    cr_assert_eq(b, 3);
}
