/*
 * Internal structures shared by the files of coro/.  Never installed.
 *
 * One struct sched per OS thread holds every piece of scheduler state and
 * is reached through the thread-local pointer coro__tls_sched.  A struct
 * coro lives at the top of its own stack mapping, so a parked coroutine
 * costs the one page its record and its top frames share.
 */
#ifndef CORO_CORO_INTERNAL_H
#define CORO_CORO_INTERNAL_H

#include "coro.h"
#include "context_internal.h"
#include "tsc_time/tsc_time_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

struct sched;
struct coro__stacks;
struct coro__io;
struct coro__signals;
struct coro__procs;
struct coro__offload;

#define CORO__LIKELY(x) __builtin_expect(!!(x), 1)
#define CORO__UNLIKELY(x) __builtin_expect(!!(x), 0)
/* For the few functions on the switch and spawn paths that GCC would
 * otherwise call: each call costs a dozen instructions of register saves
 * there. */
#define CORO__INLINE inline __attribute__((always_inline))
#define CORO__NEVER INT64_MAX /* a deadline that never comes */

/* AddressSanitizer needs to be told about stack switches. */
#if defined(__SANITIZE_ADDRESS__)
#define CORO__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO__ASAN 1
#endif
#endif
#ifndef CORO__ASAN
#define CORO__ASAN 0
#endif

/* ThreadSanitizer likewise: each coroutine is a TSan fiber. */
#if defined(__SANITIZE_THREAD__)
#define CORO__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORO__TSAN 1
#endif
#endif
#ifndef CORO__TSAN
#define CORO__TSAN 0
#endif

/* Valgrind, where its header is installed: each coroutine stack is
 * registered, or memcheck takes every switch for a wild stack pointer
 * change and reports reads of the other stacks.  The requests are a few
 * no-op instructions when the program does not run under Valgrind, and
 * are made only when a stack is first handed out or leaves the cache. */
#if !defined(CORO_NO_VALGRIND) && defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#define CORO__VALGRIND 1
#endif
#endif
#ifndef CORO__VALGRIND
#define CORO__VALGRIND 0
#endif

/* ------------------------------------------------------------------ */
/* Timers: an intrusive binary min-heap (timer.c).                    */

/*
 * A timer carries its own heap node, so arming one allocates nothing; the
 * node usually lives on the waiting coroutine's stack.  The heap is a
 * pointer-linked complete binary tree (as in libuv): no array to grow, and
 * no memory outside the node, which keeps a parked coroutine within its
 * stack page.
 */
struct coro__heap_node {
    struct coro__heap_node *left, *right, *parent; /* owned by the heap */
};

struct coro__timer {
    struct coro__heap_node node; /* first member: node == timer */
    int64_t deadline;                          /* absolute ticks */
    uint64_t seq;     /* arm order: breaks ties between equal deadlines */
    bool armed;       /* in the heap */
    void (*fire)(struct coro__timer *t); /* called once, disarmed first */
};

struct coro__timer_heap {
    struct coro__heap_node *root; /* earliest deadline, NULL if empty */
    size_t count;             /* nodes in the heap */
    uint64_t next_seq;        /* next arm order number */
};

/* The earliest armed deadline, NEVER when no timer is armed. */
static inline int64_t coro__timer_next(const struct coro__timer_heap *h)
{
    return h->root ? ((const struct coro__timer *)h->root)->deadline
                   : CORO__NEVER;
}
void coro__timer_arm(struct coro__timer_heap *h, struct coro__timer *t,
                     int64_t deadline);
/* Take the armed timer t out of the heap. */
void coro__timer_remove(struct coro__timer_heap *h, struct coro__timer *t);
/* Disarm t if it is armed. */
static inline void coro__timer_disarm(struct coro__timer_heap *h,
                                      struct coro__timer *t)
{
    if (t->armed)
        coro__timer_remove(h, t);
}
/* Fire every timer whose deadline is <= now, earliest first, and return
 * how many fired. */
size_t coro__timer_fire_due(struct coro__timer_heap *h, int64_t now);

/* ------------------------------------------------------------------ */
/* Waits (wait.c): the one park/wake primitive under every block.     */

/* What ended a wait. */
enum coro__wake_cause {
    CORO__WOKEN_NOT = 0,   /* still waiting */
    CORO__WOKEN_BY_OBJECT, /* the awaited object (wake from a primitive) */
    CORO__WOKEN_BY_TIMER,  /* its own or a with_timeout deadline */
    CORO__WOKEN_BY_INTERRUPT
};

