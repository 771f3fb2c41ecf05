/*
 * The profile as reports see it, shared by the library and the coro-prof
 * tool: functions by name, call-graph edges, weighted stacks and
 * coroutines.  The library fills one from its live data (a snapshot); the
 * tool reads one from a saved file.  Renderers only read it.
 *
 * Weights are in the profile's unit: TSC ticks (instrumenting) or samples
 * (sampling); prof_seconds() converts.
 */
#ifndef CORO_PROF_INTERNAL_H
#define CORO_PROF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The version of the saved format; a reader rejects any other. */
#define PROF_FILE_VERSION 1

/* The highest sampling rate, samples per second of CPU (100 us of CPU
 * between samples), and the finest unit of sampling weights, samples per
 * second (1 ns; see prof_data.hz). */
#define PROF_HZ_MAX 10000
#define PROF_UNIT_HZ_MAX 1000000000

/* getrusage() counters kept per function, in this order. */
enum {
    PROF_RU_UTIME, /* user CPU, microseconds */
    PROF_RU_STIME, /* system CPU, microseconds */
    PROF_RU_MINFLT,
    PROF_RU_MAJFLT,
    PROF_RU_NVCSW,  /* voluntary context switches */
    PROF_RU_NIVCSW, /* involuntary context switches */
    PROF_RU_N
};
extern const char *const prof_ru_names[PROF_RU_N];

/* An open-addressing table of int32 indexes into an array its owner
 * keeps; the owner hashes and compares.  No deletion. */
struct prof_itab {
    struct prof_islot {
        uint32_t hash;
        int32_t idx; /* -1: empty */
    } *slots;
    size_t cap; /* a power of two, or 0 */
    size_t len; /* used slots, at most cap / 2 */
};

/* Hash of n bytes (FNV-1a, then mixed). */
uint32_t prof_hash(const void *p, size_t n, uint32_t seed);
/* Find idx with this hash for which eq(ctx, idx) holds; -1 if none. */
int32_t prof_itab_find(const struct prof_itab *t, uint32_t hash,
                       bool (*eq)(const void *ctx, int32_t idx),
                       const void *ctx);
/* Add idx (not present yet).  0, or -1 with errno ENOMEM. */
int prof_itab_add(struct prof_itab *t, uint32_t hash, int32_t idx);
void prof_itab_free(struct prof_itab *t);

/* Make room for element n of the array *arr (a pointer to the array
 * pointer) of *cap elements of size sz: double it, or allocate first
 * elements.  0, or -1 with errno ENOMEM (the array stays as it was).
 * Inline when there is room: the instrumentation hooks call it on every
 * function entry. */
int prof_grow_slow(void *arr, int32_t *cap, size_t sz, int32_t first);
static inline int prof_grow(void *arr, int32_t n, int32_t *cap, size_t sz,
                            int32_t first)
{
    return n < *cap ? 0 : prof_grow_slow(arr, cap, sz, first);
}

/* One function (or pseudo-function such as "<main>"). */
struct prof_fn {
    char *name;           /* owned; no control characters, not empty */
    uint64_t calls;       /* instrumenting; 0 when sampling */
    int64_t incl;         /* inclusive weight, recursion counted once */
    int64_t excl;         /* exclusive weight */
    int64_t ru[PROF_RU_N]; /* exclusive getrusage() deltas */
};

/* caller -> callee: calls (instrumenting) or samples (sampling). */
struct prof_edge {
    int32_t caller, callee; /* function indexes */
    uint64_t count;
};

/* A call stack, root first, and its exclusive weight (for the flame
 * graph and the folded lines). */
struct prof_stack {
    int32_t *fns; /* owned; function indexes */
    int n;        /* >= 1 */
    int64_t weight;
};

/* A coroutine seen during the profile: a live one, or all the ended ones
 * of one name.  The counters are coro_info()'s lifetime totals, summed
 * over the ended ones (max_slice_ticks: their maximum). */
struct prof_coro {
    int id;             /* 0 for a row of ended coroutines */
    uint64_t ended;     /* how many ended (0 for a live one) */
    uint64_t switches;
    int64_t run_ticks;
    int64_t max_slice_ticks;
    uint64_t selfish_yields;
    int64_t charged;    /* weight charged while the profiler ran */
    char *name;         /* owned; as prof_fn's */
};

