/*
 * Sampling mode: a timer on the loop thread's CPU-time clock sends it a
 * signal hz times per second of CPU it uses; the handler records the
 * running coroutine's call stack (coro_backtrace_signal(): frame
 * pointers, async-signal-safe) into a ring buffer.  The owner thread
 * drains the ring in normal context (at switch-out, before the poller
 * waits, and before a report) into a table of distinct stacks of return
 * addresses with their counts; names are looked up only for reports.
 *
 * The CPU-time clock does not advance while the thread is blocked, so a
 * waiting loop is not sampled: the poll hooks measure the time blocked in
 * the poller with the TSC instead, and reports show it, converted to
 * samples at the data's unit_hz, as "<wait>".
 *
 * Weights are in samples at unit_hz, which is the rate of every run when
 * they all had one rate.  A run at another rate, added to the data, makes
 * the unit the least common multiple of the rates: the weights so far are
 * multiplied up to it and each new sample adds unit_hz / hz, so runs at
 * 100 and 1000 Hz add up in time (a 100 Hz sample counts 10).  Samples taken inside the poller's system
 * call are left out for the same reason (that time is already in it).
 * Samples outside coroutines (the scheduler) count for "<main>".
 *
 * The ring: the handler is the only producer, normal code on the same
 * thread the only consumer.  A slot is written before head moves past it
 * and read before tail moves past it, with signal fences between; a full
 * ring drops the sample and counts it.
 */
#include "engine_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <tsc_time/tsc_time.h>
#include <unistd.h>

#define FRAMES 64 /* deepest stack kept; the innermost frames */
#define RING 256  /* samples between drains: 256 ms of CPU at 1 kHz, far
                     longer than a slice that does not time out */

struct sample {
    int id;          /* the coroutine (0: none) */
    int weight;      /* timer expirations it stands for (>= 1) */
    int n;           /* frames; 0 outside coroutines or mid-switch */
    bool in_poll;    /* taken in the poller's system call */
    void *pcs[FRAMES];
};

static struct sample ring[RING];
static _Atomic uint64_t head, tail; /* written by the handler / drain */
static _Atomic uint64_t ring_dropped; /* samples the full ring refused */

/* Written by the owner thread's hooks, read by its handler. */
static _Atomic int cur_id;
static _Atomic bool in_poll;
/* The handler acts only on the owner thread. */
static __thread bool tl_owner __attribute__((tls_model("initial-exec")));

static bool installed[NSIG]; /* our handler is on that signal, for good */
static timer_t timer;
static bool have_timer;

/* Distinct stacks of addresses and their counts. */
struct pstack {
    uint32_t off;  /* into pcs */
    int n;
    int64_t count;
};
static void **pcs;
static uint32_t npcs, cappcs;
static struct pstack *pstacks;
static int32_t npstacks, cappstacks;
static struct prof_itab pstack_by_pcs;

/* ------------------------------------------------------------------ */
/* The handler                                                         */

PROF_NOINSTR static void on_sample(int sig, siginfo_t *si, void *uctx)
{
    (void)sig;
    int saved = errno;
    if (tl_owner && atomic_load_explicit(&prof__e.running,
                                         memory_order_relaxed)) {
        uint64_t h = atomic_load_explicit(&head, memory_order_relaxed);
        uint64_t t = atomic_load_explicit(&tail, memory_order_relaxed);
        if (h - t >= RING) {
            atomic_fetch_add_explicit(&ring_dropped, 1,
                                      memory_order_relaxed);
        } else {
            struct sample *s = &ring[h % RING];
            s->n = coro_backtrace_signal(uctx, NULL, s->pcs, FRAMES);
            s->id = s->n > 0 ? atomic_load_explicit(&cur_id,
                                                    memory_order_relaxed)
                             : 0;
            s->in_poll = atomic_load_explicit(&in_poll,
                                              memory_order_relaxed);
            /* The kernel checks CPU timers at its tick: above that rate
             * one signal stands for every expiration since the last. */
            s->weight = 1;
            if (si != NULL && si->si_code == SI_TIMER && si->si_overrun > 0)
                s->weight += si->si_overrun;
            atomic_signal_fence(memory_order_release);
            atomic_store_explicit(&head, h + 1, memory_order_relaxed);
        }
    }
    errno = saved;
}

void prof__sample_set_coro(int id)
{
    atomic_store_explicit(&cur_id, id, memory_order_relaxed);
}

