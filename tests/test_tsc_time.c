/*
 * Tests of tsc_time.  Criterion runs each test in its own process, so each
 * one calibrates afresh, and a test may set TSC_TIME_SOURCE before its
 * first tsc_ call to choose the source.  Timing checks bracket the clocks
 * they compare and retry, so a noisy shared machine does not fail them.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tsc_time/tsc_time.h"

#define NSEC_PER_SEC 1000000000LL
#define USEC_PER_SEC 1000000LL
#define MSEC_NSEC    1000000LL

/* Allowed gap between tsc_now_posix_usec() and CLOCK_REALTIME; it covers
 * calibration error accumulated over the test, not scheduling noise. */
#define POSIX_SLACK_USEC 5000

TestSuite(tsc_time, .timeout = 30);

static int64_t clock_nsec(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static void sleep_nsec(int64_t nsec)
{
    struct timespec ts = {nsec / NSEC_PER_SEC, nsec % NSEC_PER_SEC};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        continue;
}

/* Ticks and CLOCK_MONOTONIC at one instant: the tightest of several
 * brackets, so a preemption between the reads cannot skew a measurement. */
struct pair {
    int64_t ticks;
    int64_t nsec;
};

static struct pair pair_now(void)
{
    struct pair best = {0, 0};
    int64_t best_width = INT64_MAX;

    for (int i = 0; i < 7; i++) {
        int64_t before = tsc_now();
        int64_t nsec = clock_nsec(CLOCK_MONOTONIC);
        int64_t width = tsc_now() - before;
        if (width < best_width) {
            best_width = width;
            best = (struct pair){before + width / 2, nsec};
        }
    }
    return best;
}

static int64_t abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

/* The exact answer: C division of 128-bit values truncates toward zero. */
static int64_t expect(int64_t x, int64_t num, int64_t den)
{
    __int128 v = (__int128)x * num / den;
    if (v > INT64_MAX)
        return INT64_MAX;
    if (v < INT64_MIN)
        return INT64_MIN;
    return (int64_t)v;
}

/* Inputs across every magnitude, both signs, plus scattered odd values. */
static size_t magnitudes(int64_t *out, size_t cap)
{
    size_t n = 0;
    uint64_t lcg = 12345;

    for (int64_t p = 1; p > 0; p = p <= INT64_MAX / 10 ? p * 10 : 0) {
        int64_t v[] = {p, p - 1, p + 7, p / 3 * 2 + 1};
        for (size_t i = 0; i < 4 && n + 2 <= cap; i++) {
            out[n++] = v[i];
            out[n++] = -v[i];
        }
    }
    for (int i = 0; i < 200 && n + 1 <= cap; i++) {
        lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
        out[n++] = (int64_t)lcg >> (i % 63);
    }
    int64_t edges[] = {0, INT64_MAX, INT64_MIN, INT64_MAX / 2, INT64_MIN + 1};
    for (size_t i = 0; i < 5 && n < cap; i++)
        out[n++] = edges[i];
    return n;
}

Test(tsc_time, now_never_goes_backwards)
{
    int64_t prev = tsc_now();

    for (int i = 0; i < 1000000; i++) {
        int64_t now = tsc_now();
        cr_assert_geq(now, prev, "read %d went from %lld to %lld", i,
                      (long long)prev, (long long)now);
        prev = now;
    }
    sleep_nsec(MSEC_NSEC);
    cr_assert_gt(tsc_now(), prev, "the clock stood still over 1 ms");
}

Test(tsc_time, calibration_is_within_one_percent_of_clock_monotonic)
{
    double best = 1.0;

    /* Best of three, each over 200 ms, so one unlucky run cannot fail. */
    for (int attempt = 0; attempt < 3 && best > 0.0001; attempt++) {
        struct pair a = pair_now();
        sleep_nsec(200 * MSEC_NSEC);
        struct pair b = pair_now();
        double ratio = (double)tsc_ticks_to_nsec(b.ticks - a.ticks) /
                       (double)(b.nsec - a.nsec);
        double error = ratio > 1 ? ratio - 1 : 1 - ratio;
        if (error < best)
            best = error;
    }
    cr_log_info("%s at %lld Hz, error %.5f%%", tsc_source_name(),
                (long long)tsc_ticks_per_sec(), best * 100);
    cr_assert_lt(best, 0.01, "calibration is off by %.4f%%", best * 100);
}

/* The conversions use exactly tsc_ticks_per_sec(), so the test can demand
 * the exact truncated quotient rather than a tolerance. */
Test(tsc_time, integer_conversions_are_exact_and_round_toward_zero)
{
    int64_t hz = tsc_ticks_per_sec();
    int64_t x[300];
    size_t n = magnitudes(x, 300);

    cr_assert_gt(hz, 0);
    for (size_t i = 0; i < n; i++) {
        long long v = (long long)x[i];
        cr_assert_eq(tsc_ticks_to_usec(x[i]), expect(x[i], USEC_PER_SEC, hz),
                     "ticks_to_usec(%lld)", v);
        cr_assert_eq(tsc_usec_to_ticks(x[i]), expect(x[i], hz, USEC_PER_SEC),
                     "usec_to_ticks(%lld)", v);
        cr_assert_eq(tsc_ticks_to_nsec(x[i]), expect(x[i], NSEC_PER_SEC, hz),
                     "ticks_to_nsec(%lld)", v);
        cr_assert_eq(tsc_nsec_to_ticks(x[i]), expect(x[i], hz, NSEC_PER_SEC),
                     "nsec_to_ticks(%lld)", v);
    }
    cr_assert_eq(tsc_ticks_to_usec(hz), USEC_PER_SEC);
    cr_assert_eq(tsc_ticks_to_usec(hz - 1), USEC_PER_SEC - 1);
    cr_assert_eq(tsc_ticks_to_usec(-(hz - 1)), -(USEC_PER_SEC - 1));
    cr_assert_eq(tsc_usec_to_ticks(USEC_PER_SEC), hz);
    cr_assert_eq(tsc_nsec_to_ticks(-NSEC_PER_SEC), -hz);
}

Test(tsc_time, integer_conversions_saturate_instead_of_overflowing)
{
    /* Every plausible counter runs at 1 MHz or faster. */
    int64_t ticks_per_usec = tsc_ticks_per_sec() / USEC_PER_SEC;
    int64_t too_many_usec = INT64_MAX / ticks_per_usec + 1;

    cr_assert_eq(tsc_usec_to_ticks(INT64_MAX), INT64_MAX);
    cr_assert_eq(tsc_usec_to_ticks(INT64_MIN), INT64_MIN);
    cr_assert_eq(tsc_usec_to_ticks(too_many_usec), INT64_MAX);
    cr_assert_eq(tsc_usec_to_ticks(-too_many_usec), INT64_MIN);
    cr_assert_lt(tsc_ticks_to_usec(INT64_MAX), INT64_MAX);
    cr_assert_gt(tsc_ticks_to_usec(INT64_MIN), INT64_MIN);
}

/* A unit smaller than a tick (ns at a slow counter) can lose a whole
 * tick's worth, hence the unit-per-tick term in each tolerance. */
Test(tsc_time, usec_and_nsec_round_trip_within_one_unit)
{
    int64_t hz = tsc_ticks_per_sec();
    int64_t x[300];
    size_t n = magnitudes(x, 300);

    for (size_t i = 0; i < n; i++) {
        int64_t t = tsc_usec_to_ticks(x[i]);
        if (t != INT64_MAX && t != INT64_MIN)
            cr_assert_leq(abs64(tsc_ticks_to_usec(t) - x[i]),
                          USEC_PER_SEC / hz + 1, "usec %lld", (long long)x[i]);
        t = tsc_nsec_to_ticks(x[i]);
        if (t != INT64_MAX && t != INT64_MIN)
            cr_assert_leq(abs64(tsc_ticks_to_nsec(t) - x[i]),
                          NSEC_PER_SEC / hz + 1, "nsec %lld", (long long)x[i]);
        /* From ticks and back loses at most one unit's worth of ticks. */
        int64_t u = tsc_ticks_to_usec(x[i]);
        cr_assert_leq(abs64(tsc_usec_to_ticks(u) - x[i]), hz / USEC_PER_SEC + 1,
                      "ticks %lld", (long long)x[i]);
    }
}

Test(tsc_time, seconds_round_trip_and_saturate)
{
    int64_t hz = tsc_ticks_per_sec();
    int64_t x[300];
    size_t n = magnitudes(x, 300);

    cr_assert_eq(tsc_ticks_to_sec(hz), 1.0);
    cr_assert_eq(tsc_sec_to_ticks(1.0), hz);
    cr_assert_eq(tsc_sec_to_ticks(-2.0), -2 * hz);
    cr_assert_eq(tsc_sec_to_ticks(NAN), 0);
    cr_assert_eq(tsc_sec_to_ticks(INFINITY), INT64_MAX);
    cr_assert_eq(tsc_sec_to_ticks(-INFINITY), INT64_MIN);
    cr_assert_eq(tsc_sec_to_ticks(1e300), INT64_MAX);
    cr_assert_eq(tsc_sec_to_ticks(-1e300), INT64_MIN);
    for (size_t i = 0; i < n; i++) {
        if (x[i] == INT64_MIN || x[i] == INT64_MAX)
            continue; /* not representable in a double */
        int64_t back = tsc_sec_to_ticks(tsc_ticks_to_sec(x[i]));
        /* Doubles hold 53 bits: allow a few ulps of the value. */
        cr_assert_leq(abs64(back - x[i]), abs64(x[i]) / (1LL << 50) + 1,
                      "ticks %lld came back as %lld", (long long)x[i],
                      (long long)back);
    }
}

/* Fifty years either side of now, in steps that hit odd values. */
Test(tsc_time, posix_conversions_round_trip)
{
    int64_t hz = tsc_ticks_per_sec();
    int64_t now = tsc_now();
    int64_t year = 366 * 86400 * hz;

    for (int64_t t = now - 50 * year; t < now + 50 * year; t += year / 7) {
        int64_t usec = tsc_ticks_to_posix_usec(t);
        int64_t back = tsc_posix_usec_to_ticks(usec);
        cr_assert_leq(abs64(back - t), hz / USEC_PER_SEC + 1);
        cr_assert_leq(abs64(tsc_ticks_to_posix_usec(back) - usec), 1);
        double sec = tsc_ticks_to_posix_sec(t);
        double diff = sec - (double)usec / USEC_PER_SEC;
        cr_assert(diff > -2e-6 && diff < 2e-6, "posix sec off by %g", diff);
        /* Seconds since 1970 in a double resolve to about 0.5 us. */
        cr_assert_leq(abs64(tsc_posix_sec_to_ticks(sec) - t), hz / 100000 + 1);
    }
    cr_assert_eq(tsc_posix_usec_to_ticks(INT64_MAX), INT64_MAX);
    cr_assert_eq(tsc_posix_usec_to_ticks(INT64_MIN), INT64_MIN);
    cr_assert_eq(tsc_posix_sec_to_ticks(NAN), 0);
    cr_assert_eq(tsc_posix_sec_to_ticks(INFINITY), INT64_MAX);
}

/* tsc_now_posix_usec() falls within the slack of a CLOCK_REALTIME bracket. */
static void expect_posix_matches_realtime(void)
{
    int64_t before = clock_nsec(CLOCK_REALTIME) / 1000;
    int64_t usec = tsc_now_posix_usec();
    int64_t after = clock_nsec(CLOCK_REALTIME) / 1000;

    cr_assert_geq(usec, before - POSIX_SLACK_USEC, "%lld us behind",
                  (long long)(before - usec));
    cr_assert_leq(usec, after + POSIX_SLACK_USEC, "%lld us ahead",
                  (long long)(usec - after));
}

Test(tsc_time, now_posix_usec_is_within_a_few_ms_of_clock_realtime)
{
    expect_posix_matches_realtime();
    sleep_nsec(50 * MSEC_NSEC);
    expect_posix_matches_realtime();
}

Test(tsc_time, resync_keeps_posix_time_consistent)
{
    int64_t hz = tsc_ticks_per_sec();
    int64_t t = tsc_now();
    int64_t usec = tsc_ticks_to_posix_usec(t);

    /* Long enough for resync to re-measure the rate, not only re-anchor. */
    sleep_nsec(150 * MSEC_NSEC);
    cr_assert_eq(tsc_resync(), 0);
    cr_assert_leq(abs64(tsc_ticks_per_sec() - hz), hz / 100);
    cr_assert_leq(abs64(tsc_ticks_to_posix_usec(t) - usec), 1000,
                  "an old tick moved by %lld us",
                  (long long)(tsc_ticks_to_posix_usec(t) - usec));
    expect_posix_matches_realtime();
    int64_t back = tsc_posix_usec_to_ticks(tsc_ticks_to_posix_usec(t));
    cr_assert_leq(abs64(back - t), tsc_ticks_per_sec() / USEC_PER_SEC + 1);
}

/* A torn parameter set (a new anchor with an old rate, or half a
 * multiplier) shows up as a conversion far from the values before. */
struct reader {
    atomic_int *stop; /* set by the test when the resyncs are done */
    int64_t ticks;    /* a fixed tick count to convert */
    int64_t usec;     /* its POSIX time before any resync */
    int64_t hz;       /* the rate before any resync */
    int64_t bad;      /* conversions that were way off, written by reader */
};

static void *read_while_resyncing(void *arg)
{
    struct reader *r = arg;

    while (!atomic_load(r->stop)) {
        if (abs64(tsc_ticks_to_posix_usec(r->ticks) - r->usec) > 1000)
            r->bad++;
        if (abs64(tsc_usec_to_ticks(USEC_PER_SEC) - r->hz) > r->hz / 100)
            r->bad++;
    }
    return NULL;
}

Test(tsc_time, readers_see_whole_parameter_sets_while_resyncing)
{
    atomic_int stop = 0;
    struct reader r[2];
    pthread_t thread[2];

    for (int i = 0; i < 2; i++) {
        r[i] = (struct reader){&stop, tsc_now(), 0, tsc_ticks_per_sec(), 0};
        r[i].usec = tsc_ticks_to_posix_usec(r[i].ticks);
        cr_assert_eq(
            pthread_create(&thread[i], NULL, read_while_resyncing, &r[i]), 0);
    }
    for (int i = 0; i < 2000; i++)
        cr_assert_eq(tsc_resync(), 0);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(thread[i], NULL);
        cr_assert_eq(r[i].bad, 0, "reader %d saw %lld bad conversions", i,
                     (long long)r[i].bad);
    }
}