/* A whole profile. */
struct prof_data {
    int mode;               /* CORO_PROF_SAMPLE or CORO_PROF_INSTRUMENT */
    int hz;                 /* sampling: weights are samples at hz per
                               second: the rate, or for runs at several
                               rates their least common multiple (a
                               sample at rate r weighs hz / r); 0 when
                               instrumenting */
    int64_t ticks_per_sec;  /* TSC rate of the profiled process */
    int64_t duration_ticks; /* wall time profiled */
    int64_t start_usec;     /* POSIX time of the first start, microseconds */
    uint64_t dropped;       /* samples or events lost (buffer full, no
                               memory) */
    bool rusage;            /* the ru[] counters were measured */
    struct prof_fn *fns;
    int32_t nfns, capfns;
    struct prof_itab fn_by_name;
    struct prof_edge *edges;
    int32_t nedges, capedges;
    struct prof_itab edge_by_pair;
    struct prof_stack *stacks;
    int32_t nstacks, capstacks;
    struct prof_itab stack_by_fns;
    struct prof_coro *coros;
    int32_t ncoros, capcoros;
};

void prof_data_init(struct prof_data *d);
void prof_data_free(struct prof_data *d);
/* The function called name (added with zero counts if new): its index,
 * or -1 with errno ENOMEM. */
int32_t prof_data_fn(struct prof_data *d, const char *name);
/* The index of the function called name (as d holds names: cleaned, not
 * empty), or -1. */
int32_t prof_data_find(const struct prof_data *d, const char *name);
/* Add count to caller -> callee.  0, or -1 with errno ENOMEM. */
int prof_data_edge(struct prof_data *d, int32_t caller, int32_t callee,
                   uint64_t count);
/* Add weight to the stack fns[0..n) (root first).  0, or -1 ENOMEM. */
int prof_data_stack(struct prof_data *d, const int32_t *fns, int n,
                    int64_t weight);
/* Add a coroutine row (name copied).  0, or -1 with errno ENOMEM. */
int prof_data_coro(struct prof_data *d, const struct prof_coro *c);
/* Replace row i with c (name copied).  0, or -1 with errno ENOMEM (the
 * row then stays as it was). */
int prof_data_coro_set(struct prof_data *d, int32_t i,
                       const struct prof_coro *c);
/* Sampling: each function's exclusive and inclusive weight and the edges,
 * from the stacks.  0, or -1 with errno ENOMEM. */
int prof_data_derive(struct prof_data *d);
/* Sum of all exclusive weights. */
int64_t prof_data_total(const struct prof_data *d);
/* Weight in seconds. */
double prof_seconds(const struct prof_data *d, int64_t weight);

/* After writing to out: 0, or -1 with the stream's errno (EIO if it
 * set none). */
int prof_stream_result(FILE *out);

/* Read a saved profile (RAW).  0, or -1 with errno EINVAL (not a profile
 * or a bad line: *line says which, 1-based) or ENOMEM or a read error. */
int prof_read(FILE *in, struct prof_data *d, int *line);

/* Options shared by the renderers. */
struct prof_render {
    int top;           /* table/HTML: functions shown, 0 = all */
    int sort;          /* coro_prof_sort_t */
    const char *title; /* SVG/HTML heading */
};

/* Renderers.  0, or -1 with errno (ENOMEM, or the stream's error, EIO
 * if none). */
int prof_write_raw(FILE *out, const struct prof_data *d);
int prof_write_table(FILE *out, const struct prof_data *d,
                     const struct prof_render *r);
int prof_write_folded(FILE *out, const struct prof_data *d);
int prof_write_svg(FILE *out, const struct prof_data *d,
                   const struct prof_render *r);
int prof_write_html(FILE *out, const struct prof_data *d,
                    const struct prof_render *r);
/* Differences by function between two profiles, as a text table. */
int prof_write_diff(FILE *out, const struct prof_data *old,
                    const struct prof_data *new_, int top);

/* The names of the pseudo-functions. */
#define PROF_MAIN "<main>"
#define PROF_WAIT "<wait>"
#define PROF_UNINSTRUMENTED "<uninstrumented>"

#endif /* CORO_PROF_INTERNAL_H */
