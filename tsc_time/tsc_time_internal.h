/*
 * tsc_time internals shared with coro (never installed).
 *
 * coro times every context switch, so it reads the counter through
 * tsc__read(), which compiles to a single rdtsc (or isb + mrs) when the
 * hardware counter is in use.  Callers must call tsc_init() once before
 * their first tsc__read(), and that call must happen-before the read (coro
 * does it when it creates a scheduler): tsc__hw is a plain variable written
 * during calibration, and the inline path does not check for calibration.
 * A caller that forgets still gets correct ticks, only slowly, because the
 * out-of-line path calibrates first.
 */
#ifndef TSC_TIME_INTERNAL_H
#define TSC_TIME_INTERNAL_H

#include <stdint.h>

#include "tsc_time/tsc_time.h"

/*
 * 1 when ticks come from the hardware counter (rdtsc or cntvct_el0), 0 when
 * they are CLOCK_MONOTONIC nanoseconds.  Written once, by calibration.
 */
extern __attribute__((visibility("hidden"))) int tsc__hw;

/* The out-of-line read: calibrates if needed, then reads either source. */
__attribute__((visibility("hidden"))) int64_t tsc__read_slow(void);

/*
 * The raw hardware counter, one section per architecture.  Where there is
 * none, tsc__hw stays 0 and this is never called.
 */
#if defined(__x86_64__)
static inline int64_t tsc__read_hw(void)
{
    uint32_t lo, hi;

    /* No fence: callers time intervals far longer than the reorder window. */
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return (int64_t)((uint64_t)hi << 32 | lo);
}
#elif defined(__aarch64__)
static inline int64_t tsc__read_hw(void)
{
    uint64_t v;

    /* The isb keeps the read from being speculated ahead of earlier code,
     * which could otherwise make two reads appear to go backwards. */
    __asm__ __volatile__("isb\n\tmrs %0, cntvct_el0" : "=r"(v) : : "memory");
    return (int64_t)v;
}
#else
static inline int64_t tsc__read_hw(void)
{
    return tsc__read_slow();
}
#endif

/* The current tick count, the same value tsc_now() would return. */
static inline int64_t tsc__read(void)
{
    if (__builtin_expect(tsc__hw, 1))
        return tsc__read_hw();
    return tsc__read_slow();
}

#endif /* TSC_TIME_INTERNAL_H */
