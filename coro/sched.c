/*
 * The scheduler: coroutine records, ids, the run queue, switching, the
 * event loop, spawn/exit/join.
 *
 * Switching is symmetric: a coroutine that blocks or yields switches
 * straight to the next runnable coroutine, without a round trip through
 * the loop.  The loop gets control back only when the run queue is empty,
 * a timer is due, or coro_set_exit() was called; one TSC read per switch
 * decides that and times the slice that just ended.
 */
#include "coro_internal.h"
#include "io_internal.h"
#include "signal_internal.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if CORO__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if CORO__TSAN
#include <sanitizer/tsan_interface.h>
#endif

__thread struct sched *coro__tls_sched
    __attribute__((tls_model("initial-exec")));

/* Default stack: enough for libc calls like printf with room to spare.
 * ASan's redzones make frames several times larger. */
#if CORO__ASAN
#define DEFAULT_STACK (256u * 1024)
#else
#define DEFAULT_STACK (64u * 1024)
#endif
#define STACK_MAX ((size_t)1 << 30)
/* Coroutines per bucket before the id table grows.  Lookups are rare (by
 * id, and id allocation after the ids wrap); 8 keeps the table at one
 * byte per coroutine.  The table itself is made on the first lookup: a
 * program that never looks up an id pays neither the byte nor the links
 * at each spawn, so parked coroutines cost exactly their page. */
#define ID_HASH_LOAD 8

static void loop_stack_bounds(struct sched *s)
{
#if CORO__ASAN
    pthread_attr_t a;
    void *lo;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        if (pthread_attr_getstack(&a, &lo, &size) == 0) {
            s->asan_loop_stack_lo = lo;
            s->asan_loop_stack_size = size;
        }
        pthread_attr_destroy(&a);
    }
#else
    (void)s;
#endif
}

/*
 * A thread that ends with a scheduler gets it freed as by coro_fini(),
 * through a thread-specific key's destructor: threads that use coro for a
 * while need not call coro_fini() to give its stacks, fds and signals
 * back.  With coroutines left, coro_fini() refuses and the scheduler stays
 * (freeing stacks that still hold frames would be worse than the leak).
 */
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static bool exit_key_made;

static void at_thread_exit(void *arg)
{
    if (arg == coro__tls_sched) /* __thread data lives until after this */
        coro_fini();
}

static void exit_key_make(void)
{
    exit_key_made = pthread_key_create(&exit_key, at_thread_exit) == 0;
}

struct sched *coro__sched(void)
{
    struct sched *s = coro__tls_sched;
    if (CORO__LIKELY(s != NULL))
        return s;
    tsc_init(); /* a bad TSC_TIME_SOURCE falls back to auto: not fatal */
    s = coro__sys_calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    coro__ctx_init_self(&s->loop_ctx, s->loop_ctx_storage);
    s->next_id = 1;
    s->errno_p = &errno; /* this thread's: fixed for its lifetime */
    s->default_stack = DEFAULT_STACK;
    s->now = s->last_resync = tsc__read();
    s->default_selfish = CORO__SELFISH_DEFAULT;
    coro__latency_init(s);
    coro__text_init();
    loop_stack_bounds(s);
#if CORO__TSAN
    s->tsan_loop_fiber = __tsan_get_current_fiber();
#endif
    coro__clock_start();
    coro__tls_sched = s;
    pthread_once(&exit_once, exit_key_make);
    if (exit_key_made)
        pthread_setspecific(exit_key, s);
    return s;
}