/* Calibration reads the environment once per process; this process has
 * not called tsc_time yet, so setting the variable first is enough. */
Test(tsc_time, clock_source_can_be_forced_through_the_environment)
{
    setenv("TSC_TIME_SOURCE", "clock", 1);
    cr_assert_eq(tsc_init(), 0);
    cr_assert_eq(tsc_source(), TSC_SOURCE_CLOCK);
    cr_assert_str_eq(tsc_source_name(), "clock_gettime");
    cr_assert_eq(tsc_ticks_per_sec(), NSEC_PER_SEC);

    /* Ticks are CLOCK_MONOTONIC nanoseconds, so they fall in its bracket. */
    int64_t before = clock_nsec(CLOCK_MONOTONIC);
    int64_t now = tsc_now();
    int64_t after = clock_nsec(CLOCK_MONOTONIC);
    cr_assert(before <= now && now <= after);

    /* At exactly 1 GHz every conversion is a plain scale. */
    cr_assert_eq(tsc_ticks_to_usec(1999), 1);
    cr_assert_eq(tsc_ticks_to_usec(-1999), -1);
    cr_assert_eq(tsc_ticks_to_nsec(INT64_MIN), INT64_MIN);
    cr_assert_eq(tsc_usec_to_ticks(-5), -5000);
    cr_assert_eq(tsc_usec_to_ticks(INT64_MAX / 1000 + 1), INT64_MAX);
    expect_posix_matches_realtime();
    cr_assert_eq(tsc_resync(), 0);
    cr_assert_eq(tsc_ticks_per_sec(), NSEC_PER_SEC);
}

