/*
 * Shared test fixture: a fresh scheduler per test, and a teardown that
 * asserts nothing is left behind (no coroutine, timer or stack in use).
 */
#ifndef CORO_TEST_HELPERS_H
#define CORO_TEST_HELPERS_H

#include <coro/coro.h>

/* .init: nothing to do (each test runs in its own process), but make the
 * scheduler now so its creation is not part of what a test measures. */
void sched_setup(void);
/* .fini: every coroutine ended and was reaped, no timer armed, no stack
 * held, and coro_fini() succeeds. */
void sched_expect_empty(void);

/* Run fn(arg) in one coroutine under the event loop; returns its status
 * and leaves its errno in test_errno. */
int run_in_coro(coro_fn fn, void *arg);
extern int test_errno;

/* ThreadSanitizer makes each coroutine a TSan fiber, which it counts as a
 * thread.  It stops a process past 8128 at once, and gives up on a child
 * forked while other threads exist (it ignores the forking one and
 * reports false races in the others).  Tests that need more coroutines,
 * or coroutines serving in a forked child, skip themselves there or
 * scale down. */
#if defined(__SANITIZE_THREAD__)
#define CORO_TEST_TSAN 1
#define SKIP_UNDER_TSAN(why) cr_skip_test("not under ThreadSanitizer: " why)
#else
#define CORO_TEST_TSAN 0
#define SKIP_UNDER_TSAN(why) ((void)0)
#endif

/* Seconds on CLOCK_MONOTONIC. */
double mono_sec(void);

#endif
