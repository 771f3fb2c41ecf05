/*
 * Latency warnings: the warning text, the watchdog's call stack, the
 * factor setting, the rate limit and the watchdog signal setting.  Each
 * test captures stderr (fd 2) in a temporary file while the loop runs.
 *
 * The slow slices busy-spin on CLOCK_MONOTONIC; the bounds on the printed
 * times are generous because this runs on small, shared machines.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <tsc_time/tsc_time.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(latency, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 60);

/* ------------------------------------------------------------------ */
/* Capturing stderr                                                    */

static int saved_stderr = -1; /* the real fd 2 while capturing */
static int capture_fd = -1;   /* the temporary file on fd 2 */
static char captured[64 * 1024];

static void capture_begin(void)
{
    char path[] = "/tmp/coro_test_latency_XXXXXX";
    fflush(stderr);
    capture_fd = mkstemp(path);
    cr_assert_geq(capture_fd, 0);
    unlink(path);
    saved_stderr = dup(2);
    cr_assert_geq(saved_stderr, 0);
    cr_assert_eq(dup2(capture_fd, 2), 2);
}

/* Restore fd 2 and return what was written to it, NUL-terminated. */
static const char *capture_end(void)
{
    fflush(stderr);
    cr_assert_eq(dup2(saved_stderr, 2), 2);
    close(saved_stderr);
    size_t n = 0;
    ssize_t k;
    lseek(capture_fd, 0, SEEK_SET);
    while (n < sizeof captured - 1 &&
           (k = read(capture_fd, captured + n, sizeof captured - 1 - n)) > 0)
        n += (size_t)k;
    captured[n] = '\0';
    close(capture_fd);
    /* Shown when a test fails: what the library printed. */
    cr_log_info("captured stderr:\n%s", captured);
    return captured;
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* The number after "held the CPU " in the warning for coroutine tag
 * ("#2 'hog'"), or -1. */
static long held_ms(const char *text, const char *tag)
{
    char key[128];
    snprintf(key, sizeof key, "coroutine %s held the CPU ", tag);
    const char *p = strstr(text, key);
    return p != NULL ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* ------------------------------------------------------------------ */
/* Busy work.  Not static and not inlined: the watchdog's call stack must
 * show these names (the test is linked with -rdynamic for dladdr). */

volatile unsigned long latency_sink;

__attribute__((noinline)) void latency_spin(double sec)
{
    double end = mono_sec() + sec;
    /* Mostly arithmetic, so the watchdog almost always lands here. */
    while (mono_sec() < end)
        for (unsigned long i = 0; i < 100000; i++)
            latency_sink = latency_sink * 31 + i;
}

static int sleep_line, spin_line, yield_line; /* sites in hog() */

__attribute__((noinline)) int latency_hog(void *arg)
{
    double sec = *(double *)arg;
    sleep_line = __LINE__, coro_sleep(0.001);
    spin_line = __LINE__, latency_spin(sec);
    yield_line = __LINE__, coro_sleep(0.001);
    return 0;
}

/* ------------------------------------------------------------------ */

/* Whether the watchdog's sample names the spinning function.  Under
 * ThreadSanitizer the signal usually lands inside its runtime's memory
 * access checks, which run without frame pointers: the walk then starts
 * in libtsan and skips the instrumented caller, so only the sample itself
 * is checked there. */
static bool sampled_spin(const char *out)
{
    return CORO_TEST_TSAN ? strstr(out, "  watchdog sample ") != NULL
                          : strstr(out, " latency_spin+0x") != NULL;
}

Test(latency, a_slow_slice_prints_one_warning_with_sites_and_call_stack)
{
    cr_assert_eq(coro_set_latency_warning(0.25), 1.0); /* 50 ms */
    double sec = 0.3;
    coro_t *co = coro_spawn(latency_hog, &sec, "hog");
    char tag[64], prefix[64];
    snprintf(tag, sizeof tag, "#%d 'hog'", coro_id(co));
    /* The prefix is coro_print_stderr()'s, with the slow coroutine. */
    snprintf(prefix, sizeof prefix, " #%d: latency: ", coro_id(co));
    capture_begin();
    cr_assert_eq(coro_event_loop(), 0);
    const char *out = capture_end();

    cr_assert_eq(count_of(out, "latency: "), 1, "one warning");
    long ms = held_ms(out, tag);
    cr_assert_geq(ms, 50, "held %ld ms, threshold 50", ms);
    cr_assert_leq(ms, 10000);
    cr_assert(strstr(out, "(threshold 50 ms)") != NULL);
    char want[512];
    snprintf(want, sizeof want,
             "resumed at sleep at %s:%d in latency_hog(); "
             "yielded at sleep at %s:%d in latency_hog()",
             __FILE__, sleep_line, __FILE__, yield_line);
    cr_assert(strstr(out, want) != NULL, "expected: %s", want);
    cr_assert(strstr(out, prefix) != NULL);

    /* The watchdog caught the spin while it ran, about 50 ms in. */
    const char *wd = strstr(out, "  watchdog sample ");
    cr_assert_not_null(wd, "no watchdog sample");
    long at = strtol(wd + strlen("  watchdog sample "), NULL, 10);
    cr_assert_geq(at, 45, "sampled at %ld ms", at);
    cr_assert_lt(at, ms, "while the slice ran");
    cr_assert(strstr(wd, "    #0 0x") != NULL);
    cr_assert(sampled_spin(wd),
              "the spinning function is on the sampled stack");
    cr_assert(CORO_TEST_TSAN || strstr(wd, " latency_hog+0x") != NULL,
              "and its caller");
    (void)spin_line;
}

/* A log sink keeping the last message, as a console streaming it would. */
static char sunk[8192];
static int sunk_calls;

static void keep_warning(const char *text, size_t len, void *ud)
{
    (void)ud;
    sunk_calls++;
    if (len >= sizeof sunk)
        len = sizeof sunk - 1;
    memcpy(sunk, text, len);
    sunk[len] = '\0';
}

Test(latency, a_warning_reaches_the_log_sinks_whole_as_printed)
{
    cr_assert_eq(coro_set_latency_warning(0.25), 1.0);
    cr_assert_eq(coro_log_sink_add(keep_warning, NULL), 0);
    double sec = 0.12;
    coro_spawn(latency_hog, &sec, "hog");
    capture_begin();
    cr_assert_eq(coro_event_loop(), 0);
    const char *out = capture_end();
    cr_assert_eq(coro_log_sink_remove(keep_warning, NULL), 0);
    cr_assert_eq(sunk_calls, 1, "one warning, one call");
    cr_assert(strstr(sunk, "latency: coroutine #") != NULL, "%s", sunk);
    cr_assert(strstr(out, sunk) != NULL, "the sink saw what stderr saw");
}

static int spin_and_end(void *arg)
{
    latency_spin(*(double *)arg);
    return 0;
}

Test(latency, a_first_slice_resumes_at_entry_and_an_ending_one_yields_at_exit)
{
    coro_set_latency_warning(0.25);
    double sec = 0.12;
    coro_t *co = coro_spawn(spin_and_end, &sec, "ender");
    char tag[64];
    snprintf(tag, sizeof tag, "#%d 'ender'", coro_id(co));
    capture_begin();
    cr_assert_eq(coro_event_loop(), 0);
    const char *out = capture_end();
    cr_assert_eq(count_of(out, "latency: "), 1);
    cr_assert_geq(held_ms(out, tag), 50);
    cr_assert(strstr(out, "resumed at entry; yielded at exit") != NULL);
}

Test(latency, factor_zero_prints_nothing)
{
    cr_assert_eq(coro_set_latency_warning(0), 1.0);
    cr_assert_eq(coro_latency_warning(), 0.0);
    double sec = 0.25;
    coro_opts_t o = {.name = "quiet", .joinable = true};
    coro_t *co = coro_spawn_opts(spin_and_end, &sec, &o);
    capture_begin();
    cr_assert_eq(coro_event_loop(), 0);
    const char *out = capture_end();
    cr_assert_str_eq(out, "");
    /* The slice was long: warnings were off, not the slice short. */
    coro_info_t info;
    cr_assert_eq(coro_info(co, &info), 0);
    cr_assert_geq(tsc_ticks_to_usec(info.max_slice_ticks), 200000);
    cr_assert_eq(coro_join(co, NULL, NULL), 0);
}

/* What the exit notifier sees of a coroutine that ends with an error
 * after two slices: its whole run time, the last slice included. */
static int64_t notified_run_ticks, notified_max_slice;

static void note_run_time(coro_t *co, int status, int err)
{
    (void)status, (void)err;
    coro_info_t info;
    cr_assert_eq(coro_info(co, &info), 0);
    notified_run_ticks = info.run_ticks;
    notified_max_slice = info.max_slice_ticks;
}

static int spin_yield_spin_fail(void *arg)
{
    (void)arg;
    latency_spin(0.05);
    coro_yield();
    latency_spin(0.2);
    return -1;
}

Test(latency, an_ending_coroutines_last_slice_counts_before_its_exit_is_reported)
{
    coro_set_latency_warning(0); /* no warning output */
    coro_set_exit_notifier(note_run_time);
    cr_assert_not_null(coro_spawn(spin_yield_spin_fail, NULL, "spinner"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_geq(tsc_ticks_to_usec(notified_run_ticks), 240000);
    cr_assert_geq(tsc_ticks_to_usec(notified_max_slice), 190000);
}

static int late_spin(void *arg)
{
    coro_sleep(1.2); /* past the rate limit's one-second window */
    latency_spin(*(double *)arg);
    return 0;
}

Test(latency, a_burst_is_rate_limited_and_the_next_warning_counts_the_rest)
{
    coro_set_latency_warning(0.05); /* 10 ms */
    enum { BURST = 10 };
    double sec = 0.04; /* four times the threshold: never missed */
    for (int i = 0; i < BURST; i++)
        cr_assert_not_null(coro_spawn(spin_and_end, &sec, "burst"));
    coro_t *late = coro_spawn(late_spin, &sec, "late");
    char tag[64];
    snprintf(tag, sizeof tag, "#%d 'late'", coro_id(late));
    capture_begin();
    cr_assert_eq(coro_event_loop(), 0);
    const char *out = capture_end();
    /* Five of the burst, then the late one in a new window. */
    cr_assert_eq(count_of(out, "latency: "), 5 + 1);
    cr_assert_eq(count_of(out, "'burst' held the CPU"), 5);
    cr_assert_geq(held_ms(out, tag), 10);
    char want[96];
    snprintf(want, sizeof want, "; %d more warnings suppressed before this one",
             BURST - 5);
    cr_assert(strstr(out, want) != NULL, "expected: %s", want);
    cr_assert_eq(count_of(out, "suppressed"), 1);
}

Test(latency, bad_factors_fail_with_einval_and_change_nothing)
{
    cr_assert_eq(coro_latency_warning(), 1.0, "the default is 1 (0.2 s)");
    const double bad[] = {-1, -0.001, NAN, INFINITY, 1e7};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        cr_assert_eq(coro_set_latency_warning(bad[i]), -1.0);
        cr_assert_eq(errno, EINVAL);
        cr_assert_eq(coro_latency_warning(), 1.0);
    }
    cr_assert_eq(coro_set_latency_warning(2.5), 1.0);
    cr_assert_eq(coro_set_latency_warning(0), 2.5);
    cr_assert_eq(coro_set_latency_warning(1), 0.0);
}

Test(latency, the_watchdog_signal_can_be_chosen_or_turned_off)
{
    int def = coro_watchdog_signal();
    cr_assert_eq(def, SIGRTMAX - 3);
    const int bad[] = {-1, SIGKILL, SIGSEGV, SIGPROF, SIGRTMAX + 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        cr_assert_eq(coro_set_watchdog_signal(bad[i]), -1);
        cr_assert_eq(errno, EINVAL);
    }
    cr_assert_eq(coro_watchdog_signal(), def);
    cr_assert_eq(coro_set_watchdog_signal(SIGUSR2), def);
    cr_assert_eq(coro_set_watchdog_signal(0), SIGUSR2);

    /* Off: the warning still comes, without a call stack. */
    coro_set_latency_warning(0.25);
    double sec = 0.12;
    cr_assert_not_null(coro_spawn(spin_and_end, &sec, "unwatched"));
    capture_begin();
    cr_assert_eq(coro_event_loop(), 0);
    const char *out = capture_end();
    cr_assert_eq(count_of(out, "latency: "), 1);
    cr_assert(strstr(out, "watchdog") == NULL);
    cr_assert_eq(coro_set_watchdog_signal(def), 0);
}

Test(latency, another_watchdog_signal_still_samples_the_slow_slice)
{
    cr_assert_geq(coro_set_watchdog_signal(SIGRTMIN + 1), 0);
    coro_set_latency_warning(0.25);
    double sec = 0.15;
    cr_assert_not_null(coro_spawn(spin_and_end, &sec, "rt"));
    capture_begin();
    cr_assert_eq(coro_event_loop(), 0);
    const char *out = capture_end();
    cr_assert(sampled_spin(out));
}

/* A coroutine that turns warnings on in the middle of its own slice. */
static int turn_on_then_spin(void *arg)
{
    coro_set_latency_warning(0.25);
    latency_spin(*(double *)arg);
    return 0;
}

Test(latency, warnings_turned_on_inside_a_slice_cover_that_slice)
{
    coro_set_latency_warning(0);
    double sec = 0.12;
    cr_assert_not_null(coro_spawn(turn_on_then_spin, &sec, "late-on"));
    capture_begin();
    cr_assert_eq(coro_event_loop(), 0);
    const char *out = capture_end();
    cr_assert_eq(count_of(out, "latency: "), 1);
    cr_assert(strstr(out, "resumed at unknown; yielded at exit") != NULL);
    cr_assert(sampled_spin(out), "the watch starts with the setting");
}

static int many_short_yields(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(coro_yield(), 0);
    return 0;
}

Test(latency, short_slices_print_nothing)
{
    coro_set_latency_warning(0.25);
    cr_assert_not_null(coro_spawn(many_short_yields, NULL, "a"));
    cr_assert_not_null(coro_spawn(many_short_yields, NULL, "b"));
    capture_begin();
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_str_eq(capture_end(), "");
}
