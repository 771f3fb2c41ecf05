/*
 * Latency warnings and the watchdog.
 *
 * The scheduler times every run slice against the coarse clock and
 * compares it with a precomputed threshold at each switch-out (one compare;
 * INT64_MAX when warnings are off).  A slice over the threshold gets one
 * warning, printed from do_switch() while the slow coroutine is still the
 * current one, rate-limited per scheduler.
 *
 * The warning alone only says where the slice began and ended.  To show
 * where the time went, a watchdog samples the slice while it still runs:
 * each busy scheduler with warnings on sits on a watch list; the clock
 * thread, which already wakes every millisecond while loops are busy,
 * looks at each one's slice start (a relaxed atomic) and, once the running
 * slice is over the threshold and has not been signalled about, sends the
 * loop's thread the watchdog signal.  The handler, on the loop's thread,
 * walks the frame pointers of the interrupted code within the running
 * coroutine's stack and keeps up to CORO__LAT_FRAMES return addresses.
 * The warning symbolizes them later, in normal context (dladdr is not
 * async-signal-safe).
 *
 * The handler skips its sample while a switch is in progress: between
 * do_switch() setting s->current and the new context running, the stack
 * pointer and s->current disagree.
 */
#include "coro_internal.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define BASE_SEC 0.2     /* Shrapnel's threshold at factor 1 */
#define FACTOR_MAX 1e6   /* 2.3 days: anything larger is a typo */

/* Process-wide watchdog state. */
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sched *watch_head;  /* watched schedulers, under watch_lock */
static _Atomic int watch_count;   /* their number: the clock thread takes
                                     the lock only when it is not 0 */
static _Atomic int watch_signo = -1; /* the signal; -1 = the default, which
                                        is not a constant (SIGRTMAX) */
static bool installed[NSIG];      /* our handler is on that signal; under
                                     watch_lock; never reset (see below) */

static int signo_now(void)
{
    int signo = atomic_load_explicit(&watch_signo, memory_order_relaxed);
    return signo < 0 ? SIGRTMAX - 3 : signo;
}

/* ------------------------------------------------------------------ */
/* Settings                                                            */

static void set_factor(struct sched *s, double factor)
{
    s->lat.factor = factor;
    int64_t t = factor > 0 ? tsc_sec_to_ticks(BASE_SEC * factor)
                           : CORO__NEVER;
    atomic_store_explicit(&s->lat.threshold_ticks, t < 0 ? 0 : t,
                          memory_order_relaxed);
}

void coro__latency_init(struct sched *s)
{
    set_factor(s, 1.0);
    atomic_store_explicit(&s->slice_start, CORO__NEVER,
                          memory_order_relaxed);
}

double coro_set_latency_warning(double factor)
{
    if (!(factor >= 0 && factor <= FACTOR_MAX)) { /* NaN fails too */
        errno = EINVAL;
        return -1;
    }
    struct sched *s = coro__sched();
    if (s == NULL)
        return -1;
    double old = s->lat.factor;
    bool was_off = old == 0;
    set_factor(s, factor);
    /* Turned on inside a slice: it was switched in without a snapshot. */
    if (was_off && factor > 0 && s->current != NULL)
        s->lat.resumed = (struct coro__resumed){.what = "unknown"};
    coro__watchdog_busy(s, s->clock_busy);
    return old;
}

double coro_latency_warning(void)
{
    struct sched *s = coro__sched_peek();
    return s != NULL ? s->lat.factor : 1.0;
}

/* Install the handler on signo; under watch_lock. */
static void install(int signo);

int coro_set_watchdog_signal(int signo)
{
    if (signo != 0 && signo != SIGUSR1 && signo != SIGUSR2 &&
        (signo < SIGRTMIN || signo > SIGRTMAX)) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&watch_lock);
    int old = signo_now();
    atomic_store_explicit(&watch_signo, signo, memory_order_relaxed);
    if (watch_head != NULL)
        install(signo); /* loops already watched need it now */
    pthread_mutex_unlock(&watch_lock);
    return old;
}

int coro_watchdog_signal(void)
{
    return signo_now();
}

/* ------------------------------------------------------------------ */
/* The watchdog: signal handler (loop thread)                          */

