/*
 * tsc_time: a high-resolution clock read from the CPU's time-stamp counter.
 *
 * Ticks are read with rdtsc on x86-64 (when the TSC is invariant) or from
 * the virtual counter (cntvct_el0) on aarch64.  Everywhere else, or when
 * the environment variable TSC_TIME_SOURCE=clock is set, ticks are
 * nanoseconds of CLOCK_MONOTONIC read through clock_gettime().
 *
 * The tick rate is calibrated against CLOCK_MONOTONIC at start-up and
 * refined on every tsc_resync(), which also re-anchors the relation between
 * ticks and POSIX (wall-clock) time.  Ticks are signed 64-bit values: a
 * counter running at 5 GHz takes 58 years to reach INT64_MAX, and signed
 * values make differences and "never" (INT64_MAX) easy to handle.
 *
 * Every function is thread-safe.  The first call of any function calibrates
 * the clock (a few milliseconds, once per process); tsc_init() lets a
 * program choose when that happens.
 */
#ifndef TSC_TIME_H
#define TSC_TIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TSC_API
#define TSC_API __attribute__((visibility("default")))
#endif

/* Where ticks come from, as reported by tsc_source(). */
typedef enum tsc_source {
    TSC_SOURCE_RDTSC = 1,  /* x86-64 rdtsc, invariant TSC */
    TSC_SOURCE_CNTVCT = 2, /* aarch64 virtual counter */
    TSC_SOURCE_CLOCK = 3   /* clock_gettime(CLOCK_MONOTONIC), ns */
} tsc_source_t;

/*
 * Calibrate the clock if that has not happened yet.  Idempotent.  Reads
 * TSC_TIME_SOURCE from the environment: "clock" forces the clock_gettime
 * fallback, "tsc" or "auto" (the default) use the hardware counter where
 * it is usable.  Returns 0; -1 with errno EINVAL if TSC_TIME_SOURCE holds
 * any other value (the clock then uses the automatic choice).
 */
TSC_API int tsc_init(void);

/* The current tick count.  Monotonic, never blocks. */
TSC_API int64_t tsc_now(void);

/* Calibrated ticks per second (> 0). */
TSC_API int64_t tsc_ticks_per_sec(void);

/* The source in use, and its name ("rdtsc", "cntvct", "clock_gettime"). */
TSC_API tsc_source_t tsc_source(void);
TSC_API const char *tsc_source_name(void);

/*
 * Conversions of durations.  Integer conversions round toward zero and
 * saturate at INT64_MIN/INT64_MAX instead of overflowing.  The double
 * variants are for human-scale values; NaN converts to 0.
 */
TSC_API int64_t tsc_ticks_to_usec(int64_t ticks);
TSC_API int64_t tsc_usec_to_ticks(int64_t usec);
TSC_API int64_t tsc_ticks_to_nsec(int64_t ticks);
TSC_API int64_t tsc_nsec_to_ticks(int64_t nsec);
TSC_API double tsc_ticks_to_sec(int64_t ticks);
TSC_API int64_t tsc_sec_to_ticks(double sec);

/*
 * Conversions between absolute tick counts and POSIX time (CLOCK_REALTIME,
 * microseconds or seconds since 1970-01-01 UTC), through the relation
 * anchored at calibration and re-anchored by tsc_resync().
 */
TSC_API int64_t tsc_ticks_to_posix_usec(int64_t ticks);
TSC_API int64_t tsc_posix_usec_to_ticks(int64_t posix_usec);
TSC_API double tsc_ticks_to_posix_sec(int64_t ticks);
TSC_API int64_t tsc_posix_sec_to_ticks(double posix_sec);

/* POSIX time now, from the tick clock (cheap: no system call on rdtsc). */
TSC_API int64_t tsc_now_posix_usec(void);

/*
 * Refine the tick rate over the whole time since calibration and re-anchor
 * the POSIX relation, absorbing drift and wall-clock steps.  The coro event
 * loop calls it periodically; call it yourself after setting the clock.
 * Returns 0.
 */
TSC_API int tsc_resync(void);

#ifdef __cplusplus
}
#endif

#endif /* TSC_TIME_H */
