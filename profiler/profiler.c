/*
 * The profiler's control: start, stop, reset, reports; the scheduler
 * hooks that follow coroutines and the poller; the shadow stacks by
 * coroutine; and the per-coroutine rows of the reports.
 *
 * The hooks are the only way the profiler learns what the loop does (the
 * core knows nothing of it): switch_in/switch_out move the charging point
 * between shadow stacks (or tell the signal handler which coroutine runs),
 * poll_begin/poll_end bracket the poller wait, exit folds an ending
 * coroutine into its name's row.  The hooks that were installed before
 * (coro_get_hooks()) are called after ours and put back by stop.
 *
 * Reports never render live data: they copy everything into a struct
 * prof_data first (draining the sample ring), with the instrumenting
 * hooks held off, so neither a sample nor an instrumented call changes
 * what is being read.
 *
 * Threads: while the profiler runs, the owner's hooks change the data
 * without a lock (they are on the hot path), so only the owner may read
 * or change it.  Stopped, the data is frozen and any thread may read it.
 * The control calls (start, stop, reset, the snapshot of a report) hold
 * ctl_lock, so the check "running, and who owns it" and the action are
 * one step: a start cannot drop the data under another thread's
 * snapshot.  Rendering happens after the lock is released, from the
 * private copy: a slow stream never holds up the owner.
 */
#include "engine_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tsc_time/tsc_time.h>
#include <unistd.h>

#define HZ_DEFAULT 1000
#define ENDED_ROWS_MAX 1000 /* names of ended coroutines with a row of
                               their own; newer names go to "<other>" */
#define LIVE_ROWS_MAX 1000  /* live coroutines in a report: the most
                               charged */
#define OTHER "<other>"

struct prof_engine prof__e;
bool prof__rdtsc;

/* Held by the control calls; never by hooks, instrumentation or the
 * signal handler.  Taken with ctl_enter(). */
static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;

/* Its destructor stops a running profiler when the owner thread ends. */
static pthread_key_t owner_key;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static bool owner_key_made;

void prof__drop(uint64_t n)
{
    prof__e.dropped += n;
}

static bool is_owner(void)
{
    return pthread_equal(pthread_self(), prof__e.owner);
}

/* ------------------------------------------------------------------ */
/* Shadow stacks by coroutine id                                       */

static size_t bucket_of(int id)
{
    return ((uint32_t)id * 2654435761u) & (prof__e.nbuckets - 1);
}

