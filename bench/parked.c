/*
 * parked: the memory a parked coroutine costs, with COUNT of them asleep
 * at once.
 *
 * main spawns COUNT sleepers and then one monitor.  Each sleeper calls
 * coro_sleep(3600) and parks; the run queue is FIFO, so the monitor runs
 * only once every sleeper is parked.  It reads the resident set size from
 * /proc/self/statm, counts the lines of /proc/self/maps (each stack guard
 * splits a mapping, and the kernel caps a process at vm.max_map_count of
 * them), takes coro_stats(), then interrupts every sleeper with ECANCELED;
 * a cancelled sleeper returns 0.  The sleepers do nothing else, so their
 * stacks hold only the frames of coro_sleep().
 *
 * The RSS delta counts everything the coroutines cost: the touched pages
 * of their stacks (the record sits at the top, the canary of an unguarded
 * stack at the bottom), the id table and the slab bookkeeping.  Page
 * tables are not part of RSS and are shown separately (VmPTE).
 *
 * Run: build/bench/parked [COUNT]    (default 1,000,000)
 */
#include "bench.h"

#include <coro/coro.h>

#include <unistd.h>

#define DEFAULT_COUNT 1000000L
/* Far longer than the benchmark runs: only a cancel wakes a sleeper. */
#define SLEEP_SEC 3600.0

static const char usage[] =
    "usage: parked [COUNT]\n"
    "Park COUNT coroutines (default 1000000, at least 1) in coro_sleep()\n"
    "at once and print the memory and mappings they cost.\n";

/* What the monitor found at the peak. */
static struct {
    int64_t t0;          /* ns when main began spawning */
    int64_t parked_nsec; /* ns from t0 until the monitor ran */
    long rss_bytes;      /* resident set size at the peak */
    long pte_kib;        /* page tables at the peak (VmPTE) */
    long maps;           /* lines of /proc/self/maps at the peak */
    size_t stack_size;   /* usable stack of a coroutine, bytes (virtual) */
    coro_stats_t stats;  /* coro_stats() at the peak */
    long cancelled;      /* sleepers interrupted */
    int64_t cancel_t0;   /* ns when the monitor began interrupting */
} peak;

static long cancelled_ok; /* sleepers that saw ECANCELED and returned 0 */

/* Resident bytes, from the second field of /proc/self/statm. */
static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    if (f == NULL)
        bench_die("open /proc/self/statm");
    long size, resident;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        bench_die("read /proc/self/statm");
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

