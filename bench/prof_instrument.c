/*
 * prof_instrument: what the profiler's instrumenting mode costs per call
 * of an instrumented function, side by side in one run:
 *
 *   plain          the function built without -finstrument-functions
 *   instrumented   built with it, the profiler stopped (the hooks return
 *                  at once)
 *   profiled       built with it, the profiler running in a coroutine
 *                  (two TSC reads, a tree lookup, a push and a pop)
 *
 * The three are interleaved BENCH_RUNS times and the median ns per call
 * is shown, with the difference to plain.
 *
 * Run: build/bench/prof_instrument [COUNT]    (default 10,000,000 calls)
 */
#include "bench.h"

#include <coro/coro.h>
#include <coro/profiler.h>
#include <stdint.h>

#define DEFAULT_COUNT 10000000L

static const char usage[] =
    "usage: prof_instrument [COUNT]\n"
    "Time COUNT (default 10000000, at least 1000) calls of a tiny function\n"
    "built plainly, built with -finstrument-functions, and built so while\n"
    "the profiler runs; print the median ns per call of 5 interleaved "
    "runs.\n";

uint64_t prof_work_plain(uint64_t x);
uint64_t prof_work_inst(uint64_t x);

static long count;
static volatile uint64_t sink;

/* ns per call of fn over count calls. */
static double time_calls(uint64_t (*fn)(uint64_t))
{
    uint64_t x = sink;
    int64_t t0 = bench_now_nsec();
    for (long i = 0; i < count; i++)
        x = fn(x);
    int64_t t1 = bench_now_nsec();
    sink = x;
    return (double)(t1 - t0) / (double)count;
}

static int run(void *arg)
{
    double (*r)[BENCH_RUNS] = arg;
    coro_prof_opts_t inst = {.mode = CORO_PROF_INSTRUMENT};
    for (int k = 0; k < BENCH_RUNS; k++) {
        r[0][k] = time_calls(prof_work_plain);
        r[1][k] = time_calls(prof_work_inst);
        if (coro_prof_start(&inst) != 0)
            bench_die("coro_prof_start");
        r[2][k] = time_calls(prof_work_inst);
        if (coro_prof_stop() != 0 || coro_prof_reset() != 0)
            bench_die("coro_prof_stop");
    }
    return 0;
}

int main(int argc, char **argv)
{
    count = bench_parse_count(argc, argv, DEFAULT_COUNT, 1000, usage);
    coro_set_latency_warning(0); /* the benchmark holds the CPU on purpose */
    static double r[3][BENCH_RUNS];
    /* Warm up: the profiler's tree and the caches. */
    long n = count;
    count = n / 10 + 1;
    if (coro_spawn(run, r, "warm-up") == NULL || coro_event_loop() != 0)
        bench_die("warm-up");
    count = n;
    if (coro_spawn(run, r, "bench") == NULL || coro_event_loop() != 0)
        bench_die("run");
    static const char *const names[] = {"plain", "instrumented, stopped",
                                        "instrumented, profiling"};
    printf("prof_instrument: %ld calls, median of %d runs\n", count,
           BENCH_RUNS);
    printf("%-26s %10s %10s %12s\n", "", "ns/call", "min", "vs plain");
    double plain = bench_summarize(r[0]).median;
    for (int i = 0; i < 3; i++) {
        struct bench_summary s = bench_summarize(r[i]);
        printf("%-26s %10.2f %10.2f %+12.2f\n", names[i], s.median, s.min,
               s.median - plain);
    }
    return 0;
}