static struct prof_shadow *shadow_find(int id)
{
    struct prof_engine *e = &prof__e;
    if (e->nbuckets == 0)
        return NULL;
    for (struct prof_shadow *s = e->buckets[bucket_of(id)]; s != NULL;
         s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

/* Double the buckets once there are as many shadows; false on ENOMEM
 * (the old table then stays in use). */
static bool shadows_grow(void)
{
    struct prof_engine *e = &prof__e;
    size_t nb = e->nbuckets ? e->nbuckets * 2 : 64;
    struct prof_shadow **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return false;
    struct prof_shadow **old = e->buckets;
    size_t oldn = e->nbuckets;
    e->buckets = b;
    e->nbuckets = nb;
    for (size_t i = 0; i < oldn; i++) {
        struct prof_shadow *s = old[i], *next;
        for (; s != NULL; s = next) {
            next = s->next;
            size_t k = bucket_of(s->id);
            s->next = b[k];
            b[k] = s;
        }
    }
    free(old);
    return true;
}

struct prof_shadow *prof__shadow(int id)
{
    struct prof_engine *e = &prof__e;
    struct prof_shadow *s = shadow_find(id);
    if (s != NULL)
        return s;
    if (e->nshadows >= e->nbuckets && !shadows_grow() && e->nbuckets == 0)
        return NULL;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->id = id;
    s->empty_node = e->node_uninstr;
    size_t k = bucket_of(id);
    s->next = e->buckets[k];
    e->buckets[k] = s;
    e->nshadows++;
    return s;
}

static void shadow_free(struct prof_shadow *s)
{
    free(s->frames);
    free(s);
}

/* Unlink and return the shadow of id, or NULL. */
static struct prof_shadow *shadow_take(int id)
{
    struct prof_engine *e = &prof__e;
    if (e->nbuckets == 0)
        return NULL;
    for (struct prof_shadow **pp = &e->buckets[bucket_of(id)]; *pp != NULL;
         pp = &(*pp)->next) {
        struct prof_shadow *s = *pp;
        if (s->id == id) {
            *pp = s->next;
            e->nshadows--;
            return s;
        }
    }
    return NULL;
}

/* The running coroutine's shadow (the loop's outside coroutines). */
static struct prof_shadow *shadow_now(void)
{
    coro_t *co = coro_current();
    struct prof_shadow *s = co != NULL ? prof__shadow(coro_id(co)) : NULL;
    return s != NULL ? s : &prof__e.loop;
}

/* ------------------------------------------------------------------ */
/* Per-coroutine rows                                                  */

static bool ended_eq(const void *ctx, int32_t idx)
{
    return strcmp(prof__e.ended[idx].name, ctx) == 0;
}

/* The row of ended coroutines called name, made if need be: once
 * ENDED_ROWS_MAX names have one, a new name goes to OTHER's.  NULL on
 * ENOMEM.  Found by hash: it runs at every coroutine's end. */
static struct prof_coro *ended_row(const char *name)
{
    struct prof_engine *e = &prof__e;
    uint32_t h = prof_hash(name, strlen(name), 5);
    int32_t i = prof_itab_find(&e->ended_by_name, h, ended_eq, name);
    if (i >= 0)
        return &e->ended[i];
    if (e->nended >= ENDED_ROWS_MAX && strcmp(name, OTHER) != 0)
        return ended_row(OTHER);
    if (prof_grow(&e->ended, e->nended, &e->capended, sizeof *e->ended,
                  16) != 0)
        return NULL;
    char *copy = strdup(name);
    if (copy == NULL)
        return NULL;
    if (prof_itab_add(&e->ended_by_name, h, e->nended) != 0) {
        free(copy);
        return NULL;
    }
    e->ended[e->nended] = (struct prof_coro){.name = copy};
    return &e->ended[e->nended++];
}

static void fold_ended(coro_t *co, int64_t charged)
{
    coro_info_t info;
    if (coro_info(co, &info) != 0)
        return;
    struct prof_coro *r = ended_row(info.name);
    if (r == NULL) {
        prof__drop(1);
        return;
    }
    r->ended++;
    r->switches += info.switches;
    r->run_ticks += info.run_ticks;
    if (info.max_slice_ticks > r->max_slice_ticks)
        r->max_slice_ticks = info.max_slice_ticks;
    r->selfish_yields += info.selfish_yields;
    r->charged += charged;
}

/* The live rows of a report: d->coros[first..], at most LIVE_ROWS_MAX;
 * once full, a min-heap by charged, so that the most charged stay. */
struct live_ctx {
    struct prof_data *d;
    int32_t first;
    int rc;
};

static bool less_charged(const struct prof_coro *a,
                         const struct prof_coro *b)
{
    return a->charged < b->charged ||
           (a->charged == b->charged && a->id > b->id);
}

static void heap_down(struct prof_coro *h, int32_t n, int32_t i)
{
    for (;;) {
        int32_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < n && less_charged(&h[l], &h[m]))
            m = l;
        if (r < n && less_charged(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        struct prof_coro t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static int add_live(coro_t *co, void *arg)
{
    struct live_ctx *c = arg;
    coro_info_t info;
    if (coro_info(co, &info) != 0)
        return 0;
    const struct prof_shadow *s = shadow_find(info.id);
    struct prof_coro row = {
        .id = info.id, .switches = info.switches,
        .run_ticks = info.run_ticks, .max_slice_ticks = info.max_slice_ticks,
        .selfish_yields = info.selfish_yields,
        .charged = s != NULL ? s->vclock : 0, .name = info.name};
    struct prof_coro *h = &c->d->coros[c->first];
    int32_t n = c->d->ncoros - c->first;
    int rc;
    if (n < LIVE_ROWS_MAX) {
        rc = prof_data_coro(c->d, &row);
        if (rc == 0 && n + 1 == LIVE_ROWS_MAX) {
            h = &c->d->coros[c->first]; /* may have moved */
            for (int32_t i = LIVE_ROWS_MAX / 2 - 1; i >= 0; i--)
                heap_down(h, LIVE_ROWS_MAX, i);
        }
    } else if (less_charged(&h[0], &row)) {
        rc = prof_data_coro_set(c->d, c->first, &row);
        if (rc == 0)
            heap_down(h, n, 0);
    } else {
        rc = 0; /* less charged than every row kept */
    }
    if (rc != 0) {
        c->rc = -1;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Scheduler hooks                                                     */

static bool instrumenting(void)
{
    return prof__e.mode == CORO_PROF_INSTRUMENT;
}

/* Charge the running shadow up to now; leaving the loop's context, close
 * what it left open (the callers of the event loop), so that scheduler
 * time goes to "<main>" and not to them. */
static void charge_now(bool leaving_loop)
{
    struct prof_shadow *cur = prof__cur;
    if (cur == NULL)
        return;
    prof__charge(cur, prof__now());
    if (leaving_loop && cur == &prof__e.loop)
        prof__close_all(cur);
}

static void h_switch_in(coro_t *co, void *ud)
{
    (void)ud;
    struct prof_engine *e = &prof__e;
    if (instrumenting()) {
        charge_now(true);
        struct prof_shadow *s = prof__shadow(coro_id(co));
        if (s == NULL)
            prof__drop(1);
        prof__cur = s != NULL ? s : &e->loop;
    } else {
        prof__sample_set_coro(coro_id(co));
    }
    if (e->prev.switch_in != NULL)
        e->prev.switch_in(co, e->prev.ud);
}

static void h_switch_out(coro_t *co, void *ud)
{
    (void)ud;
    struct prof_engine *e = &prof__e;
    if (instrumenting()) {
        charge_now(false);
        prof__cur = &e->loop;
    } else {
        prof__sample_set_coro(0);
        prof__sample_drain();
    }
    if (e->prev.switch_out != NULL)
        e->prev.switch_out(co, e->prev.ud);
}

static void h_spawn(coro_t *co, void *ud)
{
    (void)ud;
    if (prof__e.prev.spawn != NULL)
        prof__e.prev.spawn(co, prof__e.prev.ud);
}

static void h_exit(coro_t *co, void *ud)
{
    (void)ud;
    struct prof_engine *e = &prof__e;
    if (instrumenting())
        charge_now(false);
    else
        prof__sample_drain();
    struct prof_shadow *s = shadow_take(coro_id(co));
    if (s != NULL) {
        prof__close_all(s); /* ended inside calls: coro_exit() */
        if (prof__cur == s)
            prof__cur = &e->loop; /* its last switch-out goes there */
    }
    fold_ended(co, s != NULL ? s->vclock : 0);
    if (s != NULL)
        shadow_free(s);
    if (e->prev.exit != NULL)
        e->prev.exit(co, e->prev.ud);
}

static void h_poll_begin(int64_t timeout_ticks, void *ud)
{
    (void)ud;
    struct prof_engine *e = &prof__e;
    if (instrumenting()) {
        charge_now(true);
        prof__cur = &e->wait;
    } else {
        prof__sample_drain();
        e->poll_start = prof__now();
        prof__sample_in_poll(true);
    }
    if (e->prev.poll_begin != NULL)
        e->prev.poll_begin(timeout_ticks, e->prev.ud);
}

static void h_poll_end(void *ud)
{
    (void)ud;
    struct prof_engine *e = &prof__e;
    if (e->prev.poll_end != NULL)
        e->prev.poll_end(e->prev.ud);
    if (instrumenting()) {
        charge_now(false);
        prof__cur = &e->loop;
    } else {
        prof__sample_in_poll(false);
        e->wait_ticks += prof__now() - e->poll_start;
    }
}

/* ------------------------------------------------------------------ */
/* Control                                                             */

static bool signo_ok(int signo)
{
    return signo == SIGPROF || signo == SIGVTALRM || signo == SIGUSR1 ||
           signo == SIGUSR2 || (signo >= SIGRTMIN && signo <= SIGRTMAX);
}

/* Drop all data; the engine stays in its mode, running or not. */
static void drop_data(void)
{
    struct prof_engine *e = &prof__e;
    prof__sample_free(); /* first: draining the ring may add shadows */
    for (size_t b = 0; b < e->nbuckets; b++) {
        struct prof_shadow *s = e->buckets[b], *next;
        for (; s != NULL; s = next) {
            next = s->next;
            shadow_free(s);
        }
    }
    free(e->buckets);
    e->buckets = NULL;
    e->nbuckets = e->nshadows = 0;
    free(e->loop.frames);
    free(e->wait.frames);
    e->loop = (struct prof_shadow){0};
    e->wait = (struct prof_shadow){0};
    prof__inst_free();
    for (int32_t i = 0; i < e->nended; i++)
        free(e->ended[i].name);
    free(e->ended);
    e->ended = NULL;
    e->nended = e->capended = 0;
    prof_itab_free(&e->ended_by_name);
    e->main_samples = 0;
    e->wait_ticks = 0;
    e->unit_hz = e->hz; /* a running profile goes on in its own rate */
    e->sample_weight = 1;
    e->dropped = 0;
    e->duration = 0;
    e->start_usec = 0;
    e->node_main = e->node_wait = e->node_uninstr = 0;
}

/* Make the instrumenting structures and point the hooks at them. */
static int inst_begin(void)
{
    struct prof_engine *e = &prof__e;
    if (prof__inst_init() != 0)
        return -1;
    e->loop.empty_node = e->node_main;
    e->wait.empty_node = e->node_wait;
    /* Frames left by an earlier run were closed at its stop. */
    e->last = e->started;
    if (e->rusage) {
#ifdef RUSAGE_THREAD
        getrusage(RUSAGE_THREAD, &e->last_ru);
#else
        getrusage(RUSAGE_SELF, &e->last_ru);
#endif
    }
    prof__cur = shadow_now();
    return 0;
}

/* Whether this thread's scheduler has hooks: none after coro_fini()
 * (and in the fresh scheduler the next call makes). */
static bool hooks_installed(void)
{
    coro_hooks_t h;
    coro_get_hooks(&h);
    return h.switch_in || h.switch_out || h.spawn || h.exit ||
           h.poll_begin || h.poll_end || h.fini;
}

/* Stop; the caller is the owner and holds ctl_lock. */
static void stop_locked(void)
{
    struct prof_engine *e = &prof__e;
    /* Put back the hooks ours replaced, unless the scheduler that had
     * them is gone: making a new one here (perhaps at the thread's end)
     * would leak it. */
    if (hooks_installed())
        coro_set_hooks(&e->prev); /* the scheduler exists: cannot fail */
    if (instrumenting()) {
        charge_now(false);
        prof__cur = NULL;
        /* Open calls end here, as far as this profile knows. */
        prof__close_all(&e->loop);
        prof__close_all(&e->wait);
        for (size_t b = 0; b < e->nbuckets; b++)
            for (struct prof_shadow *s = e->buckets[b]; s != NULL;
                 s = s->next)
                prof__close_all(s);
    } else {
        prof__sample_stop();
    }
    e->duration += prof__now() - e->started;
    atomic_store(&e->running, false);
}

/* Take ctl_lock.  A profiler whose owner's scheduler was finished
 * (coro_fini()) follows nothing any more: its hooks went with the
 * scheduler.  The fini hook stops it then; should another tool have
 * replaced our hooks without passing fini on, the owner's next call stops
 * it here, before doing its own work. */
static void ctl_enter(void)
{
    pthread_mutex_lock(&ctl_lock);
    if (atomic_load(&prof__e.running) && is_owner() && !hooks_installed())
        stop_locked();
}

static void ctl_leave(void)
{
    pthread_mutex_unlock(&ctl_lock);
}

/* The destructor of owner_key: the owner thread ends (its scheduler with
 * it, freed by coro before or after this runs). */
static void at_owner_exit(void *arg)
{
    (void)arg;
    ctl_enter();
    if (atomic_load(&prof__e.running) && is_owner())
        stop_locked();
    ctl_leave();
}

/* The fini hook: coro_fini() is about to free the scheduler we follow.
 * Stop now, with its coroutines and hooks still there (the stop puts the
 * replaced hooks back), then pass the news on to those hooks' owner. */
static void h_fini(void *ud)
{
    (void)ud;
    ctl_enter();
    coro_hooks_t prev = prof__e.prev; /* written under ctl_lock */
    if (atomic_load(&prof__e.running) && is_owner())
        stop_locked();
    ctl_leave();
    if (prev.fini != NULL)
        prev.fini(prev.ud);
}

/* fork(): no control call is half done in the child, and the child's
 * profiler is stopped.  When the owner forked, the data is as the
 * owner's calls left it, kept up to the fork; when another thread did,
 * the owner's hooks may have been changing it, so the child forgets it
 * (without freeing: even its pointers may be half written). */
static void at_fork_prepare(void)
{
    pthread_mutex_lock(&ctl_lock);
}

static void at_fork_parent(void)
{
    pthread_mutex_unlock(&ctl_lock);
}

static void at_fork_child(void)
{
    struct prof_engine *e = &prof__e;
    if (atomic_load(&e->running) && is_owner()) {
        if (e->mode == CORO_PROF_SAMPLE)
            prof__sample_after_fork(true);
        stop_locked();
    } else if (atomic_load(&e->running)) {
        prof__sample_after_fork(false);
        memset(e, 0, sizeof *e);
        atomic_store(&e->running, false);
    }
    pthread_mutex_unlock(&ctl_lock);
}

/* Once, at the first start. */
static void init_at_first_start(void)
{
    owner_key_made = pthread_key_create(&owner_key, at_owner_exit) == 0;
    pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child);
}

static int64_t gcd(int64_t a, int64_t b)
{
    while (b != 0) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Sampling: multiply every weight kept by factor, for a finer unit. */
static void rescale(int64_t factor)
{
    struct prof_engine *e = &prof__e;
    prof__sample_rescale(factor);
    e->main_samples = prof__scale(e->main_samples, factor);
    for (size_t b = 0; b < e->nbuckets; b++)
        for (struct prof_shadow *s = e->buckets[b]; s != NULL; s = s->next)
            s->vclock = prof__scale(s->vclock, factor);
    for (int32_t i = 0; i < e->nended; i++)
        e->ended[i].charged = prof__scale(e->ended[i].charged, factor);
}

/* Whether a start with o adds to the data kept: data of another kind or
 * thread do not mix. */
static bool keeps_data(const coro_prof_opts_t *o)
{
    const struct prof_engine *e = &prof__e;
    return e->mode == (int)o->mode && is_owner() &&
           (o->mode != CORO_PROF_INSTRUMENT || e->rusage == o->rusage);
}

static int start_locked(const coro_prof_opts_t *opts)
{
    coro_prof_opts_t o = *opts;
    struct prof_engine *e = &prof__e;
    if (atomic_load(&e->running)) {
        errno = EBUSY;
        return -1;
    }
    coro_hooks_t prev;
    if (coro_get_hooks(&prev) != 0)
        return -1;
    bool keep = keeps_data(&o);
    int64_t unit = o.hz;
    if (keep && o.mode == CORO_PROF_SAMPLE) {
        unit = e->unit_hz / gcd(e->unit_hz, o.hz) * o.hz;
        if (unit > PROF_UNIT_HZ_MAX) {
            errno = EINVAL; /* no unit fits every rate: reset first */
            return -1;
        }
    }
    prof__rdtsc = tsc_source() == TSC_SOURCE_RDTSC;
    if (e->mode != 0 && !keep)
        drop_data();
    if (keep && o.mode == CORO_PROF_SAMPLE && unit != e->unit_hz)
        rescale(unit / e->unit_hz);
    e->mode = o.mode;
    e->hz = o.mode == CORO_PROF_SAMPLE ? o.hz : 0;
    e->unit_hz = (int)(o.mode == CORO_PROF_SAMPLE ? unit : 0);
    e->sample_weight = (int)(o.mode == CORO_PROF_SAMPLE ? unit / o.hz : 1);
    e->signo = o.signo;
    e->rusage = o.mode == CORO_PROF_INSTRUMENT && o.rusage;
    e->owner = pthread_self();
    e->prev = prev;
    static const coro_hooks_t ours = {
        .switch_in = h_switch_in, .switch_out = h_switch_out,
        .spawn = h_spawn, .exit = h_exit, .poll_begin = h_poll_begin,
        .poll_end = h_poll_end, .fini = h_fini};
    e->started = prof__now(); /* inst_begin() charges from here */
    if (o.mode == CORO_PROF_INSTRUMENT && inst_begin() != 0)
        return -1;
    atomic_store(&e->running, true);
    if (o.mode == CORO_PROF_SAMPLE) {
        coro_t *co = coro_current(); /* started inside a coroutine */
        prof__sample_set_coro(co != NULL ? coro_id(co) : 0);
        if (prof__sample_start() != 0)
            goto fail;
    }
    if (coro_set_hooks(&ours) != 0) {
        if (o.mode == CORO_PROF_SAMPLE)
            prof__sample_stop();
        goto fail;
    }
    if (e->start_usec == 0)
        e->start_usec = tsc_now_posix_usec();
    if (owner_key_made) /* a value, so that the destructor runs */
        pthread_setspecific(owner_key, e);
    return 0;
fail:;
    int saved = errno;
    atomic_store(&e->running, false);
    prof__cur = NULL;
    errno = saved;
    return -1;
}

int coro_prof_start(const coro_prof_opts_t *opts)
{
    coro_prof_opts_t o = opts != NULL ? *opts : (coro_prof_opts_t){0};
    if (o.mode == 0)
        o.mode = CORO_PROF_SAMPLE;
    if (o.hz == 0)
        o.hz = HZ_DEFAULT;
    if (o.signo == 0)
        o.signo = SIGPROF;
    if ((o.mode != CORO_PROF_SAMPLE && o.mode != CORO_PROF_INSTRUMENT) ||
        o.hz < 0 || o.hz > PROF_HZ_MAX || !signo_ok(o.signo)) {
        errno = EINVAL;
        return -1;
    }
    pthread_once(&init_once, init_at_first_start);
    ctl_enter();
    int rc = start_locked(&o);
    int saved = errno;
    ctl_leave();
    errno = saved;
    return rc;
}

int coro_prof_stop(void)
{
    struct prof_engine *e = &prof__e;
    int rc = 0;
    ctl_enter();
    if (!atomic_load(&e->running)) {
        errno = EINVAL;
        rc = -1;
    } else if (!is_owner()) {
        errno = EPERM;
        rc = -1;
    } else {
        stop_locked();
    }
    ctl_leave();
    return rc;
}

int coro_prof_reset(void)
{
    struct prof_engine *e = &prof__e;
    ctl_enter();
    bool running = atomic_load(&e->running);
    if (running && !is_owner()) {
        ctl_leave();
        errno = EPERM;
        return -1;
    }
    prof__cur = NULL;
    drop_data();
    if (!running) {
        e->mode = 0;
    } else {
        e->started = prof__now();
        e->start_usec = tsc_now_posix_usec();
        if (instrumenting() && inst_begin() != 0) {
            /* No memory for the new tree: go on counting nothing. */
            prof__drop(1);
        }
    }
    ctl_leave();
    return 0;
}

bool coro_prof_running(void)
{
    ctl_enter(); /* notices a scheduler that was finished */
    bool running = atomic_load(&prof__e.running);
    ctl_leave();
    return running;
}

/* ------------------------------------------------------------------ */
/* Reports                                                             */

/* Copy the data into d.  0, or -1 with errno ENOMEM. */
static int snapshot(struct prof_data *d)
{
    struct prof_engine *e = &prof__e;
    bool running = atomic_load(&e->running);
    prof_data_init(d);
    d->mode = e->mode != 0 ? e->mode : CORO_PROF_SAMPLE;
    /* No data yet: a sampling profile at the default rate, which the
     * reader accepts (hz 0 is for instrumenting). */
    d->hz = d->mode == CORO_PROF_SAMPLE && e->unit_hz == 0 ? HZ_DEFAULT
                                                           : e->unit_hz;
    d->ticks_per_sec = tsc_ticks_per_sec();
    d->duration_ticks = e->duration + (running ? prof__now() - e->started : 0);
    d->start_usec = e->start_usec;
    d->rusage = e->rusage;
    int rc = 0;
    if (e->mode == CORO_PROF_INSTRUMENT && e->nnodes > 0)
        rc = prof__inst_snapshot(d);
    else if (e->mode == CORO_PROF_SAMPLE)
        rc = prof__sample_snapshot(d);
    d->dropped += e->dropped;
    for (int32_t i = 0; i < e->nended && rc == 0; i++)
        rc = prof_data_coro(d, &e->ended[i]);
    /* Live coroutines: those of the profiled loop, seen from its thread. */
    if (rc == 0 && e->mode != 0 && is_owner()) {
        struct live_ctx c = {d, d->ncoros, 0};
        coro_foreach(add_live, &c);
        rc = c.rc;
    }
    if (rc != 0) {
        prof_data_free(d);
        errno = ENOMEM;
    }
    return rc;
}

int coro_prof_write_opts(FILE *out, coro_prof_format_t fmt,
                         const coro_prof_write_opts_t *opts)
{
    coro_prof_write_opts_t o = opts != NULL ? *opts
                                            : (coro_prof_write_opts_t){0};
    if (out == NULL || (unsigned)fmt > CORO_PROF_RAW || o.top < 0 ||
        (unsigned)o.sort > CORO_PROF_BY_CALLS) {
        errno = EINVAL;
        return -1;
    }
    struct prof_engine *e = &prof__e;
    ctl_enter();
    bool running = atomic_load(&e->running);
    if (running && !is_owner()) {
        ctl_leave();
        errno = EPERM;
        return -1;
    }
    /* Bring the live data up to now, then hold the instrumenting hooks
     * off: an instrumented stream function must not change the data
     * while it is copied or rendered.  Only the owner's prof__cur is
     * ever set. */
    struct prof_shadow *cur = prof__cur;
    if (running) {
        if (instrumenting())
            charge_now(false);
        else
            prof__sample_drain();
    }
    prof__cur = NULL;
    struct prof_data d;
    int rc = snapshot(&d);
    int saved = errno;
    ctl_leave();
    errno = saved;
    if (rc == 0) {
        struct prof_render r = {.top = o.top, .sort = o.sort,
                                .title = o.title != NULL ? o.title
                                                         : "coro profile"};
        switch (fmt) {
        case CORO_PROF_TABLE: rc = prof_write_table(out, &d, &r); break;
        case CORO_PROF_FOLDED: rc = prof_write_folded(out, &d); break;
        case CORO_PROF_SVG: rc = prof_write_svg(out, &d, &r); break;
        case CORO_PROF_HTML: rc = prof_write_html(out, &d, &r); break;
        case CORO_PROF_RAW: rc = prof_write_raw(out, &d); break;
        }
        int saved = errno;
        prof_data_free(&d);
        errno = saved;
    }
    if (running && instrumenting()) {
        /* The report's own time is charged to whoever asked for it.  No
         * lock: running, the data is this thread's alone, and only this
         * thread can stop it. */
        e->last = prof__now();
    }
    prof__cur = cur;
    return rc;
}

int coro_prof_write(FILE *out, coro_prof_format_t fmt, int top)
{
    coro_prof_write_opts_t o = {.top = top};
    return coro_prof_write_opts(out, fmt, &o);
}

int coro_prof_save(const char *path)
{
    if (path == NULL || *path == '\0') {
        errno = EINVAL;
        return -1;
    }
    /* Refused before any file is made; coro_prof_write() checks again. */
    ctl_enter();
    bool refused = atomic_load(&prof__e.running) && !is_owner();
    ctl_leave();
    if (refused) {
        errno = EPERM;
        return -1;
    }
    /* Write a temporary file next to path and rename it: a failure
     * leaves an existing file as it was. */
    size_t len = strlen(path);
    char *tmp = malloc(len + sizeof ".XXXXXX");
    if (tmp == NULL)
        return -1;
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".XXXXXX", sizeof ".XXXXXX");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(tmp);
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        int saved = errno;
        close(fd);
        unlink(tmp);
        free(tmp);
        errno = saved;
        return -1;
    }
    fchmod(fd, 0644);
    int rc = coro_prof_write(f, CORO_PROF_RAW, 0);
    int saved = errno;
    if (fclose(f) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    errno = saved;
    return rc;
}
