/*
 * spawn: the cost of a short-lived coroutine's whole life, spawn + run +
 * join, with its stack taken from the scheduler's cache.
 *
 *   batched    a parent spawns BATCH joinable coroutines, each of which
 *              returns at once, then joins them all; repeated until COUNT
 *              coroutines have lived.  Stacks cycle through the cache of
 *              freed stacks, which holds a batch.
 *   unbatched  the parent spawns one joinable coroutine and joins it at
 *              once, COUNT times: two switches per coroutine, one stack.
 *
 * One batch is spawned and joined before timing, so no stack is mapped or
 * faulted in while the clock runs.  The two variants are interleaved
 * BENCH_RUNS times and the median is shown.
 *
 * Run: build/bench/spawn [COUNT]    (default 1,000,000)
 */
#include "bench.h"

#include <coro/coro.h>

#define DEFAULT_COUNT 1000000L
#define BATCH         1000 /* stays within the stack cache (1024 per size) */

static const char usage[] =
    "usage: spawn [COUNT]\n"
    "Time COUNT (default 1000000, at least 1) spawn + run + join of\n"
    "coroutines that return at once, in batches of 1000 and one at a time,\n"
    "and print the median ns per coroutine of 5 interleaved runs.\n";

static const coro_opts_t joinable = {.name = "child", .joinable = true};

/* One measurement: what the parent is asked to do and what it found. */
struct job {
    long batch;   /* coroutines spawned before the joins begin */
    long batches; /* batches timed */
    double nsec;  /* result: ns per coroutine */
};

static int child(void *arg)
{
    (void)arg;
    return 0;
}

/* Spawn n children, then join each; exit on any failure. */
static void spawn_and_join(long n)
{
    coro_t *kids[BATCH];
    for (long i = 0; i < n; i++)
        if ((kids[i] = coro_spawn_opts(child, NULL, &joinable)) == NULL)
            bench_die("coro_spawn_opts");
    for (long i = 0; i < n; i++) {
        int status;
        if (coro_join(kids[i], &status, NULL) != 0)
            bench_die("coro_join");
        if (status != 0) {
            fprintf(stderr, "bench: child status %d\n", status);
            exit(1);
        }
    }
}

static int parent(void *arg)
{
    struct job *job = arg;
    spawn_and_join(BATCH); /* fills the stack cache */
    int64_t t0 = bench_now_nsec();
    for (long b = 0; b < job->batches; b++)
        spawn_and_join(job->batch);
    int64_t elapsed = bench_now_nsec() - t0;
    job->nsec = (double)elapsed / (double)(job->batch * job->batches);
    return 0;
}

/* Run a parent for job under the event loop; returns ns per coroutine. */
static double run(long batch, long count)
{
    struct job job = {.batch = batch, .batches = count / batch};
    if (coro_spawn(parent, &job, "parent") == NULL)
        bench_die("coro_spawn");
    if (coro_event_loop() != 0)
        bench_die("coro_event_loop");
    return job.nsec;
}

int main(int argc, char **argv)
{
    long count = bench_parse_count(argc, argv, DEFAULT_COUNT, 1, usage);
    long batch = count < BATCH ? count : BATCH;
    long batched_count = count / batch * batch;
    double batched[BENCH_RUNS], single[BENCH_RUNS];
    for (int r = 0; r < BENCH_RUNS; r++) {
        batched[r] = run(batch, count);
        single[r] = run(1, count);
    }
    struct bench_summary b = bench_summarize(batched);
    struct bench_summary s = bench_summarize(single);

    printf("spawn: spawn + run + join with cached stacks, median of %d "
           "interleaved runs\n\n",
           BENCH_RUNS);
    printf("%-36s %10s %9s %9s %9s\n", "", "coroutines", "ns each", "min",
           "max");
    char label[64];
    snprintf(label, sizeof label, "batched (%ld spawns, then joins)", batch);
    printf("%-36s %10ld %9.1f %9.1f %9.1f\n", label, batched_count, b.median,
           b.min, b.max);
    printf("%-36s %10ld %9.1f %9.1f %9.1f\n", "unbatched (spawn 1, join 1)",
           count, s.median, s.min, s.max);

    coro_stats_t st;
    if (coro_stats(&st) != 0)
        bench_die("coro_stats");
    printf("\nstacks cached %zu, guarded %zu, in use %zu\n", st.stacks_cached,
           st.stacks_guarded, st.stacks_in_use);
    if (coro_fini() != 0)
        bench_die("coro_fini");
    return 0;
}
