/*
 * The live profiler: what profiler.c (control, scheduler hooks,
 * snapshots), instrument.c (-finstrument-functions, regions) and
 * sample.c (the timer signal) share.
 *
 * While the profiler runs, all of it belongs to the loop thread that
 * started it (the owner) and is touched only there, in normal context,
 * with one exception: sample.c's signal handler writes samples into a
 * ring buffer that normal code drains (a single producer and a single
 * consumer on one thread, ordered with signal fences).  Stopped, any
 * thread may read or drop it, under profiler.c's ctl_lock, which every
 * control call holds.  Reports copy the live data into a struct
 * prof_data first and render that copy.
 */
#ifndef CORO_PROF_ENGINE_INTERNAL_H
#define CORO_PROF_ENGINE_INTERNAL_H

#include "prof_internal.h"
#include "profiler.h"

#include <coro/coro.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <tsc_time/tsc_time.h>

/* Nothing here may be instrumented: the hooks would call themselves. */
#define PROF_NOINSTR __attribute__((no_instrument_function))

/* What a calling-context node stands for. */
enum {
    NODE_ROOT,   /* the tree's root, never charged */
    NODE_PSEUDO, /* key: a PROF_* name ("<main>"...) */
    NODE_FN,     /* key: a function's address */
    NODE_REGION  /* key: a region's name (a string) */
};

/*
 * A node of the calling-context tree: one per distinct path of calls from
 * a stack's bottom (instrumenting mode).  Per-function figures and the
 * call graph are summed from the nodes when a report is made, so a call
 * updates one node only.
 */
struct prof_node {
    uintptr_t key;   /* see the kinds above */
    int32_t parent;  /* index; -1 for the root */
    int32_t last_child; /* the child found last (0: none): a loop calling
                           one function hits it without hashing */
    uint8_t kind;    /* NODE_* */
    uint64_t calls;  /* times entered */
    int64_t excl;    /* ticks charged while it was the top frame */
    int64_t incl;    /* ticks from entry to return, closed calls only
                        (reports count it once per name along a path) */
    int64_t ru[PROF_RU_N]; /* getrusage() deltas while the top frame */
};

/* An open call in a shadow stack. */
struct prof_frame {
    int32_t node;         /* its tree node */
    int64_t entry_vclock; /* the stack's vclock at entry */
};

/*
 * A shadow call stack: one per coroutine, plus one for the loop (code
 * outside coroutines) and one for the poller wait.  Its vclock advances
 * only by what is charged to it, so a call's inclusive time is the vclock
 * at return minus the vclock at entry: time while the coroutine is
 * switched out never counts.
 */
struct prof_shadow {
    int id;                   /* coroutine id; 0 for the loop and wait */
    struct prof_shadow *next; /* chain of its hash bucket */
    int32_t empty_node;       /* charged while no frame is open */
    int64_t vclock;           /* ticks (or samples) charged to it */
    struct prof_frame *frames; /* owned */
    int32_t depth, cap;
};

/* The profiler.  One per process, bound to its owner thread while it
 * runs; every field is the owner's unless marked. */
struct prof_engine {
    _Atomic bool running;  /* read by the signal handler */
    pthread_t owner;       /* the thread of the last start */
    int mode;              /* CORO_PROF_*; 0 before any start */
    int hz, signo;         /* sampling: this run's rate and signal */
    int unit_hz;           /* sampling: the data's weights count 1/unit_hz
                              s; the least common multiple of the rates
                              of the runs it adds up (see prof_data.hz) */
    int sample_weight;     /* unit_hz / hz: what one sample adds */
    bool rusage;           /* instrumenting: getrusage per event */
    coro_hooks_t prev;     /* hooks installed before ours, chained */
    int64_t started;       /* TSC at the last start */
    int64_t duration;      /* ticks profiled in earlier runs */
    int64_t start_usec;    /* POSIX time of the first start */
    uint64_t dropped;      /* events lost to ENOMEM (and samples, see
                              sample.c) */

