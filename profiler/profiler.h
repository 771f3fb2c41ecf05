/*
 * coro profiler: where the time of a coroutine server goes, charged to a
 * function only while that function's coroutine runs.
 *
 * Two modes, one at a time:
 * - Sampling (CORO_PROF_SAMPLE, the default): no recompilation.  A timer
 *   on the loop thread's CPU time interrupts it hz times per second of
 *   CPU; each sample records the running coroutine's call stack (frame
 *   pointers: build with -fno-omit-frame-pointer) or, outside coroutines,
 *   counts for the scheduler ("<main>").  Time the loop spends blocked in
 *   the poller is measured by the clock and reported as "<wait>".
 * - Instrumenting (CORO_PROF_INSTRUMENT): code compiled with
 *   -finstrument-functions (CMake: coro_profile_instrument(target)) is
 *   timed per call with the TSC: calls, inclusive and exclusive ticks,
 *   caller -> callee counts, optionally getrusage() deltas.  Each
 *   coroutine has its own shadow call stack; time while a coroutine is
 *   switched out is never charged to its functions; a recursive function
 *   counts its inclusive time once.  Scheduler time goes to "<main>",
 *   time blocked in the poller to "<wait>", time in a coroutine outside
 *   any instrumented function to "<uninstrumented>".
 *
 * The profiler follows the event loop of the thread that calls
 * coro_prof_start() (its owner); other threads (the offload pool) are
 * never charged.  While it runs, only the owner may stop or reset it or
 * write reports (from a coroutine or from outside the loop): other
 * threads get EPERM.  Once stopped, its data is frozen and any thread may
 * write reports, reset it or start it (a start from another thread than
 * the last owner drops the data first).  coro_prof_running() and the
 * regions may be called from any thread at any time.  When the owner
 * thread ends, or its scheduler is finished (coro_fini()), the profiler
 * stops, keeping its data.  In
 * the child of fork(), the profiler is stopped (docs/profiler.md).  A
 * start, stop or reset waits while another thread copies the data for a
 * report; none waits for a report being written out, and none switches
 * coroutines.
 * A call that fails returns -1 with errno set and changes nothing.
 * docs/profiler.md walks through a session and describes the file format.
 */
#ifndef CORO_PROFILER_H
#define CORO_PROFILER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef CORO_API
#define CORO_API __attribute__((visibility("default")))
#endif

/* What the profiler measures. */
typedef enum coro_prof_mode {
    CORO_PROF_SAMPLE = 1,    /* timer samples of the running stack */
    CORO_PROF_INSTRUMENT = 2 /* -finstrument-functions and regions */
} coro_prof_mode_t;

/* Options for coro_prof_start().  Zero means default. */
typedef struct coro_prof_opts {
    coro_prof_mode_t mode; /* 0 = CORO_PROF_SAMPLE */
    int hz;                /* samples per second of CPU time, 1..10000;
                              0 = 1000 (sampling only) */
    bool rusage;           /* instrumenting: getrusage() deltas per
                              function (a system call per event) */
    int signo;             /* sampling signal; 0 = SIGPROF.  SIGPROF,
                              SIGVTALRM, SIGUSR1, SIGUSR2 or a realtime
                              signal not used by the program */
} coro_prof_opts_t;

/*
 * Start profiling this thread's event loop with opts (NULL: defaults),
 * adding to the data already kept (coro_prof_reset() drops it).  Data of
 * another mode is dropped first.  Sampling runs at different rates add up
 * in time: the data's weights become samples at the least common multiple
 * of the rates (100 and 1000 Hz: a 100 Hz sample counts 10 at 1000 Hz);
 * a rate that would make that unit finer than 1 ns is refused (EINVAL:
 * reset first).  Installs the profiler's scheduler hooks
 * (calling the hooks installed before, see coro_get_hooks()) and, for
 * sampling, the signal handler (SA_RESTART | SA_ONSTACK, left installed
 * for good) and a CPU-time timer.  Sampling interrupts the loop's thread:
 * a system call that SA_RESTART does not restart (poll, nanosleep, ...)
 * may fail with EINTR in code that runs on it.  Returns 0, or -1 with
 * errno EBUSY (already running), EINVAL (bad mode, hz or signo, or a
 * rate no common unit fits), ENOMEM, or an errno of timer_create() or
 * sigaction().
 */
