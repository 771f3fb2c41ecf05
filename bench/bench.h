/*
 * Helpers shared by the benchmark programs: a nanosecond clock, the
 * optional count argument, medians, and fatal errors.  Header-only so each
 * program stays one translation unit plus this file.
 */
#ifndef CORO_BENCH_H
#define CORO_BENCH_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Runs per measurement; the median of them is reported. */
#define BENCH_RUNS 5
_Static_assert(BENCH_RUNS % 2 == 1, "the median needs an odd run count");

/* CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t bench_now_nsec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Print "bench: what: strerror(errno)" and exit 1.  For failures of the
 * library under test, which make the numbers meaningless. */
static inline _Noreturn void bench_die(const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

/*
 * Parse the command line: no argument gives default_count, "--help" or
 * "-h" prints usage to stdout and exits 0, and anything but one integer
 * >= min_count prints usage to stderr and exits 2.
 */
static inline long bench_parse_count(int argc, char **argv, long default_count,
                                     long min_count, const char *usage)
{
    if (argc < 2)
        return default_count;
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, stdout);
        exit(0);
    }
    char *end;
    errno = 0;
    long n = strtol(argv[1], &end, 10);
    if (argc > 2 || errno != 0 || end == argv[1] || *end != '\0' ||
        n < min_count) {
        fputs(usage, stderr);
        exit(2);
    }
    return n;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median and spread of one measurement's BENCH_RUNS results. */
struct bench_summary {
    double median; /* the middle value (BENCH_RUNS is odd) */
    double min, max;
};

static inline struct bench_summary bench_summarize(const double v[BENCH_RUNS])
{
    double s[BENCH_RUNS];
    memcpy(s, v, sizeof s);
    qsort(s, BENCH_RUNS, sizeof s[0], bench_cmp_double);
    return (struct bench_summary){
        .median = s[BENCH_RUNS / 2], .min = s[0], .max = s[BENCH_RUNS - 1]};
}

#endif /* CORO_BENCH_H */