    /* Instrumenting. */
    struct prof_node *nodes; /* the tree; nodes[0] is the root */
    int32_t nnodes, capnodes;
    struct prof_itab node_by_key; /* (parent, kind, key) -> node */
    int32_t node_main, node_wait, node_uninstr; /* pseudo nodes */
    int64_t last;            /* TSC of the last charge */
    struct rusage last_ru;   /* getrusage at the last charge */

    /* Shadow stacks (both modes: they also count per coroutine). */
    struct prof_shadow loop, wait;
    struct prof_shadow **buckets; /* coroutine id -> shadow */
    size_t nbuckets, nshadows;

    /* Sampling. */
    int64_t main_samples;  /* samples outside coroutines */
    int64_t poll_start;    /* TSC at poll_begin */
    int64_t wait_ticks;    /* TSC ticks blocked in the poller */

    /* Coroutines that ended while profiled, one row per name (names
     * owned, as they came, cleaned when copied into a report). */
    struct prof_coro *ended;
    int32_t nended, capended;
    struct prof_itab ended_by_name;
};

extern struct prof_engine prof__e;

/* The shadow stack charged by instrumented code on this thread; NULL
 * when the instrumenting profiler does not follow this thread (and, as a
 * guard, while a hook runs). */
extern __thread struct prof_shadow *prof__cur
    __attribute__((tls_model("initial-exec")));

/* The ticks of tsc_now(), read inline where the source is the x86-64
 * TSC (the same counter at the same rate: tsc_source() says so), so an
 * instrumented call pays two rdtsc and no function call for its time. */
extern bool prof__rdtsc; /* set at start from tsc_source() */
PROF_NOINSTR static inline int64_t prof__now(void)
{
#if defined(__x86_64__)
    if (__builtin_expect(prof__rdtsc, 1)) {
        uint32_t lo, hi;
        __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
        return (int64_t)((uint64_t)hi << 32 | lo);
    }
#endif
    return tsc_now();
}

/* profiler.c */
/* The shadow of coroutine id, created if needed; NULL on ENOMEM. */
struct prof_shadow *prof__shadow(int id);
/* Add dropped events. */
void prof__drop(uint64_t n);

/* symbols.c: the name of the code at pc for reports ("func"); when
 * nothing names it, "module+0x1f3c", or "[module]" with bracket. */
void prof__name_pc(const void *pc, bool is_return, bool bracket, char *buf,
                   size_t len);

/* instrument.c */
int prof__inst_init(void);      /* the tree's root and pseudo nodes */
void prof__inst_free(void);
void prof__charge(struct prof_shadow *sh, int64_t now);
void prof__close_all(struct prof_shadow *sh);
/* Add the instrumenting data to d.  0, or -1 with errno. */
int prof__inst_snapshot(struct prof_data *d);

/* sample.c */
int prof__sample_start(void);   /* handler and timer; 0 or -1/errno */
void prof__sample_stop(void);
/* In the child of fork(): the timer is the parent's.  keep: the data
 * (the forking thread is the owner); else it is forgotten, unfreed. */
void prof__sample_after_fork(bool keep);
void prof__sample_drain(void);  /* owner thread, normal context */
void prof__sample_free(void);
void prof__sample_set_coro(int id); /* the running coroutine, 0: none */
void prof__sample_in_poll(bool in); /* the loop waits in the poller */
int prof__sample_snapshot(struct prof_data *d);
/* Multiply the weights of the distinct stacks by factor (a finer unit). */
void prof__sample_rescale(int64_t factor);
/* v * factor, at most INT64_MAX (v >= 0, factor >= 1). */
static inline int64_t prof__scale(int64_t v, int64_t factor)
{
    int64_t r;
    return __builtin_mul_overflow(v, factor, &r) ? INT64_MAX : r;
}

#endif /* CORO_PROF_ENGINE_INTERNAL_H */