/*
 * One wait, on the waiter's stack.  A blocking call fills it, calls
 * coro__wait_begin(), queues it on the awaited object, and calls
 * coro__wait_park().  Exactly one cause wakes it; when that cause is not
 * the object, park calls cancel() so the object forgets the waiter (or
 * passes on what it had already handed over).
 */
struct coro__wait {
    struct coro *co;            /* the waiter; set by coro__wait_begin() */
    const char *what;           /* "sleep", "join"..., for where() */
    const coro_site_t *site;    /* caller's site, or NULL */
    const void *addr;           /* return address of the blocking call */
    int64_t deadline;           /* the call's own deadline, or NEVER */
    int deadline_err;           /* its result when its own deadline comes:
                                   0 for sleep, ETIMEDOUT for a timeout */
    void (*cancel)(struct coro__wait *w); /* may be NULL */
    void *obj;                  /* the awaited object, for cancel() */
    struct coro__wait *next, *prev; /* link in the object's queue */
    bool queued;                /* in an object's queue (waitq keeps it) */
    enum coro__wake_cause cause; /* set by whoever wakes it */
    int err;                    /* 0, or the errno park returns */
    intptr_t value;             /* payload handed over by the waker */
    struct coro__timer timer;   /* armed at the nearest deadline */
};

/* Park until woken; returns 0 or -1 with errno (w->err). */
int coro__wait_park(struct coro__wait *w);
/* Fill a wait record for a blocking call (deadline NEVER, no object).
 * Field by field: zeroing the whole record costs a rep stos per wait. */
static inline void coro__wait_init(struct coro__wait *w, const char *what,
                                   const coro_site_t *site, const void *addr)
{
    w->co = NULL;
    w->what = what;
    w->site = site;
    w->addr = addr;
    w->deadline = INT64_MAX;
    w->deadline_err = 0;
    w->cancel = NULL;
    w->obj = NULL;
    w->next = w->prev = NULL;
    w->queued = false;
    w->cause = CORO__WOKEN_NOT;
    w->err = 0;
    w->value = 0;
    w->timer.armed = false;
}
/* Declare and fill w for the calling blocking function. */
#define CORO__WAIT(w, what, site)                                          \
    struct coro__wait w;                                                   \
    coro__wait_init(&w, (what), (site), __builtin_return_address(0))

/* A doubly linked FIFO of waits, for objects with waiters. */
struct coro__waitq {
    struct coro__wait *head, *tail;
};
static inline void coro__waitq_push(struct coro__waitq *q,
                                    struct coro__wait *w)
{
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail != NULL)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    w->queued = true;
}

static inline void coro__waitq_remove(struct coro__waitq *q,
                                      struct coro__wait *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->next = w->prev = NULL;
    w->queued = false;
}

static inline struct coro__wait *coro__waitq_pop(struct coro__waitq *q)
{
    struct coro__wait *w = q->head;
    if (w != NULL)
        coro__waitq_remove(q, w);
    return w;
}

/* ------------------------------------------------------------------ */
/* Deadlines (deadline.c).                                             */

/* One coro_with_timeout()/coro_with_grace() frame, on the stack. */
struct coro__deadline {
    int64_t deadline;              /* absolute ticks */
    struct coro__deadline *outer;  /* enclosing frame or NULL */
    bool shield;                   /* grace: hides the frames outside */
    bool expired;                  /* a wait inside failed on it */
    bool saw_outer;                /* a wait inside failed on an outer one */
};

/* coro__deadline_min() for a coroutine inside with_timeout frames. */
int64_t coro__deadline_walk(const struct coro__deadline *d);

/* Record that a wait of co failed on deadlines at time now. */
void coro__deadline_hit(struct coro *co, int64_t now);

/* ------------------------------------------------------------------ */
/* Stacks (stack.c).                                                   */

struct coro__slab;

/* A stack a coroutine holds: [lo, hi) usable, record at hi. */
struct coro__stack {
    char *lo;                 /* lowest usable byte (canary lives here) */
    char *hi;                 /* end of the usable stack = the record */
    size_t size;              /* class size: hi - lo + record space */
    bool guarded;             /* a PROT_NONE page lies below lo */
    unsigned vg_id;           /* Valgrind's id for the stack, if any */
    struct coro__slab *slab;  /* the slab it was cut from */
};

