/*
 * Signals as events: coroutines wait for signals, arrivals nobody waits
 * for are kept pending (one per signal number), SIGINT and SIGTERM end
 * the loop by default, and process.c subscribes to SIGCHLD.
 *
 * What is caught is computed in one place, update(): the signals the
 * application watches, those with an internal subscriber, and SIGINT and
 * SIGTERM while the loop runs with the default on.  The source (signalfd
 * or self-pipe) catches exactly that set.  When the source changes the
 * thread's mask and the context switch carries a mask per context
 * (ucontext), every saved context gets the new mask too: otherwise
 * switching to a coroutine created earlier would unblock the signals
 * again, and a pending one would take its default action.
 */
#include "signal_internal.h"
#include "io_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The signal state of one scheduler (s->signals), made on first use. */
struct coro__signals {
    struct coro__sigsrc *src;   /* NULL until something is caught */
    uint64_t watched;           /* watched by the application */
    uint64_t caught;            /* what src catches (update() keeps it) */
    uint64_t pending;           /* watched, arrived, nobody waited yet */
    uint64_t subscribed;        /* signals with an internal subscriber */
    bool defaults_off;          /* coro_set_default_signals(false) */
    bool defaults_active;       /* loop running with SIGINT/SIGTERM on */
    struct coro__waitq waiters; /* struct sig_wait, in arrival order */
    coro__signal_fn subscriber[CORO__NSIG]; /* by signal number */
    coro_siginfo_t pending_info[CORO__NSIG]; /* of each pending signal */
};

/* The default pair: SIGINT and SIGTERM end the loop. */
#define DEFAULT_SET (CORO__SIGBIT(SIGINT) | CORO__SIGBIT(SIGTERM))

/* The wait record of coro_wait_signals(). */
struct sig_wait {
    struct coro__wait w;  /* first member */
    uint64_t set;         /* the signals it waits for */
    coro_siginfo_t info;  /* filled by the waker */
    bool alone;           /* the only waiter that arrival woke */
};

static struct coro__signals *state_get(struct sched *s)
{
    if (CORO__LIKELY(s->signals != NULL))
        return s->signals;
    s->signals = coro__sys_calloc(1, sizeof *s->signals);
    return s->signals;
}

/* Whether signo may be watched.  Fault signals are excluded: blocked, a
 * real fault kills the process anyway, and our overflow report needs
 * SIGSEGV. */
static bool valid(int signo)
{
    if (signo <= 0 || signo >= CORO__NSIG || signo >= NSIG)
        return false;
    switch (signo) {
    case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS: case SIGFPE:
    case SIGILL: case SIGTRAP:
        return false;
    default:
        return coro__sigsrc_usable(signo);
    }
}

/* Give every saved context the thread's current mask (ucontext only). */
static void sync_contexts(struct sched *s)
{
    if (!coro__ctx_saves_sigmask())
        return;
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    coro__ctx_set_sigmask(&s->loop_ctx, &mask);
    for (struct coro *co = s->all_head; co != NULL; co = co->all_next)
        if (co != s->current)
            coro__ctx_set_sigmask(&co->ctx, &mask);
}

/* Make the source catch what the state asks for.  0, or -1 with errno and
 * nothing changed (the caller reverts its own change). */