CORO_API int coro_prof_start(const coro_prof_opts_t *opts);

/* Stop, keeping the data for reports.  0, or -1 with errno EINVAL (not
 * running) or EPERM (called from another thread). */
CORO_API int coro_prof_stop(void);

/* Drop the data, running or not (a running profile goes on from zero).
 * 0, or -1 with errno EPERM (running, called from another thread). */
CORO_API int coro_prof_reset(void);

/* Whether the profiler runs. */
CORO_API bool coro_prof_running(void);

/* Report formats. */
typedef enum coro_prof_format {
    CORO_PROF_TABLE,  /* text table, sorted, with a per-coroutine part */
    CORO_PROF_FOLDED, /* "f1;f2;f3 count" lines, root first */
    CORO_PROF_SVG,    /* self-contained SVG flame graph */
    CORO_PROF_HTML,   /* sortable table, call graph and flame graph */
    CORO_PROF_RAW     /* the file format of coro_prof_save() */
} coro_prof_format_t;

/* Sort keys of the table. */
typedef enum coro_prof_sort {
    CORO_PROF_BY_SELF = 0, /* exclusive time (the default) */
    CORO_PROF_BY_TOTAL,    /* inclusive time */
    CORO_PROF_BY_CALLS     /* calls (instrumenting) */
} coro_prof_sort_t;

/* Options for coro_prof_write_opts().  Zero means default. */
typedef struct coro_prof_write_opts {
    int top;                 /* TABLE, HTML: top N functions; 0 = all */
    coro_prof_sort_t sort;   /* TABLE: the order */
    const char *title;       /* SVG, HTML: heading; NULL = "coro profile" */
} coro_prof_write_opts_t;

/*
 * Write a report of the data so far to out, running or not: the live data
 * is copied into a consistent snapshot first (samples taken meanwhile wait
 * in the profiler's buffer), then rendered.  Names come from dladdr():
 * link programs with -rdynamic so their functions are named.  top is the
 * table's number of functions (0 = all).  Does not block other than in
 * writing to out, never switches coroutines.  Returns 0, or -1 with errno
 * EINVAL (out NULL, bad format, top < 0), EPERM (running, called from
 * another thread), ENOMEM, or the errno of a failed write (EIO if none
 * was set).
 */
CORO_API int coro_prof_write(FILE *out, coro_prof_format_t fmt, int top);
CORO_API int coro_prof_write_opts(FILE *out, coro_prof_format_t fmt,
                                  const coro_prof_write_opts_t *opts);

/* Save the data to path in the RAW format, for the coro-prof tool: written
 * to a temporary file next to path, then renamed over it (mode 0644), so
 * a failed save leaves an existing file as it was.  0, or -1 with the
 * errors of coro_prof_write() or of mkstemp() and rename(). */
CORO_API int coro_prof_save(const char *path);

/*
 * Named regions, for code that is not instrumented: between begin and
 * end, time is charged to a pseudo-function called name, nested like a
 * call in the current coroutine's shadow stack.  name is borrowed: it
 * must outlive the profile (a string literal).  Regions count in the
 * instrumenting mode and cost nothing otherwise; an end without its begin
 * (profiling started inside the region) is ignored.  Never fail.
 */
CORO_API void coro_prof_region_begin(const char *name);
CORO_API void coro_prof_region_end(void);

/* A region from here to the end of the enclosing block. */
#define CORO_PROF_SCOPE(name)                                              \
    __attribute__((cleanup(coro_prof__scope_end), unused)) int CORO_PROF__UNIQ( \
        coro_prof_scope_, __LINE__) = (coro_prof_region_begin(name), 0)
#define CORO_PROF__UNIQ(a, b) CORO_PROF__CAT(a, b)
#define CORO_PROF__CAT(a, b) a##b
/* For CORO_PROF_SCOPE only. */
CORO_API void coro_prof__scope_end(int *unused);

#ifdef __cplusplus
}
#endif

#endif /* CORO_PROFILER_H */