/* Reserve a stack of class size.  Returns the address where the struct
 * coro goes, with only its stack member filled in (the caller sets every
 * other field), or NULL with errno. */
struct coro *coro__stack_get(struct sched *s, size_t size);
/* Whether co's record lies in one of s's stack slabs (a coroutine of this
 * thread): one look per slab, no id table. */
bool coro__stack_owned(struct sched *s, const struct coro *co);
/* Give a stack back (its record becomes a free marker). */
void coro__stack_put(struct sched *s, struct coro *co);
/* Check the canary of an unguarded stack; abort with a report if broken. */
void coro__stack_check(const struct coro *co, const void *sp);
/* Fill the stack counters of *out. */
void coro__stack_stats(struct sched *s, coro_stats_t *out);
/* Release every slab (coro_fini). */
void coro__stack_fini(struct sched *s);
size_t coro__page_size(void);

/* ------------------------------------------------------------------ */
/* Coroutines and the scheduler (sched.c).                             */

#define CORO__MAGIC_LIVE 0xC0C0A11Eu /* a record in use */
#define CORO__MAGIC_FREE 0xDEADC0C0u /* a cached stack's record */

struct coro__local; /* local.c */

struct coro {
    uint32_t magic;           /* CORO__MAGIC_LIVE while valid */
    uint8_t state;            /* coro_state_t */
    bool joinable;            /* keeps status until joined */
    int id;                   /* >= 1, unique among existing coroutines */
    struct sched *sched;      /* its thread's scheduler: a coro_t * used
                                 on another thread is refused */
    struct coro__ctx ctx;     /* saved context while not running */
    coro_fn fn;               /* entry function */
    void *arg;                /* its argument, borrowed */
    int status;               /* return value once dead */
    int err;                  /* errno with a negative status, else 0 */
    int pending_err;          /* undelivered interrupt, 0 if none */
    struct coro *run_next;    /* run queue link, owned by the sched */
    struct coro *all_prev, *all_next; /* list of every coroutine */
    struct coro *hash_next;   /* id hash chain */
    struct coro **hash_pprev; /* the link that points at us */
    struct coro__wait *wait;  /* the wait it is parked in, or NULL */
    struct coro__deadline *deadlines; /* innermost with_timeout frame */
    struct coro__waitq joiners; /* coroutines in coro_join() on it */
    struct coro__local *locals; /* coroutine-local values, newest first */
    uint64_t switches;        /* switch-ins */
    int64_t run_ticks;        /* total ticks run */
    int64_t max_slice_ticks;  /* longest slice */
    int selfish_acts;         /* non-blocking successes left before a
                                 forced yield, 1..max_selfish_acts */
    int max_selfish_acts;     /* refill value, 1..CORO__SELFISH_MAX */
    uint64_t selfish_yields;  /* yields forced by coro__selfish_act() */
    struct coro__stack stack; /* the stack this record sits on */
    void *asan_fake_stack;    /* ASan fake stack saved while switched out */
    void *tsan_fiber;         /* TSan fiber of this coroutine (TSan only) */
    char name[CORO_NAME_MAX + 1];
};

/* ------------------------------------------------------------------ */
/* Latency warnings and the watchdog (latency.c).                      */

/* Frames a watchdog sample keeps: enough to reach from a hot loop to the
 * request handler that called it, small enough to print on one screen. */
#define CORO__LAT_FRAMES 32

/* Where a coroutine was resumed, copied at switch-in: its wait record and
 * the caller's site (a compound literal in the caller's block) are gone
 * once the blocking call returns, long before a warning is printed. */
struct coro__resumed {
    const char *what;  /* the wait's what, or NULL for a first slice */
    const void *addr;  /* return address of the blocking call */
    coro_site_t site;  /* a copy; file NULL when the call had no site */
};

/*
 * Per-scheduler latency state.  The loop thread writes everything except
 * the fields marked "clock thread", which the clock thread writes under
 * the watch lock (latency.c) while the scheduler is on the watch list.
 * The signal handler runs on the loop thread and writes only the sample.
 */