static void sample(struct sched *s, const void *uctx)
{
    struct coro__latency *l = &s->lat;
    const struct coro *co = s->current;
    int64_t start = atomic_load_explicit(&s->slice_start,
                                         memory_order_relaxed);
    /* Only the slice the clock thread meant, once, and never mid-switch
     * (the slice may have ended between the clock's look and now). */
    if (co == NULL ||
        atomic_load_explicit(&l->switching, memory_order_relaxed) ||
        start != atomic_load_explicit(&l->want_start, memory_order_acquire) ||
        l->sample_start == start)
        return;
    l->npcs = coro__sample(co, uctx, l->pcs, CORO__LAT_FRAMES);
    if (l->npcs == 0)
        return;
    l->sample_ticks =
        atomic_load_explicit(&coro__coarse_ticks, memory_order_relaxed) -
        start;
    /* The warning reads the frames once it sees sample_start: last. */
    atomic_signal_fence(memory_order_seq_cst);
    l->sample_start = start;
}

static void watchdog_handler(int sig, siginfo_t *si, void *uctx)
{
    (void)sig, (void)si;
    int saved = errno;
    struct sched *s = coro__tls_sched;
    if (s != NULL)
        sample(s, uctx);
    errno = saved;
}

/*
 * Once installed on a signal, the handler stays there even when the
 * watchdog moves to another signal or is turned off: a signal the clock
 * thread sent a moment earlier may still be in flight, and the default
 * action of the realtime signals ends the process.
 */
static void install(int signo)
{
    if (signo == 0 || installed[signo])
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = watchdog_handler;
    /* SA_RESTART: the interrupted coroutine's system calls go on where
     * they can.  SA_ONSTACK: a coroutine's stack may be small; the
     * thread's alternate stack (stack.c) has room for the signal frame. */
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(signo, &sa, NULL) == 0)
        installed[signo] = true; /* else the clock thread never sends it */
}

/* ------------------------------------------------------------------ */
/* The watch list                                                      */

void coro__watchdog_busy(struct sched *s, bool busy)
{
    bool want = busy && atomic_load_explicit(&s->lat.threshold_ticks,
                                             memory_order_relaxed) !=
                            CORO__NEVER;
    if (want == s->lat.watched)
        return;
    pthread_mutex_lock(&watch_lock);
    if (want) {
        install(signo_now());
        s->lat.thread = pthread_self();
        s->lat.watch_next = watch_head;
        watch_head = s;
        atomic_fetch_add_explicit(&watch_count, 1, memory_order_relaxed);
    } else {
        /* After fork() the child's list is empty although s->lat.watched
         * is still set: not finding s is fine. */
        for (struct sched **pp = &watch_head; *pp != NULL;
             pp = &(*pp)->lat.watch_next) {
            if (*pp == s) {
                *pp = s->lat.watch_next;
                atomic_fetch_sub_explicit(&watch_count, 1,
                                          memory_order_relaxed);
                break;
            }
        }
    }
    s->lat.watched = want;
    pthread_mutex_unlock(&watch_lock);
}