Test(tsc_time, tsc_and_auto_are_accepted_source_names)
{
    setenv("TSC_TIME_SOURCE", "tsc", 1);
    cr_assert_eq(tsc_init(), 0);
    cr_assert_eq(tsc_init(), 0, "a second init must change nothing");
    setenv("TSC_TIME_SOURCE", "auto", 1);
    cr_assert_eq(tsc_init(), 0);
}

Test(tsc_time, unknown_source_name_fails_with_einval_but_the_clock_works)
{
    setenv("TSC_TIME_SOURCE", "sundial", 1);
    errno = 0;
    cr_assert_eq(tsc_init(), -1);
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_eq(tsc_init(), -1, "the failure is reported on every call");
    cr_assert_eq(errno, EINVAL);

    /* The bad value falls back to the automatic choice. */
    tsc_source_t source = tsc_source();
    cr_assert(source == TSC_SOURCE_RDTSC || source == TSC_SOURCE_CNTVCT ||
              source == TSC_SOURCE_CLOCK);
    cr_assert_gt(tsc_ticks_per_sec(), 0);
    int64_t t = tsc_now();
    sleep_nsec(MSEC_NSEC);
    cr_assert_gt(tsc_now(), t);
    expect_posix_matches_realtime();
}

Test(tsc_time, source_name_matches_the_source)
{
    const char *name[] = {NULL, "rdtsc", "cntvct", "clock_gettime"};

    cr_assert_str_eq(tsc_source_name(), name[tsc_source()]);
}