struct coro__latency {
    /* Slice length in ticks above which a warning is printed; INT64_MAX
     * when warnings are off.  Read at every switch-out and by the clock
     * thread: relaxed atomic, set only by coro_set_latency_warning(). */
    _Atomic int64_t threshold_ticks;
    double factor;             /* threshold / 0.2 s, as last set */
    /* Set from the top of a switch until the new context runs (cleared
     * in after_switch()): the signal handler must not walk a stack while
     * s->current and the stack pointer disagree.  Same thread only. */
    _Atomic bool switching;
    struct coro__resumed resumed; /* of the running slice (switch-in) */
    /* The watch list (loop thread, under the watch lock). */
    bool watched;              /* on the watch list */
    struct sched *watch_next;  /* next watched scheduler */
    pthread_t thread;          /* the loop's thread, for pthread_kill */
    int64_t sent_start;        /* clock thread: slice_start of the last
                                  slice it signalled about */
    _Atomic int64_t want_start; /* clock thread: slice the handler should
                                   sample (its slice_start) */
    /* The last sample, written by the signal handler. */
    int64_t sample_start;      /* slice_start of the sampled slice; 0 none
                                  (written last, after the frames) */
    int64_t sample_ticks;      /* how far into the slice it was taken */
    int npcs;                  /* valid entries of pcs */
    uintptr_t pcs[CORO__LAT_FRAMES]; /* interrupted pc, then returns */
    /* Rate limit: at most CORO__LAT_BURST warnings per second. */
    int64_t window_start;      /* ticks when the current window began */
    int window_count;          /* warnings printed in it */
    uint64_t suppressed;       /* dropped since the last printed one */
    char text[4096];           /* the warning being formatted: kept off
                                  the (possibly small) coroutine stack */
};

/* Warnings printed per one-second window; the rest are counted. */
#define CORO__LAT_BURST 5

/* Print the warning for from's slice of slice ticks (do_switch, cold). */
void coro__latency_warn(struct sched *s, struct coro *from, int64_t slice,
                        bool ended);
/* Defaults for a new scheduler (factor 1). */
void coro__latency_init(struct sched *s);
/* The loop started or stopped running coroutines (coro__clock_busy): put
 * s on the watch list or take it off. */
void coro__watchdog_busy(struct sched *s, bool busy);
/* Clock thread, each tick: signal loops whose slice is over threshold. */
void coro__watchdog_tick(int64_t now);
/* In a fork()ed child: forget the parent's watch list. */
void coro__watchdog_after_fork(void);

/* Every piece of per-thread scheduler state. */
struct sched {
    struct coro *current;      /* running coroutine, NULL in the loop */
    struct coro__ctx loop_ctx; /* the loop's (or creator's) context */
    struct coro *run_head, *run_tail; /* FIFO run queue */
    size_t run_count;          /* coroutines in the run queue */
    int *errno_p;              /* &errno of the scheduler's thread */
    struct coro__timer_heap timers; /* every armed timer */
    int64_t now;               /* ticks at the last switch or loop pass */
    /* Ticks when current was switched in; INT64_MAX while the loop runs
     * (no slice).  The clock thread's watchdog reads it: relaxed atomic. */
    _Atomic int64_t slice_start;
    int64_t last_resync;       /* ticks of the last tsc_resync() */
    bool running;              /* inside coro_event_loop() */
    bool exit_requested;       /* coro_set_exit() called */
    bool clock_busy;           /* counted as busy by the coarse clock */
    uint32_t chain;            /* direct switches since the last pass */
    /* Coarse ticks at which a chain of direct switches gives the loop a
     * pass (CORO__PASS_USEC after the pass that began it); set by each
     * pass, and to INT64_MIN by coro_set_exit() so that the loop gets
     * control at the next switch; read by coro__pick_next(). */
    int64_t pass_until;
    int exit_code;             /* given to coro_set_exit() */
    struct coro *dead;         /* ended, stack to free after the switch */
    struct coro *all_head, *all_tail; /* every coroutine, creation order */
    size_t count;              /* coroutines in the list */
    size_t live;               /* started and not yet dead */
    struct coro **id_hash;     /* buckets, power of two */
    size_t id_hash_size;       /* number of buckets */
    int next_id;               /* next id to try */
    bool ids_wrapped;          /* next_id has wrapped: ids may be in use */
    size_t default_stack;      /* default stack class, bytes */
    uint64_t switches;         /* total switch-ins */
    uint64_t passes;           /* loop passes */
    coro_hooks_t hooks;        /* profiler/tracer hooks */
    bool has_hooks;            /* a hook other than fini set: one test on
                                  the hot path */
    bool in_fini;              /* coro_fini() is calling the fini hook */
    coro_exit_notifier_fn notifier; /* NULL = default */
    int default_selfish;       /* max_selfish_acts of new coroutines */
    struct coro__latency lat;  /* latency warnings and the watchdog */
    struct coro__stacks *stacks; /* stack.c state */
    struct coro__io *io;       /* fd.c state: poller, fd records; NULL
                                  until the first fd is used */
    struct coro__signals *signals; /* signal.c state; NULL until used */
    struct coro__procs *procs; /* process.c state; NULL until used */
    struct coro__offload *offload; /* offload.c: the thread pool; NULL
                                      until first used */
    void *tsan_loop_fiber;     /* the thread's own TSan fiber (TSan only) */
    char *asan_loop_stack_lo;  /* loop's stack, for ASan switches */
    size_t asan_loop_stack_size;
    _Alignas(16) unsigned char loop_ctx_storage[CORO__CTX_SELF_STORAGE];
};