static int update(struct sched *s, struct coro__signals *st)
{
    uint64_t want = st->watched | st->subscribed |
                    (st->defaults_active ? DEFAULT_SET : 0);
    if (want == st->caught)
        return 0;
    if (st->src == NULL && coro__sigsrc_open(s, &st->src) != 0)
        return -1;
    if (coro__sigsrc_set(st->src, want) != 0)
        return -1;
    st->caught = want;
    if (coro__sigsrc_blocks())
        sync_contexts(s);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Arrivals                                                           */

void coro__signal_arrived(struct sched *s, const coro_siginfo_t *info)
{
    struct coro__signals *st = s->signals;
    int signo = info->signo;
    if (st == NULL || signo <= 0 || signo >= CORO__NSIG)
        return;
    uint64_t bit = CORO__SIGBIT(signo);
    if (st->subscribed & bit)
        st->subscriber[signo](s, info);
    size_t takers = 0;
    for (struct coro__wait *w = st->waiters.head; w != NULL; w = w->next)
        takers += (((struct sig_wait *)w)->set & bit) != 0;
    for (struct coro__wait *w = st->waiters.head, *next; w != NULL;
         w = next) {
        next = w->next;
        struct sig_wait *sw = (struct sig_wait *)w;
        if (sw->set & bit) {
            coro__waitq_remove(&st->waiters, w);
            sw->info = *info;
            sw->alone = takers == 1;
            coro__wake(w, signo);
        }
    }
    if (takers > 0)
        return;
    if (st->watched & bit) {
        st->pending |= bit; /* merged with an earlier one, as the kernel */
        st->pending_info[signo] = *info;
    } else if (st->defaults_active && (bit & DEFAULT_SET)) {
        coro_set_exit(128 + signo);
    }
    /* Otherwise only a subscriber wanted it. */
}

/* ------------------------------------------------------------------ */
/* Waiting                                                             */

static void sig_wait_cancel(struct coro__wait *w)
{
    struct coro__signals *st = coro__tls_sched->signals;
    struct sig_wait *sw = (struct sig_wait *)w;
    if (w->queued) {
        coro__waitq_remove(&st->waiters, w);
    } else if (w->value > 0 && sw->alone) {
        /* It got a signal, then an interrupt replaced the wake-up: keep
         * the signal for the next wait rather than lose it (unless other
         * waiters have it: then it would arrive twice). */
        int signo = (int)w->value;
        if (st->watched & CORO__SIGBIT(signo)) {
            st->pending |= CORO__SIGBIT(signo);
            st->pending_info[signo] = sw->info;
        }
    }
}

/* Watch every signal of set; 0, or -1 with errno and nothing changed. */
static int watch_set(struct sched *s, struct coro__signals *st, uint64_t set)
{
    uint64_t old = st->watched;
    st->watched |= set;
    if (update(s, st) != 0) {
        int saved = errno;
        st->watched = old;
        errno = saved;
        return -1;
    }
    return 0;
}

/* The set of signos[0..n), or 0 with errno EINVAL. */
static uint64_t set_of(const int *signos, size_t n)
{
    uint64_t set = 0;
    if (signos == NULL || n == 0)
        goto invalid;
    for (size_t i = 0; i < n; i++) {
        if (!valid(signos[i]))
            goto invalid;
        set |= CORO__SIGBIT(signos[i]);
    }
    return set;
invalid:
    errno = EINVAL;
    return 0;
}

static int wait_set(uint64_t set, coro_siginfo_t *info,
                    const coro_site_t *site, const void *addr)
{
    struct sig_wait sw;
    coro__wait_init(&sw.w, "signal", site, addr);
    if (coro__wait_begin(&sw.w) != 0)
        return -1;
    struct sched *s = coro__tls_sched;
    struct coro__signals *st = state_get(s);
    if (st == NULL || watch_set(s, st, set) != 0)
        return -1;
    uint64_t ready = st->pending & set;
    if (ready != 0) {
        int signo = __builtin_ctzll(ready) + 1; /* the lowest-numbered */
        st->pending &= ~CORO__SIGBIT(signo);
        if (info != NULL)
            *info = st->pending_info[signo];
        return signo;
    }
    sw.set = set;
    sw.w.obj = st;
    sw.w.cancel = sig_wait_cancel;
    coro__waitq_push(&st->waiters, &sw.w);
    coro__io_hold(s, 1);
    int rc = coro__wait_park(&sw.w);
    coro__io_hold(s, -1);
    if (rc != 0)
        return -1;
    if (info != NULL)
        *info = sw.info;
    return (int)sw.w.value;
}

int coro_wait_signals_at(const int *signos, size_t n, coro_siginfo_t *info,
                         const coro_site_t *site)
{
    uint64_t set = set_of(signos, n);
    if (set == 0)
        return -1;
    return wait_set(set, info, site, __builtin_return_address(0));
}

int(coro_wait_signals)(const int *signos, size_t n, coro_siginfo_t *info)
{
    return coro_wait_signals_at(signos, n, info, NULL);
}

int coro_wait_signal_at(int signo, coro_siginfo_t *info,
                        const coro_site_t *site)
{
    if (!valid(signo)) {
        errno = EINVAL;
        return -1;
    }
    return wait_set(CORO__SIGBIT(signo), info, site,
                    __builtin_return_address(0));
}

int(coro_wait_signal)(int signo, coro_siginfo_t *info)
{
    return coro_wait_signal_at(signo, info, NULL);
}

/* ------------------------------------------------------------------ */
/* Watching, defaults, subscribers                                     */

int coro_signal_watch(int signo)
{
    if (!valid(signo)) {
        errno = EINVAL;
        return -1;
    }
    struct sched *s = coro__sched();
    struct coro__signals *st = s != NULL ? state_get(s) : NULL;
    if (st == NULL)
        return -1;
    return watch_set(s, st, CORO__SIGBIT(signo));
}

int coro_signal_unwatch(int signo)
{
    if (!valid(signo)) {
        errno = EINVAL;
        return -1;
    }
    struct sched *s = coro__tls_sched;
    struct coro__signals *st = s != NULL ? s->signals : NULL;
    uint64_t bit = CORO__SIGBIT(signo);
    if (st == NULL || !(st->watched & bit))
        return 0;
    for (struct coro__wait *w = st->waiters.head; w != NULL; w = w->next) {
        if (((struct sig_wait *)w)->set & bit) {
            errno = EBUSY;
            return -1;
        }
    }
    st->watched &= ~bit;
    if (update(s, st) != 0) {
        int saved = errno;
        st->watched |= bit;
        errno = saved;
        return -1;
    }
    st->pending &= ~bit;
    return 0;
}

/* Catch or release the default pair per the state; warn on failure. */
static void defaults_apply(struct sched *s, struct coro__signals *st,
                           bool active)
{
    bool old = st->defaults_active;
    st->defaults_active = active;
    if (update(s, st) != 0) {
        st->defaults_active = old;
        coro_print_stderr("coro: cannot catch SIGINT and SIGTERM: %s",
                          strerror(errno));
    }
}

bool coro_set_default_signals(bool on)
{
    struct sched *s = coro__sched();
    struct coro__signals *st = s != NULL ? state_get(s) : NULL;
    if (st == NULL)
        return true;
    bool old = !st->defaults_off;
    st->defaults_off = !on;
    if (s->running)
        defaults_apply(s, st, on);
    return old;
}

void coro__signal_loop_start(struct sched *s)
{
    struct coro__signals *st = state_get(s);
    if (st == NULL) {
        coro_print_stderr("coro: cannot catch SIGINT and SIGTERM: %s",
                          strerror(errno));
        return;
    }
    if (!st->defaults_off)
        defaults_apply(s, st, true);
}

int coro__signal_loop_end(struct sched *s, int rc)
{
    struct coro__signals *st = s->signals;
    int saved = errno; /* rc may be -1 with EDEADLK */
    if (st != NULL && st->defaults_active) {
        /* A SIGINT or SIGTERM may have come after the last poll: once
         * released it would take its default action, killing the
         * process, though it came while the loop promised to catch it. */
        s->exit_requested = false;
        coro__sigsrc_drain(s, st->src);
        if (s->exit_requested) {
            rc = s->exit_code;
            s->exit_requested = false;
        }
        st->defaults_active = false;
        /* Releasing only shrinks the set: a source fails only there if
         * the kernel refuses to unblock, which it never does. */
        if (update(s, st) != 0)
            st->defaults_active = true;
    }
    errno = saved;
    return rc;
}

int coro__signal_subscribe(struct sched *s, int signo, coro__signal_fn fn)
{
    struct coro__signals *st = state_get(s);
    if (st == NULL)
        return -1;
    uint64_t bit = CORO__SIGBIT(signo);
    st->subscriber[signo] = fn;
    st->subscribed |= bit;
    if (update(s, st) != 0) {
        int saved = errno;
        st->subscribed &= ~bit;
        st->subscriber[signo] = NULL;
        errno = saved;
        return -1;
    }
    return 0;
}

void coro__signal_unsubscribe(struct sched *s, int signo)
{
    struct coro__signals *st = s->signals;
    if (st == NULL)
        return;
    st->subscribed &= ~CORO__SIGBIT(signo);
    st->subscriber[signo] = NULL;
    int saved = errno;
    update(s, st); /* only shrinks the set; see coro__signal_loop_end() */
    errno = saved;
}

void coro__signal_child_mask(struct sched *s, sigset_t *out)
{
    struct coro__signals *st = s != NULL ? s->signals : NULL;
    if (st != NULL && st->src != NULL)
        coro__sigsrc_child_mask(st->src, out);
    else
        pthread_sigmask(SIG_BLOCK, NULL, out);
}

void coro__signal_after_fork(struct sched *s)
{
    struct coro__signals *st = s->signals;
    if (st != NULL && st->src != NULL &&
        coro__sigsrc_after_fork(s, st->src) != 0)
        coro_print_stderr("coro: signals after fork share the parent's "
                          "source: %s",
                          strerror(errno));
}

void coro__signal_fini(struct sched *s)
{
    struct coro__signals *st = s->signals;
    if (st == NULL)
        return;
    if (st->src != NULL)
        coro__sigsrc_close(s, st->src);
    coro__sys_free(st);
    s->signals = NULL;
}
