/*
 * The profiler: instrumenting (this file is built with
 * -finstrument-functions through coro_profile_instrument()) and sampling
 * modes, coroutine-aware charging, recursion, regions, the offload pool,
 * control while running, the reports and bad input.
 *
 * The workload functions are global so that -rdynamic names them, and
 * burn a known number of multiply-adds each: their relative costs are
 * known, their absolute costs are not (the machine may be slow or busy),
 * so every check compares shares with generous bounds.
 */
#include "helpers.h"
#include "prof_check.h"

#include <coro/profiler.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

TestSuite(profiler, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 60);

/* ------------------------------------------------------------------ */
/* Workload                                                            */

#define UNIT 100000 /* multiply-adds: about 0.1 ms */

static volatile uint64_t sink;

#define BURN(n) PROF_BURN(sink, n)

/* Exported (for names) but declared here only: tests are one file. */
void prof_light(void);
void prof_heavy(void);
void prof_recurse(int depth);
void prof_with_region(void);
void prof_sample_hot(void);
void prof_sample_cold(void);
intptr_t prof_offloaded(void *arg);
int prof_sleepy(void *arg);
int prof_yielder(void *arg);
int prof_hog(void *arg);

__attribute__((noinline)) void prof_light(void)
{
    BURN(UNIT);
}

__attribute__((noinline)) void prof_heavy(void)
{
    BURN(4 * UNIT);
}

__attribute__((noinline)) void prof_recurse(int depth)
{
    BURN(UNIT / 2);
    if (depth > 1)
        prof_recurse(depth - 1);
}

__attribute__((noinline)) void prof_with_region(void)
{
    {
        CORO_PROF_SCOPE("region-x");
        BURN(UNIT);
    }
    coro_prof_region_begin("region-y");
    BURN(UNIT);
    coro_prof_region_end();
}

__attribute__((noinline)) void prof_sample_hot(void)
{
    BURN(4 * UNIT);
}

__attribute__((noinline)) void prof_sample_cold(void)
{
    BURN(UNIT);
}

__attribute__((noinline)) intptr_t prof_offloaded(void *arg)
{
    (void)arg;
    BURN(8 * UNIT);
    return 7;
}

#define SLEEPS 20
#define SLEEP_SEC 0.005

/* Work, then sleep, twenty times. */
int prof_sleepy(void *arg)
{
    (void)arg;
    for (int i = 0; i < SLEEPS; i++) {
        prof_light();
        prof_heavy();
        coro_sleep(SLEEP_SEC);
    }
    return 0;
}

/* Light work, and yield to prof_hog in between. */
int prof_yielder(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++) {
        prof_light();
        coro_yield();
    }
    return 0;
}

int prof_hog(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++) {
        for (int j = 0; j < 3; j++)
            prof_heavy();
        coro_yield();
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static struct pc_profile prof; /* large: not on a coroutine's stack */

/* fmt's report of the data so far, as a string (free it). */
static char *report(coro_prof_format_t fmt, int top)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cr_assert_eq(coro_prof_write(f, fmt, top), 0, "write: %s",
                 strerror(errno));
    cr_assert_eq(fclose(f), 0);
    return buf;
}

/* The data so far, read back from the saved format. */
static const struct pc_profile *snap(void)
{
    char *raw = report(CORO_PROF_RAW, 0);
    cr_assert(pc_parse(raw, &prof), "the saved format parses");
    free(raw);
    return &prof;
}

static const struct pc_fn *must_fn(const struct pc_profile *p,
                                   const char *name)
{
    const struct pc_fn *f = pc_fn(p, name);
    cr_assert_not_null(f, "%s is in the profile", name);
    return f;
}

static double sec(const struct pc_profile *p, int64_t ticks)
{
    return (double)ticks / (double)p->ticks_per_sec;
}

static void start_instrumenting(void)
{
    coro_prof_opts_t o = {.mode = CORO_PROF_INSTRUMENT};
    cr_assert_eq(coro_prof_start(&o), 0, "start: %s", strerror(errno));
}

static double cpu_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* Instrumenting                                                       */