struct coro *coro__check_fail(const coro_t *c)
{
    const struct coro *co = (const struct coro *)c;
    if (co == NULL || co->magic == CORO__MAGIC_LIVE) {
        errno = EINVAL; /* NULL, or another thread's coroutine */
        return NULL;
    }
    /* A cached or released stack: the coroutine has ended and gone. */
    errno = (co->magic == CORO__MAGIC_FREE || co->magic == 0) ? ESRCH
                                                               : EINVAL;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Ids                                                                */

static struct coro **bucket(struct sched *s, int id)
{
    return &s->id_hash[(size_t)id & (s->id_hash_size - 1)];
}

/* Put co at the head of the chain *b. */
static void hash_link(struct coro **b, struct coro *co)
{
    co->hash_next = *b;
    co->hash_pprev = b;
    if (*b != NULL)
        (*b)->hash_pprev = &co->hash_next;
    *b = co;
}

/* Give the id table n buckets and link every coroutine into it; 0, or -1
 * with errno ENOMEM (the old table, if any, stays). */
static int id_rehash(struct sched *s, size_t n)
{
    struct coro **t = coro__sys_calloc(n, sizeof *t);
    if (t == NULL)
        return -1;
    coro__sys_free(s->id_hash);
    s->id_hash = t;
    s->id_hash_size = n;
    for (struct coro *co = s->all_head; co != NULL; co = co->all_next)
        hash_link(bucket(s, co->id), co);
    return 0;
}

/* The table's size for count coroutines, a power of two. */
static size_t id_hash_want(size_t count)
{
    size_t n = 64;
    while (n * ID_HASH_LOAD < count + 1)
        n *= 2;
    return n;
}

/* The coroutine with this id, or NULL.  Makes the id table on first use;
 * without memory for it, walks the list of all coroutines. */
static struct coro *id_lookup(struct sched *s, int id)
{
    if (s->id_hash == NULL && id_rehash(s, id_hash_want(s->count)) != 0) {
        for (struct coro *co = s->all_head; co != NULL; co = co->all_next)
            if (co->id == id)
                return co;
        return NULL;
    }
    for (struct coro *co = *bucket(s, id); co != NULL; co = co->hash_next)
        if (co->id == id)
            return co;
    return NULL;
}

/* Make room for one more coroutine in the id table, if there is one; 0 or
 * -1/ENOMEM. */
static int id_reserve(struct sched *s)
{
    if (s->id_hash == NULL ||
        s->count + 1 <= s->id_hash_size * ID_HASH_LOAD)
        return 0;
    return id_rehash(s, s->id_hash_size * 2);
}

static int id_next(struct sched *s)
{
    for (;;) {
        int id = s->next_id;
        if (id == INT_MAX)
            s->ids_wrapped = true;
        s->next_id = id == INT_MAX ? 1 : id + 1;
        /* Until the ids wrap, every id handed out is below next_id: no
         * lookup (each one would touch other coroutines' records). */
        if (!s->ids_wrapped || id_lookup(s, id) == NULL)
            return id;
    }
}

/* Add co to the id table and the list of all coroutines. */
static CORO__INLINE void registry_add(struct sched *s, struct coro *co)
{
    if (s->id_hash != NULL)
        hash_link(bucket(s, co->id), co);
    co->all_prev = s->all_tail;
    co->all_next = NULL;
    if (s->all_tail != NULL)
        s->all_tail->all_next = co;
    else
        s->all_head = co;
    s->all_tail = co;
    s->count++;
}

static CORO__INLINE void registry_remove(struct sched *s,
                                        struct coro *co)
{
    if (s->id_hash != NULL) {
        *co->hash_pprev = co->hash_next; /* O(1): no walk along the chain */
        if (co->hash_next != NULL)
            co->hash_next->hash_pprev = co->hash_pprev;
    }
    if (co->all_prev != NULL)
        co->all_prev->all_next = co->all_next;
    else
        s->all_head = co->all_next;
    if (co->all_next != NULL)
        co->all_next->all_prev = co->all_prev;
    else
        s->all_tail = co->all_prev;
    s->count--;
}

/* Forget co entirely and give its stack back. */
static CORO__INLINE void release(struct sched *s, struct coro *co)
{
    registry_remove(s, co);
#if CORO__TSAN
    __tsan_destroy_fiber(co->tsan_fiber); /* never the running one */
#endif
    co->magic = 0;
    coro__stack_put(s, co);
}

/* ------------------------------------------------------------------ */
/* Run queue and switching                                             */

/* Work that must wait until we are off a dead coroutine's stack. */
static CORO__INLINE void after_switch(struct sched *s)
{
    coro__switch_mark(s, false); /* the new context runs: samples allowed */
    struct coro *dead = s->dead;
    if (dead != NULL) {
        s->dead = NULL;
        release(s, dead);
    }
}

static struct coro__ctx *entry(void);

/* Charge co with the slice that ends at now: its run time, its longest
 * slice, and a latency warning past the threshold (INT64_MAX when off). */
static CORO__INLINE void account_slice(struct sched *s, struct coro *co,
                                       int64_t now, int64_t threshold,
                                       bool ended)
{
    int64_t slice = now - atomic_load_explicit(&s->slice_start,
                                               memory_order_relaxed);
    co->run_ticks += slice;
    if (slice > co->max_slice_ticks)
        co->max_slice_ticks = slice;
    if (CORO__UNLIKELY(slice > threshold))
        coro__latency_warn(s, co, slice, ended);
}

/*
 * What a switch from `from` to `to` (NULL means the loop) at time now does
 * before the context changes: account the slice that ends (unless finish()
 * did, for an ended coroutine), run hooks, tell the sanitizers.  *fake
 * receives ASan's fake stack of `from`, unless from has ended (its fake
 * stack is dropped).
 */
static CORO__INLINE void switch_begin(struct sched *s, struct coro *from,
                                      struct coro *to, int64_t now,
                                      void **fake, bool account)
{
    (void)fake;
    coro__switch_mark(s, true);
    int64_t threshold = atomic_load_explicit(&s->lat.threshold_ticks,
                                             memory_order_relaxed);
    if (from != NULL) {
        if (account)
            account_slice(s, from, now, threshold, false);
        if (!from->stack.guarded)
            coro__stack_check(from, __builtin_frame_address(0));
        if (CORO__UNLIKELY(s->has_hooks) && s->hooks.switch_out != NULL)
            s->hooks.switch_out(from, s->hooks.ud);
    }
    s->now = now;
    s->current = to;
    if (to != NULL) {
        to->state = CORO_RUNNING;
        to->switches++;
        s->switches++;
        atomic_store_explicit(&s->slice_start, now, memory_order_relaxed);
        if (threshold != CORO__NEVER)
            coro__latency_resumed(s, to);
        if (CORO__UNLIKELY(s->has_hooks) && s->hooks.switch_in != NULL)
            s->hooks.switch_in(to, s->hooks.ud);
    } else {
        /* The loop runs no slice: the watchdog must not time it. */
        atomic_store_explicit(&s->slice_start, CORO__NEVER,
                              memory_order_relaxed);
    }
#if CORO__ASAN
    bool dying = from != NULL && from->state == CORO_DEAD;
    if (to != NULL)
        __sanitizer_start_switch_fiber(dying ? NULL : fake, to->stack.lo,
                                       (size_t)(to->stack.hi - to->stack.lo));
    else
        __sanitizer_start_switch_fiber(dying ? NULL : fake,
                                       s->asan_loop_stack_lo,
                                       s->asan_loop_stack_size);
#endif
#if CORO__TSAN
    /* Synchronising switch: coroutines of one thread share data freely. */
    __tsan_switch_to_fiber(to != NULL ? to->tsan_fiber : s->tsan_loop_fiber,
                           0);
#endif
}

/* See coro_internal.h.  entry() returns when a started coroutine ends. */
void coro__do_switch(struct sched *s, struct coro *from, struct coro *to,
                     int64_t now)
{
    void *fake = NULL;
    bool fresh = to != NULL && to->switches == 0;
    switch_begin(s, from, to, now, &fake, true);
    struct coro__ctx *from_ctx = from != NULL ? &from->ctx : &s->loop_ctx;
    if (fresh)
        coro__ctx_start(from_ctx, &to->ctx, to->stack.lo, to->stack.hi,
                        entry);
    else
        coro__ctx_switch(from_ctx, to != NULL ? &to->ctx : &s->loop_ctx);
#if CORO__ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    after_switch(s);
}

/* ------------------------------------------------------------------ */
/* Creating, starting, ending                                          */

static CORO__INLINE int64_t finish(struct sched *s, struct coro *co,
                                   int status, int err);

/*
 * First code a new coroutine runs, called by coro__ctx_start() on its
 * stack.  When the coroutine's function returns, it ends and entry()
 * returns the context to go on with: the ended one is never saved.
 */
static struct coro__ctx *entry(void)
{
    struct sched *s = coro__tls_sched;
#if CORO__ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    after_switch(s);
    struct coro *co = s->current;
    *s->errno_p = 0; /* errno without a call to find it */
    int status = co->fn(co->arg);
    int64_t now = finish(s, co, status, status < 0 ? *s->errno_p : 0);
    struct coro *to = coro__pick_next(s, now);
#if CORO__ASAN || CORO__TSAN
    /* The sanitizers keep a shadow of each fiber's frames: once the
     * switch has begun, no frame of this one may return.  Switch away for
     * good instead. */
    coro__do_switch(s, co, to, now);
    abort();
#else
    if (to != NULL && to->switches == 0) {
        coro__do_switch(s, co, to, now); /* a start: never comes back */
        abort();
    }
    switch_begin(s, co, to, now, NULL, false); /* finish() accounted */
    return to != NULL ? &to->ctx : &s->loop_ctx;
#endif
}

static size_t round_stack(size_t size)
{
    size_t pg = coro__page_size();
    return (size + pg - 1) & ~(pg - 1);
}

/* Copy name (NULL = "") truncated to CORO_NAME_MAX bytes.  Unrolled: a
 * short name costs a load, a store and a test per byte, half the loop's
 * count, and every spawn copies one. */
static void set_name(struct coro *co, const char *name)
{
    if (name == NULL)
        name = "";
#pragma GCC unroll 32
    for (size_t i = 0; i < CORO_NAME_MAX; i++)
        if ((co->name[i] = name[i]) == '\0')
            return;
    co->name[CORO_NAME_MAX] = '\0';
}

static CORO__INLINE struct coro *create(coro_fn fn, void *arg,
                                        const coro_opts_t *opts)
{
    static const coro_opts_t defaults;
    if (opts == NULL)
        opts = &defaults;
    if (fn == NULL || (opts->stack_size != 0 &&
                       (opts->stack_size < CORO_STACK_MIN ||
                        opts->stack_size > STACK_MAX))) {
        errno = EINVAL;
        return NULL;
    }
    struct sched *s = coro__sched();
    if (s == NULL)
        return NULL;
    if (s->count >= INT_MAX - 1) {
        errno = EAGAIN;
        return NULL;
    }
    if (id_reserve(s) != 0)
        return NULL;
    size_t size = opts->stack_size ? round_stack(opts->stack_size)
                                   : s->default_stack;
    struct coro *co = coro__stack_get(s, size);
    if (co == NULL)
        return NULL;
    /* The record is reused from a cached stack: every field is set here
     * (the stack allocator fills co->stack), without a memset. */
    co->magic = CORO__MAGIC_LIVE;
    co->sched = s;
    co->state = CORO_NEW;
    co->joinable = opts->joinable;
    co->id = id_next(s);
    co->fn = fn;
    co->arg = arg;
    co->status = co->err = co->pending_err = 0;
    co->run_next = NULL;
    co->wait = NULL;
    co->deadlines = NULL;
    co->joiners.head = co->joiners.tail = NULL;
    co->locals = NULL;
    co->switches = 0;
    co->run_ticks = co->max_slice_ticks = 0;
    co->selfish_acts = co->max_selfish_acts = s->default_selfish;
    co->selfish_yields = 0;
    co->asan_fake_stack = NULL;
    set_name(co, opts->name);
#if CORO__ASAN
    /* A reused stack keeps the poisoned redzones of the frames its last
     * coroutine never returned from (it ended inside a switch). */
    __asan_unpoison_memory_region(co->stack.lo,
                                  (size_t)(co->stack.hi - co->stack.lo));
#endif
#if CORO__TSAN
    co->tsan_fiber = __tsan_create_fiber(0);
#endif
    /* It begins with its creator's floating-point modes, as a thread. */
    coro__ctx_prepare(&co->ctx, co->stack.lo, co->stack.hi);
    registry_add(s, co);
    if (CORO__UNLIKELY(s->has_hooks) && s->hooks.spawn != NULL)
        s->hooks.spawn(co, s->hooks.ud);
    return co;
}

static void start(struct sched *s, struct coro *co)
{
    s->live++;
    coro__make_runnable(s, co);
}

coro_t *coro_new(coro_fn fn, void *arg, const coro_opts_t *opts)
{
    return create(fn, arg, opts);
}

coro_t *coro_spawn_opts(coro_fn fn, void *arg, const coro_opts_t *opts)
{
    struct coro *co = create(fn, arg, opts);
    if (co != NULL)
        start(coro__tls_sched, co);
    return co;
}

coro_t *coro_spawn(coro_fn fn, void *arg, const char *name)
{
    coro_opts_t o = {.name = name};
    return coro_spawn_opts(fn, arg, &o);
}

int coro_start(coro_t *c)
{
    struct coro *co = coro__check(c);
    if (co == NULL)
        return -1;
    if (co->state == CORO_DEAD) {
        errno = ESRCH;
        return -1;
    }
    if (co->state != CORO_NEW) {
        errno = EALREADY;
        return -1;
    }
    start(coro__tls_sched, co);
    return 0;
}

void coro__discard(struct sched *s, struct coro *co)
{
    release(s, co);
}

/* The waiter record of a coroutine in coro_join(). */
struct join_wait {
    struct coro__wait w; /* first member */
    int status, err;     /* written by the ending coroutine */
    bool done;           /* status delivered: the join has succeeded */
};

/* End co with status and err: account its last slice (so that the exit
 * hook and the exit notifier see its whole run time), deliver status and
 * err to its joiners, and leave it for release unless it waits to be
 * joined.  Returns the time the slice ended; the caller switches away. */
static CORO__INLINE int64_t finish(struct sched *s, struct coro *co,
                                   int status, int err)
{
    co->status = status;
    co->err = err;
    if (co->locals != NULL)
        coro__local_exit(co); /* its destructors: part of its last slice */
    int64_t now = coro__coarse_now(s);
    account_slice(s, co, now,
                  atomic_load_explicit(&s->lat.threshold_ticks,
                                       memory_order_relaxed),
                  true);
    /* A switch that accounts again (coro_exit's) adds nothing. */
    atomic_store_explicit(&s->slice_start, now, memory_order_relaxed);
    if (status < 0) {
        coro_exit_notifier_fn n = s->notifier ? s->notifier
                                              : coro__default_notifier;
        n(co, status, err);
    }
    if (CORO__UNLIKELY(s->has_hooks) && s->hooks.exit != NULL)
        s->hooks.exit(co, s->hooks.ud);
    bool joined = co->joiners.head != NULL;
    struct coro__wait *w;
    while ((w = coro__waitq_pop(&co->joiners)) != NULL) {
        struct join_wait *jw = (struct join_wait *)w;
        jw->status = status;
        jw->err = err;
        jw->done = true;
        coro__wake(w, 0);
    }
    co->state = CORO_DEAD;
    co->pending_err = 0;
    s->live--;
    /* Waiting joiners have the status; otherwise a joinable coroutine
     * stays until coro_join() collects it. */
    if (joined || !co->joinable)
        s->dead = co; /* freed once we are off its stack */
    return now;
}

void coro_exit(int status)
{
    struct coro *self = coro__self();
    if (self == NULL)
        return;
    struct sched *s = coro__tls_sched;
    finish(s, self, status, status < 0 ? errno : 0);
    coro__switch_out(s);
    abort(); /* a dead coroutine is never switched back in */
}

static void join_cancel(struct coro__wait *w)
{
    struct coro *co = w->obj;
    if (w->queued)
        coro__waitq_remove(&co->joiners, w);
}

int coro_join_at(coro_t *c, int *status, int *err, const coro_site_t *site)
{
    struct coro *co = coro__check(c);
    if (co == NULL)
        return -1;
    struct sched *s = coro__tls_sched;
    if (co->state == CORO_DEAD) {
        /* A joinable coroutine that ended before anyone joined it: no
         * waiting, so this works outside coroutines too. */
        if (status != NULL)
            *status = co->status;
        if (err != NULL)
            *err = co->err;
        release(s, co);
        return 0;
    }
    if (coro__self() == NULL)
        return -1;
    if (co == s->current) {
        errno = EDEADLK;
        return -1;
    }
    struct join_wait jw;
    coro__wait_init(&jw.w, "join", site, __builtin_return_address(0));
    jw.w.obj = co;
    jw.w.cancel = join_cancel;
    jw.done = false;
    if (coro__wait_begin(&jw.w) != 0)
        return -1;
    coro__waitq_push(&co->joiners, &jw.w);
    if (coro__wait_park_fast(&jw.w) != 0) {
        if (!jw.done)
            return -1;
        /* The status arrived, then an interrupt or a deadline replaced the
         * wake-up: keep the status (co is gone).  An interrupt fails the
         * next blocking call instead; a deadline needs nothing kept, as
         * the next wait inside it sees it passed. */
        if (jw.w.cause == CORO__WOKEN_BY_INTERRUPT)
            s->current->pending_err = errno;
    }
    if (status != NULL)
        *status = jw.status;
    if (err != NULL)
        *err = jw.err;
    return 0;
}

int(coro_join)(coro_t *co, int *status, int *err)
{
    return coro_join_at(co, status, err, NULL);
}

int coro_yield_at(const coro_site_t *site)
{
    /* The hottest wait: fill only what where() and coro_interrupt() read
     * (zeroing the whole record costs a rep stos on every yield). */
    struct coro__wait w;
    w.what = "yield";
    w.site = site;
    w.addr = __builtin_return_address(0);
    w.cause = CORO__WOKEN_NOT;
    w.err = 0;
    if (coro__wait_begin(&w) != 0)
        return -1;
    struct sched *s = coro__tls_sched;
    struct coro *co = w.co;
    co->wait = &w;
    coro__make_runnable(s, co);
    coro__switch_out(s);
    co->wait = NULL;
    if (w.err != 0) { /* interrupted while in the run queue */
        errno = w.err;
        return -1;
    }
    return 0;
}

int(coro_yield)(void)
{
    return coro_yield_at(NULL);
}

/* ------------------------------------------------------------------ */
/* The event loop                                                      */

/* Ask the poller, between the poll hooks (a profiler charges the time
 * blocked there to the wait, not to the scheduler). */
static void io_poll(struct sched *s, int64_t timeout_ticks)
{
    if (CORO__UNLIKELY(s->has_hooks) && s->hooks.poll_begin != NULL)
        s->hooks.poll_begin(timeout_ticks, s->hooks.ud);
    coro__io_poll(s, timeout_ticks);
    if (CORO__UNLIKELY(s->has_hooks) && s->hooks.poll_end != NULL)
        s->hooks.poll_end(s->hooks.ud);
}

int coro_event_loop(void)
{
    struct sched *s = coro__sched();
    if (s == NULL)
        return -1;
    if (s->current != NULL || s->running) {
        errno = EPERM;
        return -1;
    }
    s->running = true;
    coro__clock_start(); /* again after fork(): threads do not survive it */
    coro__signal_loop_start(s); /* SIGINT and SIGTERM end the loop */
    int64_t tps = tsc_ticks_per_sec();
    int64_t pass_ticks = tps / (1000000 / CORO__PASS_USEC);
    bool polled = false; /* the poller was asked during this pass */
    int rc;
    for (;;) {
        int64_t now = coro__now(s);
        s->passes++;
        s->chain = 0;
        s->pass_until = now + pass_ticks;
        coro__timer_fire_due(&s->timers, now);
        if (now - s->last_resync >= tps) {
            tsc_resync(); /* absorb drift between the TSC and the clock */
            s->last_resync = now;
        }
        if (s->exit_requested) {
            rc = s->exit_code;
            break;
        }
        if (s->run_head == NULL) {
            coro__clock_busy(s, false);
            if (s->live == 0 && !coro__io_has_handlers(s)) {
                rc = s->exit_code;
                break;
            }
            int64_t next = coro__timer_next(&s->timers);
            if (next == CORO__NEVER && !coro__io_can_wake(s)) {
                /* Everyone waits and nothing can wake anyone. */
                errno = EDEADLK;
                rc = -1;
                break;
            }
            io_poll(s, next == CORO__NEVER ? -1 : next - now);
            polled = true;
            continue; /* fire the timers the wait may have let come due */
        }
        /* Coroutines are runnable, yet the loop has control: a chain of
         * direct switches ran its time (or count) or a timer came due.
         * Look at the fds too (without blocking) so a busy program cannot
         * starve I/O, unless this pass has just done so. */
        if (!polled && coro__io_watching(s))
            io_poll(s, 0);
        polled = false;
        coro__clock_busy(s, true);
        coro__do_switch(s, NULL, coro__run_pop(s), now);
    }
    coro__clock_busy(s, false);
    rc = coro__signal_loop_end(s, rc);
    s->running = false;
    s->exit_requested = false; /* consumed: the next run starts afresh */
    s->exit_code = 0;
    return rc;
}

void coro_set_exit(int code)
{
    struct sched *s = coro__sched();
    if (s == NULL)
        return;
    s->exit_requested = true;
    s->exit_code = code;
    s->pass_until = INT64_MIN; /* a chain of direct switches ends here */
}

bool coro_is_running(void)
{
    struct sched *s = coro__tls_sched;
    return s != NULL && s->running;
}

int coro_fini(void)
{
    struct sched *s = coro__tls_sched;
    if (s == NULL)
        return 0;
    if (s->count != 0 || s->running || s->in_fini) {
        errno = EBUSY;
        return -1;
    }
    /* A tool that follows this scheduler (the profiler) lets go of it
     * while everything is still there to read.  It may change the hooks
     * (put back the ones it replaced); the scheduler frees them anyway.
     * Should it spawn, the coroutine is left and so is the scheduler. */
    if (s->hooks.fini != NULL) {
        s->in_fini = true;
        s->hooks.fini(s->hooks.ud);
        s->in_fini = false;
        if (s->count != 0) {
            errno = EBUSY;
            return -1;
        }
    }
    coro__watchdog_busy(s, false); /* never left on the watch list */
    coro__offload_fini(s);
    coro__signal_fini(s);
    coro__process_fini(s);
    coro__io_fini(s);
    coro__stack_fini(s);
    coro__sys_free(s->id_hash);
    coro__sys_free(s);
    coro__tls_sched = NULL;
    if (exit_key_made)
        pthread_setspecific(exit_key, NULL);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Introspection and settings                                          */

coro_t *coro_current(void)
{
    struct sched *s = coro__tls_sched;
    return s != NULL ? s->current : NULL;
}

int coro_id(const coro_t *c)
{
    struct coro *co = coro__check(c);
    return co != NULL ? co->id : -1;
}

coro_t *coro_by_id(int id)
{
    struct sched *s = coro__tls_sched;
    struct coro *co = s != NULL && id > 0 ? id_lookup(s, id) : NULL;
    if (co == NULL)
        errno = ESRCH;
    return co;
}

const char *coro_name(const coro_t *c)
{
    struct coro *co = coro__check(c);
    return co != NULL ? co->name : NULL;
}

int coro_set_name(coro_t *c, const char *name)
{
    struct coro *co = coro__check(c);
    if (co == NULL)
        return -1;
    if (name == NULL) {
        errno = EINVAL;
        return -1;
    }
    set_name(co, name);
    return 0;
}

int coro_state(const coro_t *c)
{
    struct coro *co = coro__check(c);
    return co != NULL ? co->state : -1;
}

int coro_foreach(int (*fn)(coro_t *co, void *arg), void *arg)
{
    if (fn == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct sched *s = coro__tls_sched;
    if (s == NULL)
        return 0;
    for (struct coro *co = s->all_head, *next; co != NULL; co = next) {
        next = co->all_next;
        int rc = fn(co, arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

size_t coro_count(void)
{
    struct sched *s = coro__tls_sched;
    return s != NULL ? s->count : 0;
}

int coro_stats(coro_stats_t *out)
{
    if (out == NULL) {
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof *out);
    struct sched *s = coro__tls_sched;
    if (s == NULL)
        return 0;
    out->coroutines = s->count;
    out->runnable = s->run_count;
    out->timers = s->timers.count;
    out->switches = s->switches;
    out->loop_passes = s->passes;
    coro__stack_stats(s, out);
    coro__io_stats(s, out);
    return 0;
}

size_t coro_set_default_stack_size(size_t size)
{
    if (size < CORO_STACK_MIN || size > STACK_MAX) {
        errno = EINVAL;
        return 0;
    }
    struct sched *s = coro__sched();
    if (s == NULL)
        return 0;
    size_t old = s->default_stack;
    s->default_stack = round_stack(size);
    return old;
}

int coro_set_hooks(const coro_hooks_t *hooks)
{
    struct sched *s = coro__sched();
    if (s == NULL)
        return -1;
    if (hooks != NULL) {
        s->hooks = *hooks;
        s->has_hooks = hooks->switch_in || hooks->switch_out ||
                       hooks->spawn || hooks->exit || hooks->poll_begin ||
                       hooks->poll_end;
    } else {
        memset(&s->hooks, 0, sizeof s->hooks);
        s->has_hooks = false;
    }
    return 0;
}

int coro_get_hooks(coro_hooks_t *out)
{
    if (out == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct sched *s = coro__tls_sched;
    if (s != NULL)
        *out = s->hooks;
    else
        memset(out, 0, sizeof *out); /* no scheduler: none installed */
    return 0;
}

coro_exit_notifier_fn coro_set_exit_notifier(coro_exit_notifier_fn fn)
{
    struct sched *s = coro__sched();
    if (s == NULL)
        return NULL;
    coro_exit_notifier_fn old = s->notifier;
    s->notifier = fn;
    return old;
}

int64_t coro_now(void)
{
    struct sched *s = coro__tls_sched;
    return s != NULL ? coro__now(s) : tsc_now();
}