void prof__sample_in_poll(bool in)
{
    atomic_store_explicit(&in_poll, in, memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* Timer                                                               */

int prof__sample_start(void)
{
    int signo = prof__e.signo;
    if (!installed[signo]) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sample;
        /* SA_RESTART: interrupted system calls go on where they can.
         * SA_ONSTACK: a coroutine's stack may be small; the thread's
         * alternate stack (set up by coro) has room for the frame.  The
         * handler stays for good: a signal still in flight after a stop
         * must not meet the default action, which ends the process. */
        sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(signo, &sa, NULL) != 0)
            return -1;
        installed[signo] = true;
    }
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = signo;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &timer) != 0)
        return -1;
    long ns = 1000000000L / prof__e.hz;
    struct itimerspec its = {
        .it_interval = {ns / 1000000000L, ns % 1000000000L},
        .it_value = {ns / 1000000000L, ns % 1000000000L}};
    tl_owner = true;
    if (timer_settime(timer, 0, &its, NULL) != 0) {
        int saved = errno;
        timer_delete(timer);
        tl_owner = false;
        errno = saved;
        return -1;
    }
    have_timer = true;
    return 0;
}

void prof__sample_after_fork(bool keep)
{
    have_timer = false; /* the parent's: a child's timer may have its id */
    tl_owner = false;
    atomic_store_explicit(&cur_id, 0, memory_order_relaxed);
    atomic_store_explicit(&in_poll, false, memory_order_relaxed);
    if (keep)
        return;
    /* Left to the parent, not freed: it may have been mid-change. */
    pcs = NULL;
    pstacks = NULL;
    npcs = cappcs = 0;
    npstacks = cappstacks = 0;
    pstack_by_pcs = (struct prof_itab){0};
    atomic_store_explicit(&tail, atomic_load_explicit(&head,
                                                      memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&ring_dropped, 0, memory_order_relaxed);
}

void prof__sample_stop(void)
{
    if (have_timer) {
        timer_delete(timer); /* a signal sent before stays harmless */
        have_timer = false;
    }
    prof__sample_drain();
    tl_owner = false;
    atomic_store_explicit(&cur_id, 0, memory_order_relaxed);
    atomic_store_explicit(&in_poll, false, memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* Draining                                                            */

struct pcs_key {
    void *const *pcs;
    int n;
};

static bool pstack_eq(const void *ctx, int32_t idx)
{
    const struct pcs_key *k = ctx;
    const struct pstack *p = &pstacks[idx];
    return p->n == k->n &&
           memcmp(&pcs[p->off], k->pcs, (size_t)k->n * sizeof *pcs) == 0;
}

static int add_stack(void *const *s, int n, int64_t weight)
{
    struct pcs_key k = {s, n};
    uint32_t h = prof_hash(s, (size_t)n * sizeof *s, 3);
    int32_t i = prof_itab_find(&pstack_by_pcs, h, pstack_eq, &k);
    if (i >= 0) {
        pstacks[i].count += weight;
        return 0;
    }
    if (npcs + (uint32_t)n > cappcs) {
        uint32_t cap = cappcs ? cappcs : 4096;
        while (cap < npcs + (uint32_t)n)
            cap *= 2;
        void **p = realloc(pcs, cap * sizeof *p);
        if (p == NULL)
            return -1;
        pcs = p;
        cappcs = cap;
    }
    if (prof_grow(&pstacks, npstacks, &cappstacks, sizeof *pstacks, 256) != 0)
        return -1;
    if (prof_itab_add(&pstack_by_pcs, h, npstacks) != 0)
        return -1;
    memcpy(&pcs[npcs], s, (size_t)n * sizeof *s);
    pstacks[npstacks++] = (struct pstack){npcs, n, weight};
    npcs += (uint32_t)n;
    return 0;
}

void prof__sample_drain(void)
{
    uint64_t t = atomic_load_explicit(&tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&head, memory_order_relaxed);
    atomic_signal_fence(memory_order_acquire);
    for (; t != h; t++) {
        const struct sample *s = &ring[t % RING];
        if (s->n == 0) {
            if (!s->in_poll)
                prof__e.main_samples +=
                    (int64_t)s->weight * prof__e.sample_weight;
            continue;
        }
        int64_t w = (int64_t)s->weight * prof__e.sample_weight;
        struct prof_shadow *sh = prof__shadow(s->id);
        if (sh != NULL)
            sh->vclock += w;
        if (add_stack(s->pcs, s->n, w) != 0)
            prof__drop((uint64_t)s->weight);
    }
    atomic_signal_fence(memory_order_release);
    atomic_store_explicit(&tail, t, memory_order_relaxed);
}

void prof__sample_rescale(int64_t factor)
{
    for (int32_t i = 0; i < npstacks; i++)
        pstacks[i].count = prof__scale(pstacks[i].count, factor);
}

void prof__sample_free(void)
{
    prof__sample_drain(); /* what the ring holds belongs to the old data */
    free(pcs);
    free(pstacks);
    pcs = NULL;
    pstacks = NULL;
    npcs = cappcs = 0;
    npstacks = cappstacks = 0;
    prof_itab_free(&pstack_by_pcs);
    atomic_store_explicit(&ring_dropped, 0, memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* Snapshot                                                            */

/* A cache of names by (address, is_return). */
struct name_cache {
    struct prof_itab tab;
    uintptr_t *keys;
    int32_t *fns;
    int32_t n, cap;
};

static bool cache_eq(const void *ctx, int32_t idx)
{
    const struct name_cache *c = ((const void *const *)ctx)[0];
    uintptr_t key = *(const uintptr_t *)((const void *const *)ctx)[1];
    return c->keys[idx] == key;
}

/* The function index of the frame pc; -1 with errno ENOMEM. */
static int32_t frame_fn(struct prof_data *d, struct name_cache *c, void *pc,
                        bool is_return)
{
    uintptr_t key = (uintptr_t)pc - (is_return ? 1 : 0);
    const void *ctx[2] = {c, &key};
    uint32_t h = prof_hash(&key, sizeof key, 4);
    int32_t i = prof_itab_find(&c->tab, h, cache_eq, ctx);
    if (i >= 0)
        return c->fns[i];
    char name[512];
    prof__name_pc(pc, is_return, true, name, sizeof name);
    int32_t fn = prof_data_fn(d, name);
    if (fn < 0)
        return -1;
    if (c->n == c->cap) {
        int32_t cap = c->cap ? c->cap * 2 : 256;
        uintptr_t *k = realloc(c->keys, (size_t)cap * sizeof *k);
        if (k == NULL)
            return -1;
        c->keys = k;
        int32_t *f = realloc(c->fns, (size_t)cap * sizeof *f);
        if (f == NULL)
            return -1;
        c->fns = f;
        c->cap = cap;
    }
    if (prof_itab_add(&c->tab, h, c->n) != 0)
        return -1;
    c->keys[c->n] = key;
    c->fns[c->n++] = fn;
    return fn;
}

int prof__sample_snapshot(struct prof_data *d)
{
    struct prof_engine *e = &prof__e;
    struct name_cache c = {0};
    int32_t path[FRAMES];
    int rc = -1;
    int32_t fmain = prof_data_fn(d, PROF_MAIN);
    int32_t fwait = prof_data_fn(d, PROF_WAIT);
    if (fmain < 0 || fwait < 0)
        goto out;
    if (prof_data_stack(d, &fmain, 1, e->main_samples) != 0)
        goto out;
    /* Blocked time in sample units: what the timer would have counted
     * had the thread been busy. */
    int64_t wait = (int64_t)((double)e->wait_ticks * e->unit_hz /
                             (double)tsc_ticks_per_sec());
    if (prof_data_stack(d, &fwait, 1, wait) != 0)
        goto out;
    for (int32_t i = 0; i < npstacks; i++) {
        const struct pstack *p = &pstacks[i];
        for (int j = 0; j < p->n; j++) {
            /* pcs[0] is the interrupted instruction, the rest return
             * addresses; the path is root first. */
            int32_t fn = frame_fn(d, &c, pcs[p->off + j], j > 0);
            if (fn < 0)
                goto out;
            path[p->n - 1 - j] = fn;
        }
        if (prof_data_stack(d, path, p->n, p->count) != 0)
            goto out;
    }
    d->dropped += atomic_load_explicit(&ring_dropped, memory_order_relaxed);
    rc = prof_data_derive(d);
out:
    prof_itab_free(&c.tab);
    free(c.keys);
    free(c.fns);
    if (rc != 0)
        errno = ENOMEM;
    return rc;
}