void coro__watchdog_tick(int64_t now)
{
    if (atomic_load_explicit(&watch_count, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&watch_lock);
    int signo = signo_now();
    bool can = signo != 0 && installed[signo];
    /* A scheduler stays on the list only while its loop runs coroutines,
     * inside coro_event_loop(): its thread is alive while we signal it. */
    for (struct sched *s = watch_head; s != NULL; s = s->lat.watch_next) {
        struct coro__latency *l = &s->lat;
        int64_t thr = atomic_load_explicit(&l->threshold_ticks,
                                           memory_order_relaxed);
        int64_t start = atomic_load_explicit(&s->slice_start,
                                             memory_order_relaxed);
        if (thr == CORO__NEVER || start == CORO__NEVER ||
            now - start <= thr || start == l->sent_start)
            continue;
        l->sent_start = start; /* once per slice */
        atomic_store_explicit(&l->want_start, start, memory_order_release);
        if (can)
            pthread_kill(l->thread, signo);
    }
    pthread_mutex_unlock(&watch_lock);
}

void coro__watchdog_after_fork(void)
{
    /* Only the forking thread survives; the lock may have been held. */
    pthread_mutex_init(&watch_lock, NULL);
    watch_head = NULL;
    atomic_store(&watch_count, 0);
}

/* ------------------------------------------------------------------ */
/* The warning (normal context, on the slow coroutine's stack)         */

static int64_t ms_of(int64_t ticks)
{
    return (tsc_ticks_to_usec(ticks) + 500) / 1000;
}

static void buf_resumed(struct coro__buf *b, const struct coro__resumed *r)
{
    if (r->what == NULL)
        coro__buf_str(b, "entry");
    else if (r->addr == NULL && r->site.file == NULL)
        coro__buf_str(b, r->what);
    else
        coro__buf_site(b, r->what, r->addr, r->site.file, r->site.line,
                       r->site.func, true);
}

static void buf_yielded(struct coro__buf *b, const struct coro *co,
                        bool ended)
{
    const struct coro__wait *w = co->wait;
    if (ended || w == NULL) {
        coro__buf_str(b, ended ? "exit" : "unknown");
        return;
    }
    const coro_site_t *site = w->site;
    bool known = site != NULL && site->file != NULL;
    coro__buf_site(b, w->what, w->addr, known ? site->file : NULL,
                   known ? site->line : 0, known ? site->func : NULL, true);
}

/* "    #i 0xpc name+0xoff (module)" or "    #i 0xpc (module+0xoff)". */
static void buf_frame(struct coro__buf *b, int i, uintptr_t pc)
{
    struct coro__sym sym;
    /* A return address may be the first byte after the call's function
     * (a noreturn call at its end): look up the call instruction. */
    coro__sys_symbolize((const void *)(i > 0 ? pc - 1 : pc), &sym);
    if (i > 0 && sym.name != NULL)
        sym.name_off++;
    if (i > 0 && sym.module != NULL)
        sym.module_off++;
    coro__buf_str(b, "    #");
    coro__buf_num(b, i);
    coro__buf_str(b, " ");
    coro__buf_hex(b, pc);
    if (sym.name != NULL) {
        coro__buf_str(b, " ");
        coro__buf_str(b, sym.name);
        coro__buf_str(b, "+");
        coro__buf_hex(b, sym.name_off);
    }
    if (sym.module != NULL) {
        coro__buf_str(b, " (");
        coro__buf_str(b, sym.module);
        if (sym.name == NULL) {
            coro__buf_str(b, "+");
            coro__buf_hex(b, sym.module_off);
        }
        coro__buf_str(b, ")");
    }
    coro__buf_str(b, "\n");
}

void coro__latency_warn(struct sched *s, struct coro *from, int64_t slice,
                        bool ended)
{
    struct coro__latency *l = &s->lat;
    int64_t start = atomic_load_explicit(&s->slice_start,
                                         memory_order_relaxed);
    int64_t now = start + slice;
    /* A burst of slow slices (a stalled disk, a swapped-out heap) would
     * otherwise flood stderr and slow the loop further. */
    if (now - l->window_start >= tsc_ticks_per_sec() ||
        l->window_start == 0) {
        l->window_start = now;
        l->window_count = 0;
    }
    if (l->window_count >= CORO__LAT_BURST) {
        l->suppressed++;
        return;
    }
    l->window_count++;

    /* cap leaves room for a final newline. */
    struct coro__buf b = {l->text, 0, sizeof l->text - 1};
    b.len = coro__stamp(l->text, b.cap);
    char tmp[64];
    coro__buf_str(&b, "latency: coroutine ");
    coro__buf_coro(&b, from);
    coro__buf_str(&b, " held the CPU ");
    coro__buf_num(&b, ms_of(slice));
    snprintf(tmp, sizeof tmp, " ms (threshold %g ms); resumed at ",
             BASE_SEC * 1000 * l->factor);
    coro__buf_str(&b, tmp);
    buf_resumed(&b, &l->resumed);
    coro__buf_str(&b, "; yielded at ");
    buf_yielded(&b, from, ended || from->state == CORO_DEAD);
    if (l->suppressed != 0) {
        coro__buf_str(&b, "; ");
        coro__buf_num(&b, (int64_t)l->suppressed);
        coro__buf_str(&b, " more warnings suppressed before this one");
        l->suppressed = 0;
    }
    coro__buf_str(&b, "\n");
    if (l->sample_start == start && l->npcs > 0) {
        coro__buf_str(&b, "  watchdog sample ");
        coro__buf_num(&b, ms_of(l->sample_ticks));
        coro__buf_str(&b, " ms into the slice:\n");
        for (int i = 0; i < l->npcs; i++)
            buf_frame(&b, i, l->pcs[i]);
    }
    if (b.p[b.len - 1] != '\n')
        b.p[b.len++] = '\n'; /* cut short: still end the line */
    coro__log_emit(b.p, b.len);
}