/* Read on every call that touches the scheduler.  Initial-exec: one load
 * off the thread pointer, where the shared library's default model would
 * call __tls_get_addr() each time.  Static TLS costs 8 bytes here, which
 * fits the reserve glibc keeps for libraries loaded with dlopen(). */
extern __thread struct sched *coro__tls_sched
    __attribute__((tls_model("initial-exec")));

/* The thread's scheduler, created on first use; NULL with errno ENOMEM. */
struct sched *coro__sched(void);
/* The scheduler if it exists; never creates one. */
static inline struct sched *coro__sched_peek(void)
{
    return coro__tls_sched;
}
/* The running coroutine, or NULL with errno EPERM outside coroutines:
 * the check every blocking call starts with. */
static inline struct coro *coro__self(void)
{
    struct sched *s = coro__tls_sched;
    if (s == NULL || s->current == NULL) {
        errno = EPERM;
        return NULL;
    }
    return s->current;
}
/* coro__check() when the pointer is not a live coroutine of this thread:
 * NULL with errno EINVAL or ESRCH. */
struct coro *coro__check_fail(const coro_t *co);
/* A live coroutine of this thread's scheduler, or NULL with errno EINVAL
 * (NULL, not a coroutine, another thread's) or ESRCH (ended and gone). */
static inline struct coro *coro__check(const coro_t *c)
{
    struct coro *co = (struct coro *)c;
    if (CORO__LIKELY(co != NULL && co->magic == CORO__MAGIC_LIVE &&
                     co->sched == coro__tls_sched))
        return co;
    return coro__check_fail(c);
}
/* Put co at the tail of the run queue. */
static inline void coro__make_runnable(struct sched *s, struct coro *co)
{
    co->state = CORO_RUNNABLE;
    co->run_next = NULL;
    if (s->run_tail != NULL)
        s->run_tail->run_next = co;
    else
        s->run_head = co;
    s->run_tail = co;
    s->run_count++;
}

/* Wake w's coroutine by its object with payload value; false if it was
 * already woken by another cause. */
static inline bool coro__wake(struct coro__wait *w, intptr_t value)
{
    struct coro *co = w->co;
    if (co->state != CORO_WAITING || co->wait != w)
        return false;
    w->cause = CORO__WOKEN_BY_OBJECT;
    w->value = value;
    coro__make_runnable(coro__tls_sched, co);
    return true;
}

/* Nearest deadline that applies to co (NEVER if none). */
static inline int64_t coro__deadline_min(const struct coro *co)
{
    return co->deadlines != NULL ? coro__deadline_walk(co->deadlines)
                                 : CORO__NEVER;
}

/* coro__wait_begin() for a coroutine with a pending interrupt or a
 * deadline (wait.c). */
int coro__wait_begin_check(struct coro__wait *w);
/* Fail at once (-1, errno) if the caller may not block now: EPERM outside
 * a coroutine, a pending interrupt, a passed deadline.  Otherwise 0. */
static inline int coro__wait_begin(struct coro__wait *w)
{
    struct coro *co = coro__self();
    if (co == NULL)
        return -1;
    w->co = co;
    if (CORO__LIKELY(co->pending_err == 0 && co->deadlines == NULL))
        return 0;
    return coro__wait_begin_check(w);
}
/* Free a coroutine that never ran (in_parallel's ENOMEM path). */
void coro__discard(struct sched *s, struct coro *co);
/* Mark the start of a switch for the watchdog's signal handler (see
 * struct coro__latency): it skips samples until after_switch(). */