Test(profiler, instrumented_functions_come_out_in_the_order_of_their_cost)
{
    start_instrumenting();
    cr_assert_not_null(coro_spawn(prof_sleepy, NULL, "sleepy"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    const struct pc_profile *p = snap();
    cr_assert_str_eq(p->mode, "instrument");
    const struct pc_fn *light = must_fn(p, "prof_light");
    const struct pc_fn *heavy = must_fn(p, "prof_heavy");
    cr_assert_eq(light->calls, SLEEPS);
    cr_assert_eq(heavy->calls, SLEEPS);
    cr_assert_eq(pc_edge(p, "prof_sleepy", "prof_heavy"), SLEEPS);
    /* 4 units against 1: heavy's share of the two is 80 %. */
    double share = (double)heavy->excl / (double)(heavy->excl + light->excl);
    cr_assert(share > 0.6 && share < 0.95, "heavy's share %.2f", share);
    /* Leaves: all their time is their own. */
    cr_assert_eq(light->incl, light->excl);
    cr_assert_eq(heavy->incl, heavy->excl);

    char *table = report(CORO_PROF_TABLE, 0);
    char *h = strstr(table, "prof_heavy"), *l = strstr(table, "prof_light");
    cr_assert(h != NULL && l != NULL && h < l,
              "sorted by self time, heavy first:\n%s", table);
    free(table);
    cr_assert_eq(coro_prof_reset(), 0);
}

Test(profiler, sleeping_is_never_a_functions_own_time)
{
    start_instrumenting();
    cr_assert_not_null(coro_spawn(prof_sleepy, NULL, "sleepy"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    const struct pc_profile *p = snap();
    const struct pc_fn *light = must_fn(p, "prof_light");
    const struct pc_fn *heavy = must_fn(p, "prof_heavy");
    const struct pc_fn *sleepy = must_fn(p, "prof_sleepy");
    const struct pc_fn *wait = must_fn(p, "<wait>");
    /* The sleeps add up to 0.1 s at least, spent in the poller. */
    cr_assert_geq(sec(p, wait->excl), SLEEPS * SLEEP_SEC * 0.8,
                  "<wait> %.3f s", sec(p, wait->excl));
    /* prof_sleepy's own time is its loop and the calls into coro, far
     * less than its work; its inclusive time is that plus its callees,
     * not the sleeps. */
    cr_assert_lt(sleepy->excl, heavy->excl / 4);
    int64_t parts = sleepy->excl + light->incl + heavy->incl;
    cr_assert_eq(sleepy->incl, parts, "inclusive = own + callees");
    cr_assert_lt(sec(p, sleepy->incl),
                 sec(p, p->duration) - SLEEPS * SLEEP_SEC * 0.8);
    cr_assert_eq(coro_prof_reset(), 0);
}

Test(profiler, time_while_switched_out_is_not_charged_to_the_coroutine)
{
    start_instrumenting();
    coro_spawn(prof_yielder, NULL, "yielder");
    coro_spawn(prof_hog, NULL, "hog");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    const struct pc_profile *p = snap();
    const struct pc_fn *yielder = must_fn(p, "prof_yielder");
    const struct pc_fn *light = must_fn(p, "prof_light");
    const struct pc_fn *heavy = must_fn(p, "prof_heavy");
    /* prof_yielder was on its coroutine's stack while prof_hog ran its
     * heavy work, ten times: none of that is its time. */
    cr_assert_eq(yielder->incl, yielder->excl + light->incl);
    cr_assert_lt(yielder->incl, heavy->incl / 2,
                 "prof_yielder %.3f ms, prof_heavy %.3f ms",
                 sec(p, yielder->incl) * 1e3, sec(p, heavy->incl) * 1e3);
    /* Per coroutine: what was charged while each ran. */
    int64_t y = -1, h = -1;
    for (int i = 0; i < p->ncoros; i++) {
        if (strcmp(p->coros[i].name, "yielder") == 0)
            y = p->coros[i].charged;
        if (strcmp(p->coros[i].name, "hog") == 0)
            h = p->coros[i].charged;
    }
    cr_assert(y > 0 && h > 0, "both coroutines have a row");
    cr_assert_lt(y, h / 2);
    cr_assert_eq(coro_prof_reset(), 0);
}

static int recurse_ten(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        prof_recurse(5);
    return 0;
}

Test(profiler, recursion_counts_inclusive_time_once)
{
    start_instrumenting();
    coro_spawn(recurse_ten, NULL, "recurse");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    const struct pc_profile *p = snap();
    const struct pc_fn *r = must_fn(p, "prof_recurse");
    cr_assert_eq(r->calls, 50);
    cr_assert_eq(pc_edge(p, "prof_recurse", "prof_recurse"), 40);
    cr_assert_eq(pc_edge(p, "recurse_ten", "prof_recurse"), 10,
                 "static functions are named too");
    /* All the time is prof_recurse's own; counted once per outermost
     * call, its inclusive time equals it (five levels would triple it). */
    cr_assert_eq(r->incl, r->excl);
    cr_assert_eq(coro_prof_reset(), 0);
}

/* Two regions of one name at two addresses, one inside the other: as
 * static functions of one name in two files, which reports merge. */
static const char step_outer[] = "step", step_inner[] = "step";

static int same_names(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++) {
        coro_prof_region_begin(step_outer);
        BURN(UNIT);
        coro_prof_region_begin(step_inner);
        BURN(UNIT);
        coro_prof_region_end();
        coro_prof_region_end();
    }
    return 0;
}

Test(profiler, one_name_counts_its_inclusive_time_once_along_a_path)
{
    start_instrumenting();
    cr_assert_eq(run_in_coro(same_names, NULL), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    const struct pc_profile *p = snap();
    const struct pc_fn *step = must_fn(p, "step");
    cr_assert_eq(step->calls, 10);
    cr_assert_eq(pc_edge(p, "step", "step"), 5);
    /* As for recursion: all the time is step's own, counted once. */
    cr_assert_eq(step->incl, step->excl, "total %ld, self %ld",
                 (long)step->incl, (long)step->excl);
    cr_assert_leq(step->incl, pc_total(p));
    cr_assert_eq(coro_prof_reset(), 0);
}

static int regions(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        prof_with_region();
    coro_prof_region_end(); /* no region open: ignored */
    return 0;
}

Test(profiler, regions_are_timed_like_calls)
{
    start_instrumenting();
    coro_spawn(regions, NULL, "regions");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    const struct pc_profile *p = snap();
    const struct pc_fn *x = must_fn(p, "region-x");
    const struct pc_fn *y = must_fn(p, "region-y");
    const struct pc_fn *f = must_fn(p, "prof_with_region");
    cr_assert_eq(x->calls, 3);
    cr_assert_eq(y->calls, 3);
    cr_assert_eq(pc_edge(p, "prof_with_region", "region-x"), 3);
    cr_assert_gt(x->excl, f->excl, "the burn is the region's");
    char *folded = report(CORO_PROF_FOLDED, 0);
    cr_assert_not_null(strstr(folded, ";prof_with_region;region-y "),
                       "%s", folded);
    free(folded);
    cr_assert_eq(coro_prof_reset(), 0);
}

static int offloads(void *arg)
{
    (void)arg;
    intptr_t res = 0;
    cr_assert_eq(coro_offload(prof_offloaded, NULL, &res), 0);
    cr_assert_eq(res, 7);
    prof_light();
    return 0;
}

Test(profiler, offload_threads_are_never_charged)
{
    start_instrumenting();
    coro_spawn(offloads, NULL, "offloads");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    cr_assert_eq(coro_offload_shutdown(), 0);
    const struct pc_profile *p = snap();
    must_fn(p, "prof_light");
    const struct pc_fn *off = pc_fn(p, "prof_offloaded");
    cr_assert(off == NULL || (off->calls == 0 && off->excl == 0),
              "the pool's call is not in the profile");
    cr_assert_eq(coro_prof_reset(), 0);
}

Test(profiler, rusage_counts_the_cpu_time_of_each_function)
{
    coro_prof_opts_t o = {.mode = CORO_PROF_INSTRUMENT, .rusage = true};
    cr_assert_eq(coro_prof_start(&o), 0);
    coro_spawn(prof_hog, NULL, "hog");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    const struct pc_profile *p = snap();
    const struct pc_fn *heavy = must_fn(p, "prof_heavy");
    int64_t cpu_us = heavy->ru[0] + heavy->ru[1];
    /* getrusage has tick granularity on some kernels: generous. */
    cr_assert_gt(cpu_us, 0, "user+system of prof_heavy");
    cr_assert_leq(cpu_us, (int64_t)(sec(p, heavy->excl) * 1e6 * 2 + 20000));
    char *table = report(CORO_PROF_TABLE, 0);
    cr_assert_not_null(strstr(table, "utime_us"));
    free(table);
    cr_assert_eq(coro_prof_reset(), 0);
}

/* ------------------------------------------------------------------ */
/* Sampling                                                            */

/* Hot and cold work in two coroutines, CPU-bound for cpu seconds, then
 * a sleep so that the loop waits. */
static double sample_cpu = 0.4;

static int sample_worker(void *arg)
{
    bool hot = arg != NULL;
    double until = cpu_sec() + sample_cpu;
    while (cpu_sec() < until) {
        if (hot)
            prof_sample_hot();
        else
            prof_sample_cold();
        coro_yield();
    }
    return 0;
}

static int sample_sleeper(void *arg)
{
    (void)arg;
    coro_sleep(0.2);
    return 0;
}

Test(profiler, samples_find_the_hot_function_and_the_wait)
{
    SKIP_UNDER_TSAN("ThreadSanitizer delays signals to its own points");
    cr_assert_eq(coro_prof_start(NULL), 0, "start: %s", strerror(errno));
    coro_spawn(sample_worker, "hot", "hot");
    coro_spawn(sample_worker, NULL, "cold");
    cr_assert_eq(coro_event_loop(), 0);
    coro_spawn(sample_sleeper, NULL, "sleeper");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    const struct pc_profile *p = snap();
    cr_assert_str_eq(p->mode, "sample");
    cr_assert_eq(p->hz, 1000);
    const struct pc_fn *hot = must_fn(p, "prof_sample_hot");
    const struct pc_fn *cold = must_fn(p, "prof_sample_cold");
    /* Both coroutines ran about as many calls: 4 units against 1. */
    double share = (double)hot->excl / (double)(hot->excl + cold->excl);
    cr_assert(share > 0.6 && share < 0.95, "hot's share %.2f (%ld, %ld)",
              share, (long)hot->excl, (long)cold->excl);
    cr_assert_gt(hot->excl, 100, "about 300 samples expected");
    /* The caller is on the stack: sample_worker is static, so it is
     * named by the module, and the edge leads from there. */
    cr_assert_gt(hot->incl, 0);
    /* 0.2 s asleep: about 200 samples' worth of waiting. */
    const struct pc_fn *wait = must_fn(p, "<wait>");
    cr_assert_geq(wait->excl, 100, "<wait> %ld", (long)wait->excl);
    cr_assert_leq(wait->excl, 2000);
    cr_assert_eq(must_fn(p, "prof_sample_hot")->calls, 0);
    /* The coroutines' rows: hot was charged most. */
    int64_t h = 0, c = 0;
    for (int i = 0; i < p->ncoros; i++) {
        if (strcmp(p->coros[i].name, "hot") == 0)
            h = p->coros[i].charged;
        if (strcmp(p->coros[i].name, "cold") == 0)
            c = p->coros[i].charged;
    }
    cr_assert_gt(h, 0);
    cr_assert_gt(c, 0);
    cr_assert_eq(p->stack_total, pc_total(p), "stacks add up");
    cr_assert_eq(coro_prof_reset(), 0);
}

static int burn_cpu(void *arg)
{
    double until = cpu_sec() + *(const double *)arg;
    while (cpu_sec() < until) {
        prof_sample_hot();
        coro_yield(); /* to the other one: no slice is long */
    }
    return 0;
}

/* Sample a burn of sec seconds of CPU at hz (two coroutines taking
 * turns), adding to the data. */
static void sample_burn(int hz, double sec)
{
    coro_prof_opts_t o = {.hz = hz};
    cr_assert_eq(coro_prof_start(&o), 0, "start at %d Hz: %s", hz,
                 strerror(errno));
    /* Both read the thread's CPU clock: together they burn sec. */
    cr_assert_not_null(coro_spawn(burn_cpu, &sec, "burn"));
    cr_assert_not_null(coro_spawn(burn_cpu, &sec, "burn"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
}

Test(profiler, runs_at_different_rates_add_up_in_time)
{
    SKIP_UNDER_TSAN("ThreadSanitizer delays signals to its own points");
    double cpu = cpu_sec();
    sample_burn(100, 0.3);
    sample_burn(1000, 0.3);
    cpu = cpu_sec() - cpu;
    const struct pc_profile *p = snap();
    /* 100 Hz samples count 10 each at 1000 Hz. */
    cr_assert_eq(p->hz, 1000);
    double busy = (double)(pc_total(p) - must_fn(p, "<wait>")->excl) /
                  p->hz;
    cr_assert(busy > 0.75 * cpu && busy < 1.25 * cpu,
              "%.3f s sampled of %.3f s of CPU", busy, cpu);
    cr_assert_eq(coro_prof_reset(), 0);
}

Test(profiler, a_rate_that_no_common_unit_fits_is_refused)
{
    SKIP_UNDER_TSAN("ThreadSanitizer delays signals to its own points");
    sample_burn(9999, 0.01);
    sample_burn(9998, 0.01);
    cr_assert_eq(snap()->hz, 9999 * 9998, "the least common multiple");
    int64_t before = pc_total(&prof);
    coro_prof_opts_t o = {.hz = 9997};
    cr_assert_eq(coro_prof_start(&o), -1, "a unit past 1 ns");
    cr_assert_eq(errno, EINVAL);
    cr_assert_not(coro_prof_running());
    cr_assert_eq(snap()->hz, 9999 * 9998, "changed nothing");
    cr_assert_eq(pc_total(&prof), before);
    char *table = report(CORO_PROF_TABLE, 0);
    cr_assert_not_null(strstr(table, "sampling at several rates, in samples "
                                     "at 99970002 Hz"),
                       "%s", table);
    free(table);
    /* After a reset, any rate. */
    cr_assert_eq(coro_prof_reset(), 0);
    sample_burn(9997, 0.01);
    cr_assert_eq(snap()->hz, 9997);
    cr_assert_eq(coro_prof_reset(), 0);
}

/* ------------------------------------------------------------------ */
/* Control and reports while running                                   */

static int control(void *arg)
{
    (void)arg;
    const char *why;
    int lines;
    int64_t sum;
    cr_assert_eq(coro_prof_start(NULL), 0);
    cr_assert(coro_prof_running());
    cr_assert_eq(coro_prof_start(NULL), -1);
    cr_assert_eq(errno, EBUSY);
    double until = cpu_sec() + 0.05;
    while (cpu_sec() < until)
        prof_sample_hot();

    /* Reports while running, from inside a coroutine. */
    char *table = report(CORO_PROF_TABLE, 5);
    cr_assert_not_null(strstr(table, "coro profile: sampling"), "%s", table);
    cr_assert_not_null(strstr(table, "run_in_coro"), "the coroutine's row");
    free(table);
    char *folded = report(CORO_PROF_FOLDED, 0);
    cr_assert(folded_ok(folded, &lines, &sum), "%s", folded);
    free(folded);
    char *svg = report(CORO_PROF_SVG, 0);
    cr_assert(xml_well_formed(svg, &why), "svg: %s", why);
    free(svg);

    cr_assert_eq(coro_prof_stop(), 0);
    cr_assert_not(coro_prof_running());
    cr_assert_eq(coro_prof_stop(), -1);
    cr_assert_eq(errno, EINVAL);
    /* Stopped: the data stays. */
    const struct pc_profile *p = snap();
    cr_assert_gt(pc_total(p), 0);
    /* Again, adding to it; then reset while running. */
    cr_assert_eq(coro_prof_start(NULL), 0);
    cr_assert_eq(coro_prof_reset(), 0);
    cr_assert(coro_prof_running());
    cr_assert_eq(coro_prof_stop(), 0);
    p = snap();
    cr_assert_lt(pc_total(p), 50, "reset dropped the earlier samples");
    cr_assert_eq(coro_prof_reset(), 0);
    p = snap();
    cr_assert_eq(pc_total(p), 0);
    return 0;
}

Test(profiler, starts_stops_resets_and_reports_while_running)
{
    cr_assert_eq(run_in_coro(control, NULL), 0);
}

static int instrument_control(void *arg)
{
    (void)arg;
    start_instrumenting();
    prof_light();
    char *table = report(CORO_PROF_TABLE, 0);
    cr_assert_not_null(strstr(table, "prof_light"), "%s", table);
    free(table);
    /* The calling function is still open: its time so far counts. */
    const struct pc_profile *p = snap();
    const struct pc_fn *light = must_fn(p, "prof_light");
    cr_assert_eq(light->calls, 1);
    cr_assert_eq(coro_prof_reset(), 0); /* running: from zero */
    prof_heavy();
    cr_assert_eq(coro_prof_stop(), 0);
    p = snap();
    cr_assert_null(pc_fn(p, "prof_light"), "dropped by the reset");
    cr_assert_eq(must_fn(p, "prof_heavy")->calls, 1);
    cr_assert_eq(coro_prof_reset(), 0);
    return 0;
}

Test(profiler, instrumenting_starts_and_reports_inside_a_coroutine)
{
    cr_assert_eq(run_in_coro(instrument_control, NULL), 0);
}

/* Not instrumented, and calls nothing that is while the profiler runs:
 * what a program built without -finstrument-functions looks like. */
__attribute__((no_instrument_function)) static int plain_work(void *arg)
{
    (void)arg;
    coro_prof_opts_t o = {.mode = CORO_PROF_INSTRUMENT};
    if (coro_prof_start(&o) != 0 || coro_sleep(0.01) != 0 ||
        coro_prof_stop() != 0)
        return -1;
    return 0;
}

Test(profiler, an_instrumenting_profile_of_uninstrumented_code_says_so)
{
    cr_assert_eq(run_in_coro(plain_work, NULL), 0);
    char *table = report(CORO_PROF_TABLE, 0);
    cr_assert_not_null(strstr(table, "no instrumented function or region "
                                     "ran (build the code to profile with "
                                     "-finstrument-functions)"),
                       "%s", table);
    free(table);
    /* With an instrumented function, no such note. */
    cr_assert_eq(coro_prof_reset(), 0);
    start_instrumenting();
    prof_light();
    cr_assert_eq(coro_prof_stop(), 0);
    table = report(CORO_PROF_TABLE, 0);
    cr_assert_null(strstr(table, "no instrumented"), "%s", table);
    free(table);
}

static int hook_switches, hook_polls;

static void app_switch_in(coro_t *co, void *ud)
{
    (void)co;
    cr_assert_eq(ud, &hook_switches);
    hook_switches++;
}

static void app_poll_begin(int64_t timeout, void *ud)
{
    (void)timeout, (void)ud;
    hook_polls++;
}

Test(profiler, the_applications_hooks_keep_running_and_come_back)
{
    coro_hooks_t h = {.switch_in = app_switch_in,
                      .poll_begin = app_poll_begin, .ud = &hook_switches};
    cr_assert_eq(coro_set_hooks(&h), 0);
    start_instrumenting();
    coro_spawn(prof_sleepy, NULL, "sleepy");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    cr_assert_geq(hook_switches, SLEEPS);
    cr_assert_geq(hook_polls, SLEEPS);
    coro_hooks_t got;
    cr_assert_eq(coro_get_hooks(&got), 0);
    cr_assert_eq(got.switch_in, app_switch_in);
    cr_assert_eq(got.poll_begin, app_poll_begin);
    cr_assert_null(got.switch_out);
    cr_assert_eq(coro_set_hooks(NULL), 0);
    cr_assert_eq(coro_prof_reset(), 0);
}

/* ------------------------------------------------------------------ */
/* Reports                                                             */

Test(profiler, reports_show_each_coroutine_and_the_core_counters)
{
    start_instrumenting();
    coro_spawn(prof_sleepy, NULL, "sleepy");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    const struct pc_profile *p = snap();
    const struct pc_coro *row = NULL;
    for (int i = 0; i < p->ncoros; i++)
        if (strcmp(p->coros[i].name, "sleepy") == 0)
            row = &p->coros[i];
    cr_assert_not_null(row);
    cr_assert_eq(row->ended, 1);
    cr_assert_geq(row->switches, SLEEPS + 1, "one per sleep, and the first");
    cr_assert_gt(row->charged, 0);
    char *table = report(CORO_PROF_TABLE, 0);
    cr_assert_not_null(strstr(table, "coroutines ("), "%s", table);
    cr_assert_not_null(strstr(table, "sleepy (1 ended)"), "%s", table);
    free(table);
    cr_assert_eq(coro_prof_reset(), 0);
}

#define LIVE 1500  /* live coroutines, more than a report lists */
#define ENDED 1200 /* names of ended coroutines, more than get a row */

static volatile bool rows_done;

static int idle_until_done(void *arg)
{
    if (arg != NULL)
        prof_heavy(); /* among the most charged */
    while (!rows_done)
        coro_yield();
    return 0;
}

static int ends_at_once(void *arg)
{
    (void)arg;
    return 0;
}

static char *rows_raw; /* the report rows_reporter made */

static int rows_reporter(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        coro_yield(); /* the others all ran; the short ones ended */
    rows_raw = report(CORO_PROF_RAW, 0);
    rows_done = true;
    return 0;
}

/* The rows of raw: live ones, ended ones with a name of their own, and
 * the coroutines in "<other>". */
static void count_rows(const char *raw, int *live, int *named, int *hot,
                       long *other)
{
    *live = *named = *hot = 0;
    *other = 0;
    for (const char *l = raw; (l = strstr(l, "\ncoro ")) != NULL; l++) {
        int id, used = 0;
        unsigned long ended;
        cr_assert_eq(sscanf(l, "\ncoro %d %lu %*u %*d %*d %*u %*d %n", &id,
                            &ended, &used), 2);
        const char *name = l + used;
        if (id > 0) {
            (*live)++;
            *hot += strncmp(name, "hot\n", 4) == 0;
        } else if (strncmp(name, "<other>\n", 8) == 0) {
            *other += (long)ended;
        } else {
            (*named)++;
        }
    }
}

Test(profiler, reports_keep_live_coroutines_whatever_ended_before)
{
    start_instrumenting();
    static char names[ENDED][16];
    for (int i = 0; i < ENDED; i++) {
        snprintf(names[i], sizeof names[i], "ended%d", i);
        cr_assert_not_null(coro_spawn(ends_at_once, NULL, names[i]));
    }
    cr_assert_eq(coro_event_loop(), 0);
    /* A name that has its row keeps it once the names are used up. */
    cr_assert_not_null(coro_spawn(ends_at_once, NULL, "ended7"));
    for (int i = 0; i < LIVE; i++)
        cr_assert_not_null(coro_spawn(idle_until_done,
                                      i % 500 == 9 ? "hot" : NULL,
                                      i % 500 == 9 ? "hot" : "live"));
    cr_assert_not_null(coro_spawn(rows_reporter, NULL, "reporter"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    int live, named, hot;
    long other;
    count_rows(rows_raw, &live, &named, &hot, &other);
    free(rows_raw);
    cr_assert_eq(live, 1000, "the 1000 most charged live coroutines");
    cr_assert_eq(hot, 3, "the most charged among them");
    cr_assert_eq(named, 1000, "1000 names of ended ones");
    cr_assert_eq(other, ENDED - 1000, "the rest in <other>");
    char *raw = report(CORO_PROF_RAW, 0);
    bool twice = false;
    for (const char *l = raw; !twice && (l = strstr(l, "\ncoro 0 2 ")); l++) {
        const char *nl = strchr(l + 1, '\n');
        twice = nl != NULL && nl - l > 7 && strncmp(nl - 7, " ended7", 7) == 0;
    }
    cr_assert(twice, "both coroutines called ended7 in its row");
    free(raw);
    cr_assert_eq(coro_prof_reset(), 0);
}

static coro_info_t seen; /* counters()'s own info, at its end */

static int counters(void *arg)
{
    (void)arg;
    BURN(50 * UNIT); /* a slice of some milliseconds */
    for (int i = 0; i < 3; i++)
        coro_yield();
    cr_assert_eq(coro_info(coro_current(), &seen), 0);
    return 0;
}

static int other(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        coro_yield();
    return 0;
}

Test(profiler, per_coroutine_counters_stay_on_without_the_profiler)
{
    cr_assert_not(coro_prof_running());
    coro_spawn(counters, NULL, "c");
    coro_spawn(other, NULL, "o");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(seen.switches, 4, "switched in four times");
    cr_assert_gt(seen.run_ticks, 0);
    cr_assert_gt(seen.max_slice_ticks, 0);
    cr_assert_leq(seen.max_slice_ticks, seen.run_ticks);
}

Test(profiler, the_flame_graph_is_well_formed_xml_with_a_frame_per_function)
{
    start_instrumenting();
    coro_spawn(prof_sleepy, NULL, "sleepy<&>\"'");
    coro_spawn(recurse_ten, NULL, "recurse");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    const char *why;
    char *svg = report(CORO_PROF_SVG, 0);
    cr_assert(xml_well_formed(svg, &why), "svg: %s", why);
    cr_assert_not_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    cr_assert_not_null(strstr(svg, "<title>prof_heavy ("));
    cr_assert_not_null(strstr(svg, "<title>prof_recurse ("));
    cr_assert_not_null(strstr(svg, ">&lt;wait&gt;</text>"),
                       "wide frames carry their name, escaped");
    free(svg);
    char *folded = report(CORO_PROF_FOLDED, 0);
    int lines;
    int64_t sum;
    cr_assert(folded_ok(folded, &lines, &sum), "%s", folded);
    cr_assert_geq(lines, 5);
    cr_assert_eq(sum, pc_total(snap()), "folded counts add up to the total");
    cr_assert_not_null(strstr(folded, "prof_sleepy;prof_heavy "));
    cr_assert_not_null(
        strstr(folded, "prof_recurse;prof_recurse;prof_recurse "));
    free(folded);
    char *html = report(CORO_PROF_HTML, 0);
    cr_assert_not_null(strstr(html, "<table class=\"sortable\">"));
    cr_assert_not_null(strstr(html, "called by"));
    cr_assert_not_null(strstr(html, "<script>"));
    char *s = strstr(html, "<svg"), *e = strstr(html, "</svg>\n");
    cr_assert(s != NULL && e != NULL);
    e[6] = '\0';
    cr_assert(xml_well_formed(s, &why), "the page's svg: %s", why);
    free(html);
    cr_assert_eq(coro_prof_reset(), 0);
}

/* Whether s is valid UTF-8 holding only characters XML allows, with no
 * control characters but the newline: the offset of the first bad byte,
 * or -1. */
static long xml_text_bad_at(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        unsigned c = *p;
        int n = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1
              : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
        if (n < 0 || (n == 0 && ((c < 0x20 && c != '\n') || c == 0x7f)))
            return (long)(p - (const unsigned char *)s);
        uint32_t cp = n == 0 ? c : c & (0x3f >> n);
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return (long)(p - (const unsigned char *)s);
            cp = cp << 6 | (p[i] & 0x3f);
        }
        bool overlong = (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000);
        if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (cp >= 0x80 && cp <= 0x9f) || cp == 0xfffe || cp == 0xffff)
            return (long)(p - (const unsigned char *)s);
        p += n + 1;
    }
    return -1;
}

/* Region names that are long, or not what XML may hold as they are. */
static char utf8_names[6][1024];

static int utf8_regions(void *arg)
{
    (void)arg;
    for (int k = 0; k < 6; k++) {
        coro_prof_region_begin(utf8_names[k]);
        BURN((k + 1) * UNIT);
        coro_prof_region_end();
    }
    return 0;
}

Test(profiler, svg_and_html_are_utf8_without_control_characters)
{
    /* Wide frames with long labels of two-, three- and four-byte
     * characters: cut to fit, at varied widths. */
    static const char *const unit[] = {"\u00e9", "\u20ac", "\U0001d11e",
                                       "a\u00e9\u20ac"};
    for (int k = 0; k < 4; k++)
        for (size_t n = 0; n + 8 < sizeof utf8_names[k];)
            n += (size_t)sprintf(utf8_names[k] + n, "%s", unit[k]);
    /* Bytes that are not UTF-8, cut and overlong sequences, a
     * surrogate, a C1 control, a non-character. */
    strcpy(utf8_names[4], "latin1 \xe9t\xe9 \xff\xfe \xc0\xaf \xed\xa0\x80 "
                          "\xc2\x85 \xef\xbf\xbe end \xe2\x82");
    strcpy(utf8_names[5], "short");
    start_instrumenting();
    cr_assert_eq(run_in_coro(utf8_regions, NULL), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    static const char title[] = "a\x1b[31m title\x7f\t\r\n\x01 \xff end";
    for (coro_prof_format_t fmt = CORO_PROF_SVG; fmt <= CORO_PROF_HTML;
         fmt++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        coro_prof_write_opts_t o = {.title = title};
        cr_assert_eq(coro_prof_write_opts(f, fmt, &o), 0);
        fclose(f);
        long at = xml_text_bad_at(buf);
        cr_assert_eq(at, -1, "%s: bad byte at %ld: ...%.60s",
                     fmt == CORO_PROF_SVG ? "svg" : "html", at,
                     buf + (at > 30 ? at - 30 : 0));
        cr_assert_not_null(strstr(buf, "..</text>"), "cut labels");
        cr_assert_not_null(strstr(buf, " end"), "the title");
        const char *why;
        if (fmt == CORO_PROF_SVG)
            cr_assert(xml_well_formed(buf, &why), "svg: %s", why);
        free(buf);
    }
    cr_assert_eq(coro_prof_reset(), 0);
}

Test(profiler, the_table_shows_the_top_n)
{
    start_instrumenting();
    coro_spawn(prof_sleepy, NULL, "sleepy");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    char *t = report(CORO_PROF_TABLE, 2);
    /* Title, blank, heading, two rows, blank, then the coroutines. */
    char *cor = strstr(t, "\ncoroutines (");
    cr_assert_not_null(cor);
    int rows = 0;
    for (char *p = t; p < cor; p++)
        rows += *p == '\n';
    cr_assert_eq(rows, 5, "%s", t);
    free(t);
    FILE *f = fopen("/dev/null", "w");
    coro_prof_write_opts_t o = {.top = 3, .sort = CORO_PROF_BY_TOTAL,
                                .title = "x"};
    cr_assert_eq(coro_prof_write_opts(f, CORO_PROF_HTML, &o), 0);
    fclose(f);
    cr_assert_eq(coro_prof_reset(), 0);
}

/* How many href="#fN" links html has, and whether each has its target
 * id="fN" on the page. */
static bool html_links_resolve(const char *html, int *links)
{
    *links = 0;
    for (const char *h = html; (h = strstr(h, "href=\"#f")) != NULL; h++) {
        int fn;
        if (sscanf(h, "href=\"#f%d\"", &fn) != 1)
            continue; /* #flame */
        char id[32];
        snprintf(id, sizeof id, "id=\"f%d\"", fn);
        if (strstr(html, id) == NULL)
            return false;
        (*links)++;
    }
    return true;
}

Test(profiler, html_links_only_to_sections_on_the_page)
{
    start_instrumenting();
    coro_spawn(prof_sleepy, NULL, "sleepy");
    coro_spawn(recurse_ten, NULL, "recurse");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    int all, top;
    char *html = report(CORO_PROF_HTML, 0);
    cr_assert(html_links_resolve(html, &all));
    free(html);
    html = report(CORO_PROF_HTML, 2);
    cr_assert(html_links_resolve(html, &top), "--top 2 links elsewhere");
    cr_assert_geq(top, 2, "the table's two rows");
    cr_assert_lt(top, all);
    free(html);
    cr_assert_eq(coro_prof_reset(), 0);
}

Test(profiler, save_writes_the_documented_format)
{
    start_instrumenting();
    coro_spawn(prof_sleepy, NULL, "sleepy");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    char dir[] = "/tmp/coro-prof-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/p.prof", dir);
    cr_assert_eq(coro_prof_save(path), 0);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    cr_assert(pc_parse(text, &prof));
    cr_assert_eq(must_fn(&prof, "prof_heavy")->calls, SLEEPS);
    /* A failed save leaves nothing behind. */
    char bad[96];
    snprintf(bad, sizeof bad, "%s/missing/p.prof", dir);
    cr_assert_eq(coro_prof_save(bad), -1);
    cr_assert_eq(errno, ENOENT);
    unlink(path);
    cr_assert_eq(rmdir(dir), 0, "no temporary file left");
    cr_assert_eq(coro_prof_reset(), 0);
}

/* ------------------------------------------------------------------ */
/* Other threads                                                       */

static atomic_bool race_done;
static atomic_long race_ok, race_eperm, race_bad;

/* Reports as fast as it can: each is whole, or refused with EPERM
 * while the owner's profiler runs. */
static void *race_reporter(void *arg)
{
    (void)arg;
    while (!atomic_load(&race_done)) {
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        if (m == NULL) {
            atomic_fetch_add(&race_bad, 1);
            break;
        }
        int rc = coro_prof_write(m, CORO_PROF_RAW, 0);
        int err = errno;
        fclose(m);
        if (rc == 0 && len > 4 && strcmp(buf + len - 4, "end\n") == 0)
            atomic_fetch_add(&race_ok, 1);
        else if (rc != 0 && err == EPERM)
            atomic_fetch_add(&race_eperm, 1);
        else
            atomic_fetch_add(&race_bad, 1);
        free(buf);
    }
    return NULL;
}

static int race_worker(void *arg)
{
    for (int i = 0; i < 5; i++) {
        prof_recurse(1 + (int)(intptr_t)arg % 4);
        coro_yield();
    }
    return 0;
}

Test(profiler, another_thread_reports_while_the_owner_starts_and_stops)
{
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, race_reporter, NULL), 0);
    for (int r = 0; r < 60; r++) {
        /* A change of mode drops the data: the other thread must never
         * read it while it goes. */
        coro_prof_opts_t o = {.mode = r % 2 ? CORO_PROF_INSTRUMENT
                                            : CORO_PROF_SAMPLE};
        cr_assert_eq(coro_prof_start(&o), 0, "start: %s", strerror(errno));
        for (int i = 0; i < 8; i++)
            cr_assert_not_null(
                coro_spawn(race_worker, (void *)(intptr_t)i, "w"));
        cr_assert_eq(coro_event_loop(), 0);
        cr_assert_eq(coro_prof_stop(), 0);
        usleep(200); /* let a report begin, for the next start to meet */
    }
    while (atomic_load(&race_ok) == 0)
        usleep(1000); /* stopped: the reporter's turn */
    atomic_store(&race_done, true);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_eq(atomic_load(&race_bad), 0, "%ld bad reports",
                 atomic_load(&race_bad));
    cr_assert_eq(coro_prof_reset(), 0);
}

static int light_work(void *arg)
{
    (void)arg;
    prof_light();
    return 0;
}

/* Starts the profiler (mode: arg), runs a loop and ends, leaving it
 * running. */
static void *owner_thread(void *arg)
{
    coro_prof_opts_t o = {.mode = (coro_prof_mode_t)(intptr_t)arg};
    if (coro_prof_start(&o) != 0 || coro_spawn(light_work, NULL, "l") == NULL ||
        coro_event_loop() != 0)
        return (void *)1;
    return NULL;
}

Test(profiler, the_profiler_stops_when_its_thread_ends)
{
    for (int mode = CORO_PROF_SAMPLE; mode <= CORO_PROF_INSTRUMENT; mode++) {
        if (CORO_TEST_TSAN && mode == CORO_PROF_SAMPLE)
            continue; /* ThreadSanitizer delays the signals */
        pthread_t t;
        void *res;
        cr_assert_eq(pthread_create(&t, NULL, owner_thread,
                                    (void *)(intptr_t)mode), 0);
        cr_assert_eq(pthread_join(t, &res), 0);
        cr_assert_null(res);
        cr_assert_not(coro_prof_running(), "stopped at its thread's end");
        cr_assert_eq(coro_prof_stop(), -1);
        cr_assert_eq(errno, EINVAL);
        const struct pc_profile *p = snap(); /* not EPERM */
        cr_assert_str_eq(p->mode, mode == CORO_PROF_SAMPLE ? "sample"
                                                           : "instrument");
        if (mode == CORO_PROF_INSTRUMENT)
            cr_assert_eq(must_fn(p, "prof_light")->calls, 1);
        /* This thread may start it again. */
        cr_assert_eq(coro_prof_start(NULL), 0, "start: %s", strerror(errno));
        cr_assert_eq(coro_prof_stop(), 0);
        cr_assert_eq(coro_prof_reset(), 0);
    }
}

/* Starts the profiler (mode: arg), runs a loop and finishes its
 * scheduler, then stays alive, making no profiler call, until the test
 * has looked. */
static sem_t owner_finished, owner_may_end;

static void *owner_thread_fini(void *arg)
{
    void *res = owner_thread(arg);
    if (res == NULL && coro_fini() != 0)
        res = (void *)1;
    sem_post(&owner_finished);
    while (sem_wait(&owner_may_end) != 0)
        ;
    return res;
}

Test(profiler, coro_fini_on_the_owner_thread_stops_the_profiler_at_once)
{
    for (int mode = CORO_PROF_SAMPLE; mode <= CORO_PROF_INSTRUMENT; mode++) {
        if (CORO_TEST_TSAN && mode == CORO_PROF_SAMPLE)
            continue; /* ThreadSanitizer delays the signals */
        cr_assert_eq(sem_init(&owner_finished, 0, 0), 0);
        cr_assert_eq(sem_init(&owner_may_end, 0, 0), 0);
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, owner_thread_fini,
                                    (void *)(intptr_t)mode), 0);
        while (sem_wait(&owner_finished) != 0)
            ;
        /* From here, another thread: it cannot stop the profiler. */
        bool running = coro_prof_running();
        int stop = coro_prof_stop(), stop_err = errno;
        uint64_t calls = 0;
        if (!running && mode == CORO_PROF_INSTRUMENT)
            calls = must_fn(snap(), "prof_light")->calls;
        int reset = coro_prof_reset(), reset_err = errno;
        sem_post(&owner_may_end);
        void *res;
        cr_assert_eq(pthread_join(t, &res), 0);
        cr_assert_null(res);
        cr_assert_not(running, "stopped by coro_fini(), its owner alive");
        cr_assert_eq(stop, -1);
        cr_assert_eq(stop_err, EINVAL, "already stopped, not EPERM");
        if (mode == CORO_PROF_INSTRUMENT)
            cr_assert_eq(calls, 1, "the data is kept");
        cr_assert_eq(reset, 0, "reset: %s", strerror(reset_err));
        sem_destroy(&owner_finished);
        sem_destroy(&owner_may_end);
    }
}

Test(profiler, the_profiler_stops_when_its_scheduler_is_finished)
{
    start_instrumenting();
    cr_assert_eq(run_in_coro(light_work, NULL), 0);
    cr_assert_eq(coro_fini(), 0);
    /* The hooks went with the scheduler: it follows nothing now. */
    cr_assert_not(coro_prof_running());
    cr_assert_eq(must_fn(snap(), "prof_light")->calls, 1, "data kept");
    /* Started again, it follows the new scheduler. */
    start_instrumenting();
    cr_assert_eq(run_in_coro(light_work, NULL), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    cr_assert_eq(must_fn(snap(), "prof_light")->calls, 2);
    /* The same when stop is the first call after coro_fini(). */
    start_instrumenting();
    cr_assert_eq(coro_fini(), 0);
    cr_assert_eq(coro_prof_stop(), -1);
    cr_assert_eq(errno, EINVAL);
    coro_hooks_t h;
    cr_assert_eq(coro_get_hooks(&h), 0);
    cr_assert_null(h.switch_in, "no hooks put in a scheduler of its own");
    cr_assert_eq(coro_prof_reset(), 0);
}

/* In a child of fork(): the checks of a child whose profiler's owner
 * forked, as an exit status (0: all held). */
static int forked_child_checks(void)
{
    if (coro_prof_running())
        return 1; /* the parent's timer does not sample the child */
    if (coro_prof_stop() != -1 || errno != EINVAL)
        return 2;
    /* The child's own timer, which may get the id of the parent's. */
    struct sigevent ev = {.sigev_notify = SIGEV_NONE};
    timer_t mine;
    struct itimerspec its = {.it_value = {100, 0}}, cur;
    if (timer_create(CLOCK_MONOTONIC, &ev, &mine) != 0 ||
        timer_settime(mine, 0, &its, NULL) != 0)
        return 3;
    if (coro_prof_start(NULL) != 0 || coro_prof_stop() != 0)
        return 4;
    if (timer_gettime(mine, &cur) != 0)
        return 5; /* stop deleted it */
    FILE *f = fopen("/dev/null", "w");
    if (f == NULL || coro_prof_write(f, CORO_PROF_RAW, 0) != 0)
        return 6;
    fclose(f);
    return 0;
}

static int fork_in_coro(void *arg)
{
    (void)arg;
    prof_light();
    pid_t pid = fork();
    if (pid == 0)
        _exit(forked_child_checks());
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

Test(profiler, a_forked_child_has_its_own_profiler_stopped)
{
    SKIP_UNDER_TSAN("forks a child while the clock thread runs");
    for (int mode = CORO_PROF_SAMPLE; mode <= CORO_PROF_INSTRUMENT; mode++) {
        coro_prof_opts_t o = {.mode = (coro_prof_mode_t)mode};
        cr_assert_eq(coro_prof_start(&o), 0);
        cr_assert_eq(run_in_coro(fork_in_coro, NULL), 0, "mode %d", mode);
        cr_assert(coro_prof_running(), "the parent's goes on");
        cr_assert_eq(coro_prof_stop(), 0);
        cr_assert_eq(coro_prof_reset(), 0);
    }
}

/* Forks while the main thread's profiler runs: the child's profiler has
 * no owner, and must neither be running nor refuse this thread. */
static void *fork_from_other_thread(void *arg)
{
    (void)arg;
    pid_t pid = fork();
    if (pid == 0) {
        int rc = 0;
        FILE *f = fopen("/dev/null", "w");
        if (coro_prof_running())
            rc = 1;
        else if (f == NULL || coro_prof_write(f, CORO_PROF_RAW, 0) != 0)
            rc = 2;
        else if (coro_prof_start(NULL) != 0 || coro_prof_stop() != 0)
            rc = 3;
        _exit(rc);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return (void *)(intptr_t)-1;
    return (void *)(intptr_t)(WIFEXITED(st) ? WEXITSTATUS(st) : 100);
}

Test(profiler, a_child_forked_by_another_thread_has_a_stopped_profiler)
{
    SKIP_UNDER_TSAN("forks a child while the clock thread runs");
    start_instrumenting();
    pthread_t t;
    void *res;
    cr_assert_eq(pthread_create(&t, NULL, fork_from_other_thread, NULL), 0);
    cr_assert_eq(pthread_join(t, &res), 0);
    cr_assert_eq((intptr_t)res, 0, "the child's check %ld", (long)(intptr_t)res);
    cr_assert_eq(coro_prof_stop(), 0);
    cr_assert_eq(coro_prof_reset(), 0);
}

/* ------------------------------------------------------------------ */
/* Bad input                                                           */

Test(profiler, bad_input_fails_with_einval_and_changes_nothing)
{
    coro_prof_opts_t o = {.mode = 3};
    cr_assert_eq(coro_prof_start(&o), -1);
    cr_assert_eq(errno, EINVAL);
    o = (coro_prof_opts_t){.hz = -1};
    cr_assert_eq(coro_prof_start(&o), -1);
    cr_assert_eq(errno, EINVAL);
    o = (coro_prof_opts_t){.hz = 1000000};
    cr_assert_eq(coro_prof_start(&o), -1);
    cr_assert_eq(errno, EINVAL);
    o = (coro_prof_opts_t){.signo = SIGKILL};
    cr_assert_eq(coro_prof_start(&o), -1);
    cr_assert_eq(errno, EINVAL);
    o = (coro_prof_opts_t){.signo = SIGSEGV};
    cr_assert_eq(coro_prof_start(&o), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_not(coro_prof_running());
    cr_assert_eq(coro_prof_stop(), -1);
    cr_assert_eq(errno, EINVAL);

    FILE *f = fopen("/dev/null", "w");
    cr_assert_eq(coro_prof_write(NULL, CORO_PROF_TABLE, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_prof_write(f, (coro_prof_format_t)99, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_prof_write(f, (coro_prof_format_t)-1, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_prof_write(f, CORO_PROF_TABLE, -1), -1);
    cr_assert_eq(errno, EINVAL);
    coro_prof_write_opts_t wo = {.sort = (coro_prof_sort_t)7};
    cr_assert_eq(coro_prof_write_opts(f, CORO_PROF_TABLE, &wo), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_prof_save(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_prof_save(""), -1);
    cr_assert_eq(errno, EINVAL);
    /* No data: empty reports, not errors. */
    cr_assert_eq(coro_prof_write(f, CORO_PROF_TABLE, 0), 0);
    cr_assert_eq(coro_prof_write(f, CORO_PROF_SVG, 0), 0);
    cr_assert_eq(coro_prof_write_opts(f, CORO_PROF_HTML, NULL), 0);
    fclose(f);
    coro_prof_region_begin(NULL);
    coro_prof_region_end();
    cr_assert_eq(coro_prof_reset(), 0);
}

Test(profiler, a_failing_stream_reports_its_error)
{
    start_instrumenting();
    prof_light();
    cr_assert_eq(coro_prof_stop(), 0);
    FILE *f = fopen("/dev/full", "w");
    if (f == NULL)
        cr_skip_test("no /dev/full");
    setvbuf(f, NULL, _IONBF, 0);
    cr_assert_eq(coro_prof_write(f, CORO_PROF_TABLE, 0), -1);
    cr_assert_eq(errno, ENOSPC);
    fclose(f);
    cr_assert_eq(coro_prof_reset(), 0);
}