/* The VmPTE line of /proc/self/status in KiB, or -1 if absent. */
static long pte_kib(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (f == NULL)
        bench_die("open /proc/self/status");
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmPTE: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* Number of lines in a file. */
static long count_lines(const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        bench_die(path);
    long lines = 0;
    int c;
    while ((c = getc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    return lines;
}

/* One number from a /proc/sys file, or -1. */
static long read_sysctl(const char *path)
{
    FILE *f = fopen(path, "re");
    long v = -1;
    if (f != NULL) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static int sleeper(void *arg)
{
    (void)arg;
    if (coro_sleep(SLEEP_SEC) == -1 && errno == ECANCELED) {
        cancelled_ok++;
        return 0;
    }
    return -1; /* woke for another reason: the notifier reports it */
}

/* coro_foreach() callback: cancel every coroutine but the caller. */
static int cancel_one(coro_t *co, void *arg)
{
    (void)arg;
    if (co == coro_current())
        return 0;
    if (coro_interrupt(co, ECANCELED) != 0)
        bench_die("coro_interrupt");
    peak.cancelled++;
    return 0;
}

static int monitor(void *arg)
{
    (void)arg;
    peak.parked_nsec = bench_now_nsec() - peak.t0;
    peak.rss_bytes = rss_bytes();
    peak.pte_kib = pte_kib();
    peak.maps = count_lines("/proc/self/maps");
    if (coro_stats(&peak.stats) != 0)
        bench_die("coro_stats");
    coro_info_t info;
    if (coro_info(coro_current(), &info) != 0)
        bench_die("coro_info");
    peak.stack_size = info.stack_size;
    peak.cancel_t0 = bench_now_nsec();
    coro_foreach(cancel_one, NULL);
    return 0;
}

static int warm(void *arg)
{
    (void)arg;
    return coro_sleep(1e-6);
}

static double mib(long bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

int main(int argc, char **argv)
{
    long count = bench_parse_count(argc, argv, DEFAULT_COUNT, 1, usage);
    /* The monitor's slices (a million cancellations) are long on purpose:
     * no latency warning, whose symbolizing would also add to the RSS. */
    coro_set_latency_warning(0);
    /* One coroutine's life first, so the code of spawn, sleep and the loop
     * is paged in before the baseline: the delta is the coroutines' own.
     * (Its stack, kept in the cache, is the first sleeper's: 4 KiB.) */
    if (coro_spawn(warm, NULL, "warm") == NULL || coro_event_loop() != 0)
        bench_die("warm-up");
    long rss0 = rss_bytes();
    long pte0 = pte_kib();
    long maps0 = count_lines("/proc/self/maps");

    peak.t0 = bench_now_nsec();
    for (long i = 0; i < count; i++)
        if (coro_spawn(sleeper, NULL, NULL) == NULL)
            bench_die("coro_spawn");
    if (coro_spawn(monitor, NULL, "monitor") == NULL)
        bench_die("coro_spawn");
    if (coro_event_loop() != 0)
        bench_die("coro_event_loop");
    int64_t cancel_nsec = bench_now_nsec() - peak.cancel_t0;

    const coro_stats_t *st = &peak.stats;
    long delta = peak.rss_bytes - rss0;
    printf("parked: %ld coroutines in coro_sleep(%.0f) at once\n\n", count,
           SLEEP_SEC);
    printf("%-26s %.3f s (%.0f ns per coroutine)\n", "spawn + park",
           (double)peak.parked_nsec / 1e9,
           (double)peak.parked_nsec / (double)count);
    printf("%-26s %zu bytes usable (one coroutine's), reserved, not "
           "resident\n",
           "stack", peak.stack_size);
    printf("%-26s %.1f MiB -> %.1f MiB\n", "RSS before -> at peak", mib(rss0),
           mib(peak.rss_bytes));
    printf("%-26s %.1f MiB, %.3f KiB (%.1f bytes) per coroutine\n",
           "RSS delta", mib(delta), (double)delta / 1024.0 / (double)count,
           (double)delta / (double)count);
    if (pte0 >= 0 && peak.pte_kib >= 0)
        printf("%-26s %.1f MiB, %.3f KiB per coroutine (not in RSS)\n",
               "page tables delta", (double)(peak.pte_kib - pte0) / 1024.0,
               (double)(peak.pte_kib - pte0) / (double)count);
    printf("%-26s %ld -> %ld (vm.max_map_count %ld)\n",
           "mappings before -> peak", maps0, peak.maps,
           read_sysctl("/proc/sys/vm/max_map_count"));
    printf("%-26s coroutines %zu, runnable %zu, timers %zu\n",
           "coro_stats at peak", st->coroutines, st->runnable, st->timers);
    printf("%-26s in use %zu, cached %zu, guarded %zu\n", "stacks at peak",
           st->stacks_in_use, st->stacks_cached, st->stacks_guarded);
    printf("%-26s %.3f s for %ld, %ld returned 0\n", "cancel + exit",
           (double)cancel_nsec / 1e9, peak.cancelled, cancelled_ok);

    if (cancelled_ok != count || coro_count() != 0) {
        fprintf(stderr,
                "bench: %ld of %ld sleepers cancelled cleanly, "
                "%zu coroutines left\n",
                cancelled_ok, count, coro_count());
        return 1;
    }
    if (coro_fini() != 0)
        bench_die("coro_fini");
    return 0;
}