static inline void coro__switch_mark(struct sched *s, bool on)
{
    atomic_store_explicit(&s->lat.switching, on, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
}

/* Copy where `to` resumes into s->lat.resumed (do_switch, while warnings
 * are on): only at switch-in are its wait record and site still alive. */
static inline void coro__latency_resumed(struct sched *s,
                                         const struct coro *to)
{
    struct coro__resumed *r = &s->lat.resumed;
    const struct coro__wait *w = to->wait;
    if (w == NULL) {
        r->what = NULL; /* a first slice: no wait yet */
        return;
    }
    r->what = w->what;
    r->addr = w->addr;
    if (w->site != NULL)
        r->site = *w->site;
    else
        r->site.file = NULL;
}

/* ------------------------------------------------------------------ */
/* Selfishness (selfish.c): fairness for calls that need not block.    */

#define CORO__SELFISH_DEFAULT 4   /* Shrapnel's default */
#define CORO__SELFISH_MAX 32768   /* Shrapnel's upper bound */

/*
 * Count one selfish act of co: an operation (a socket call) that could
 * have blocked and succeeded at once.  Returns true when co has made
 * max_selfish_acts of them since it last gave up the CPU: the caller must
 * then yield to the back of the run queue (coro_yield_at()) before it
 * returns, so one busy connection cannot starve the others.  The counter
 * is refilled and co->selfish_yields counted then.
 */
static inline bool coro__selfish_act(struct coro *co)
{
    if (CORO__LIKELY(--co->selfish_acts > 0))
        return false;
    co->selfish_acts = co->max_selfish_acts;
    co->selfish_yields++;
    return true;
}

/* The operation blocked on its own (it had to wait for readiness): co gave
 * up the CPU anyway, so its next max_selfish_acts acts are free again. */
static inline void coro__selfish_reset(struct coro *co)
{
    co->selfish_acts = co->max_selfish_acts;
}

/* Refresh and return s->now. */
static inline int64_t coro__now(struct sched *s)
{
    return s->now = tsc__read();
}

/* clock.c: a coarse tick count, refreshed about every millisecond while a
 * loop runs coroutines.  Read with coro__coarse_now(). */
extern _Atomic int64_t coro__coarse_ticks;
/* Start the ticker thread once per process (after fork too). */
void coro__clock_start(void);
/* Tell the ticker whether this loop is running coroutines (fast ticks). */
void coro__clock_busy(struct sched *s, bool busy);
/* The coarse time, never behind the scheduler's last precise reading. */
static inline int64_t coro__coarse_now(const struct sched *s)
{
    int64_t t = atomic_load_explicit(&coro__coarse_ticks,
                                     memory_order_relaxed);
    return t > s->now ? t : s->now;
}

/*
 * How long coroutines that keep waking each other (or yielding) run in a
 * chain of direct switches before the loop gets a pass to poll the fds:
 * the bound on how long a busy program keeps I/O waiting.  It is read on
 * the coarse clock, so the pass comes 1-2 ms after the last one.  Timers
 * need no such bound: each switch compares the coarse time with the
 * earliest deadline.  A poll costs a system call (about 1.1 us where the
 * kernel isolates its page tables), so polling after a count of switches
 * instead, 256 as it was, cost a quarter of a short-lived coroutine's
 * life (docs/performance.md).
 */
#define CORO__PASS_USEC 1000

/* Direct switches before the loop gets a pass whatever the time says: the
 * backstop that bounds how long timers and I/O wait should the coarse
 * clock not advance (its thread could not start, or is starved). */
#define CORO__CHAIN_MAX 4096

/* Take the head of the run queue, or NULL. */
static inline struct coro *coro__run_pop(struct sched *s)
{
    struct coro *co = s->run_head;
    if (co != NULL) {
        s->run_head = co->run_next;
        if (s->run_head == NULL)
            s->run_tail = NULL;
        s->run_count--;
    }
    return co;
}

/* The coroutine to switch to from the running one at time now: the head
 * of the run queue, or NULL (the loop) when the loop has work. */
static inline struct coro *coro__pick_next(struct sched *s, int64_t now)
{
    struct coro *to = NULL;
    /* Go straight to the next coroutine unless the loop has work. */
    if (CORO__LIKELY(now < s->pass_until && s->chain < CORO__CHAIN_MAX &&
                     now < coro__timer_next(&s->timers)))
        to = coro__run_pop(s);
    /* A yield with nobody else to run counts too, or a coroutine that
     * keeps yielding would keep the loop from ever polling the fds. */
    s->chain++;
    return to;
}

/*
 * Switch from `from` to `to` (NULL means the loop) at time now (sched.c).
 * A coroutine that has never run is started by a call on its stack.
 * Returns when `from` is switched back in.  Every switch goes through this
 * one function, so that the return after each is predicted.
 */
void coro__do_switch(struct sched *s, struct coro *from, struct coro *to,
                     int64_t now);

/* Switch away from the running coroutine, which has set its state; returns
 * when it is switched back in. */
static inline void coro__switch_out(struct sched *s)
{
    struct coro *from = s->current;
    int64_t now = coro__coarse_now(s);
    struct coro *to = coro__pick_next(s, now);
    if (to == from) {
        from->state = CORO_RUNNING;
        return;
    }
    coro__do_switch(s, from, to, now);
}

/* The two ends of a park, shared by coro__wait_park() and
 * coro__wait_park_fast(): park co in w until something wakes it ... */
static CORO__INLINE void coro__wait_sleep(struct sched *s, struct coro *co,
                                          struct coro__wait *w)
{
    co->wait = w;
    co->state = CORO_WAITING;
    coro__switch_out(s);
    co->wait = NULL;
}

/* ... and once it runs again, let the object forget a wait it did not
 * wake, and report: 0, or -1 with errno w->err. */
static CORO__INLINE int coro__wait_end(struct coro__wait *w)
{
    if (CORO__UNLIKELY(w->cause != CORO__WOKEN_BY_OBJECT) &&
        w->cancel != NULL)
        w->cancel(w);
    if (CORO__UNLIKELY(w->err != 0)) {
        errno = w->err;
        return -1;
    }
    return 0;
}

/*
 * coro__wait_park() with its common case inline, for the hot waits (join,
 * the sync objects): with no deadline to arm, no timer can wake the wait,
 * so only its object or an interrupt does.
 */
static CORO__INLINE int coro__wait_park_fast(struct coro__wait *w)
{
    struct coro *co = w->co;
    if (co->deadlines != NULL || w->deadline != CORO__NEVER)
        return coro__wait_park(w);
    w->cause = CORO__WOKEN_NOT;
    w->err = 0;
    coro__wait_sleep(coro__tls_sched, co, w);
    return coro__wait_end(w);
}

/* process.c: nothing to free yet; for coro_fini. */
void coro__process_fini(struct sched *s);
/* In a fork() child: fail every process wait with ECHILD (the children
 * waited for are the parent's).  Called by the poller's fork handling. */
void coro__process_after_fork(struct sched *s);

/* local.c: run destructors and free co's values. */
void coro__local_exit(struct coro *co);

/* offload.c: join the pool's threads and free it (coro_fini, before the
 * I/O state goes, as finished jobs are posted through it). */
void coro__offload_fini(struct sched *s);

/* diag.c: async-signal-safe formatting into a fixed buffer (for signal
 * handlers: no stdio, no malloc). */
struct coro__buf {
    char *p;    /* storage, borrowed */
    size_t len; /* bytes used */
    size_t cap; /* bytes available; output beyond it is dropped */
};
void coro__buf_str(struct coro__buf *b, const char *s);
void coro__buf_num(struct coro__buf *b, int64_t v);
void coro__buf_hex(struct coro__buf *b, uintptr_t v);
/* write(2) all of b to fd, ignoring errors. */
void coro__buf_write(const struct coro__buf *b, int fd);
/* Append "#id 'name'" of co. */
void coro__buf_coro(struct coro__buf *b, const struct coro *co);

/* Append "what at file:line in func()", or "what at 0xaddr" followed by
 * " in sym()" when symbolize is set and dladdr knows the symbol (not
 * async-signal-safe then). */
void coro__buf_site(struct coro__buf *b, const char *what, const void *addr,
                    const char *file, int line, const char *func,
                    bool symbolize);

/* backtrace.c: walk frame pointers from (pc, fp) within [lo, hi) into
 * pcs[max]; returns how many it kept (pc first).  Async-signal-safe. */
int coro__walk(uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi,
               uintptr_t *pcs, int max);
/* The stack of co, the running coroutine, at the code a signal
 * interrupted (uctx), into pcs[max], recovering a chain the interrupted
 * code broke; returns how many (0 if unknown).  Async-signal-safe. */
int coro__sample(const struct coro *co, const void *uctx, uintptr_t *pcs,
                 int max);
/* Note the code segments of the loaded modules (once per process), for
 * coro_backtrace_signal()'s recovery of a broken chain. */
void coro__text_init(void);

/* diag.c */
void coro__default_notifier(coro_t *co, int status, int err);
/* Write coro_print_stderr()'s prefix ("2026-11-22 03:17:05.843200 #id: ")
 * into buf; returns its length (< len). */
size_t coro__stamp(char *buf, size_t len);
/* Write one formatted message (lines ending in '\n') to stderr, then hand
 * it to this thread's log sinks (coro_log_sink_add()).  Not for signal
 * handlers. */
void coro__log_emit(const char *text, size_t len);

/* ------------------------------------------------------------------ */
/* System seams (sys.c): every syscall and allocation the core makes. */

enum coro__sys_op {
    CORO__SYS_MMAP,
    CORO__SYS_MPROTECT,
    CORO__SYS_MALLOC,
    CORO__SYS_OPS
};
void *coro__sys_mmap(size_t len);          /* anonymous, NORESERVE, RW */
/* A mapping no test fails on purpose (the signal stack: without it we
 * only lose the overflow report). */
void *coro__sys_mmap_untested(size_t len);
int coro__sys_munmap(void *p, size_t len);
int coro__sys_mprotect_none(void *p, size_t len);
int coro__sys_madvise_free(void *p, size_t len);
void *coro__sys_malloc(size_t n);
void *coro__sys_calloc(size_t n, size_t size);
void *coro__sys_realloc(void *p, size_t n);
void coro__sys_free(void *p);
/* Tests: make the nth next call of op fail with err (nth 1 = next call). */
void coro__sys_fail(enum coro__sys_op op, int nth, int err);
/* The maximum number of mappings the kernel allows this process. */
long coro__sys_max_map_count(void);
/* A cross-thread wake-up fd pair (the same fd twice for an eventfd):
 * open, signal from any thread, drain on the loop's thread, close. */
int coro__sys_wakeup_open(int *rfd, int *wfd);
void coro__sys_wakeup_signal(int wfd);
void coro__sys_wakeup_drain(int rfd);
void coro__sys_wakeup_close(int rfd, int wfd);
/* A pipe with both ends close-on-exec (blocking).  0, or -1 with errno. */
int coro__sys_pipe_cloexec(int p[2]);
/* A pidfd for child pid (close-on-exec), or -1 with errno: ENOSYS where
 * there are none (old kernels, other systems), ESRCH, EMFILE... */
int coro__sys_pidfd_open(pid_t pid);

struct sockaddr;
/* Sockets.  New fds are non-blocking and close-on-exec; -1 and errno. */
int coro__sys_socket(int domain, int type, int protocol);
int coro__sys_socketpair(int domain, int type, int protocol, int sv[2]);
int coro__sys_accept(int lfd, struct sockaddr *addr, socklen_t *addrlen);
/* sendfile(2) where it exists, else one buffer through read and write. */
ssize_t coro__sys_sendfile(int out_fd, int in_fd, off_t *offset,
                           size_t count);
/* MSG_NOSIGNAL, or 0 where sockets are made with SO_NOSIGPIPE instead. */
extern const int coro__sys_msg_nosignal;
/* Once per process: if SIGPIPE's disposition is the default (death), set
 * it to ignored.  For writes that cannot say MSG_NOSIGNAL. */
void coro__sys_sigpipe_off(void);
/* Whether coro__sys_sigpipe_off() changed SIGPIPE to ignored (children
 * started by coro get the default back, as the program had it). */
bool coro__sys_sigpipe_ours(void);

/* coro__sys_uctx_regs(): see context_internal.h. */
/* What a code address is, for a backtrace line. */
struct coro__sym {
    const char *name;     /* the symbol containing pc, or NULL (none is
                             exported, or its size does not cover pc) */
    uintptr_t name_off;   /* pc - the symbol's address */
    const char *module;   /* file name of the object, or NULL */
    uintptr_t module_off; /* pc - the object's load address */
};
/* Fill *out for pc.  Not async-signal-safe (dladdr). */
void coro__sys_symbolize(const void *pc, struct coro__sym *out);

/* symtab.c: the function around pc in the module at path (loaded at
 * base) from the module's own symbol table: *name (valid for the life of
 * the process) and *off.  False when the file has no such symbol. */
bool coro__symtab_find(const char *path, uintptr_t base, const void *pc,
                       const char **name, uintptr_t *off);

#endif /* CORO_CORO_INTERNAL_H */
