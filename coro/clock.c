/*
 * The coarse clock: a tick count refreshed about every millisecond by a
 * background thread, so the scheduler can time run slices and notice due
 * timers with one memory load per switch instead of a TSC read (rdtsc
 * costs about 20 ns on a virtual CPU, more than the switch itself).
 *
 * The thread ticks every millisecond while some event loop is running
 * coroutines, and for 100 ms (LINGER_NS) after that; then it dozes,
 * waking every 100 ms, so an idle program wakes rarely.  A loop that
 * becomes busy while the thread dozes wakes it at once: a slice timed
 * against a clock that stopped would look short, and a latency warning
 * would be missed.  The linger keeps that wake-up (a futex call) off the
 * path of a server whose loop goes idle between requests.
 *
 * Loops take a precise TSC reading at every pass; the coarse clock only
 * advances time inside a chain of direct coroutine-to-coroutine switches,
 * and the scheduler bounds those chains, so nothing depends on the thread
 * for correctness: without it (it could not start, or fork() left it
 * behind) timing is merely coarser.
 *
 * The same thread is the latency watchdog (latency.c): at each tick it
 * looks for slices running past their threshold.
 */
#include "coro_internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

_Atomic int64_t coro__coarse_ticks;

static _Atomic int busy_loops;      /* loops running coroutines */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static bool started;                /* the ticker runs in this process */
static bool atfork_set;             /* the fork handler is registered */
static pthread_mutex_t doze_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t doze_cond;    /* signalled when a loop gets busy */
static _Atomic bool dozing;         /* the ticker waits on doze_cond */

#define TICK_NS 1000000L            /* 1 ms while loops are busy */
#define DOZE_NS 100000000L          /* 100 ms while all are idle */
#define LINGER_NS 100000000L        /* fast ticks after the last busy one */

/* Wait up to DOZE_NS on doze_cond, unless a loop is busy already. */
static void doze(void)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += DOZE_NS;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&doze_lock);
    /* seq_cst pairs with coro__clock_busy(): either it sees dozing and
     * signals, or we see its loop busy and do not wait. */
    atomic_store(&dozing, true);
    if (atomic_load(&busy_loops) == 0)
        pthread_cond_timedwait(&doze_cond, &doze_lock, &until);
    atomic_store(&dozing, false);
    pthread_mutex_unlock(&doze_lock);
}

static void *ticker(void *arg)
{
    (void)arg;
    int64_t linger = tsc_nsec_to_ticks(LINGER_NS);
    int64_t last_busy = 0;
    for (;;) {
        int64_t now = tsc__read();
        atomic_store_explicit(&coro__coarse_ticks, now, memory_order_relaxed);
        coro__watchdog_tick(now); /* latency.c: slices over threshold */
        if (atomic_load_explicit(&busy_loops, memory_order_relaxed) > 0)
            last_busy = now;
        if (now - last_busy < linger) {
            struct timespec ts = {0, TICK_NS};
            nanosleep(&ts, NULL);
        } else {
            doze();
        }
    }
    return NULL;
}

static void after_fork_in_child(void)
{
    /* Threads do not survive fork(): start a new ticker when needed. */
    started = false;
    atomic_store(&busy_loops, 0);
    pthread_mutex_init(&start_lock, NULL);
    pthread_mutex_init(&doze_lock, NULL);
    atomic_store(&dozing, false); /* doze_cond is made again at start */
    coro__watchdog_after_fork();
}

void coro__clock_start(void)
{
    if (CORO__LIKELY(__atomic_load_n(&started, __ATOMIC_ACQUIRE)))
        return;
    pthread_mutex_lock(&start_lock);
    if (!started) {
        if (!atfork_set && pthread_atfork(NULL, NULL, after_fork_in_child) == 0)
            atfork_set = true;
        atomic_store(&coro__coarse_ticks, tsc__read());
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&doze_cond, &ca);
        pthread_condattr_destroy(&ca);
        /* The ticker must never receive the application's signals. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_attr_t a;
        pthread_t t;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 64 * 1024);
        if (pthread_create(&t, &a, ticker, NULL) == 0)
            __atomic_store_n(&started, true, __ATOMIC_RELEASE);
        pthread_attr_destroy(&a);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_mutex_unlock(&start_lock);
}

void coro__clock_busy(struct sched *s, bool busy)
{
    if (s->clock_busy == busy)
        return;
    s->clock_busy = busy;
    /* seq_cst, paired with doze(); a loop switching on while others run
     * costs nothing more than before. */
    if (atomic_fetch_add(&busy_loops, busy ? 1 : -1) == 0 && busy &&
        atomic_load(&dozing)) {
        pthread_mutex_lock(&doze_lock);
        pthread_cond_signal(&doze_cond);
        pthread_mutex_unlock(&doze_lock);
    }
    coro__watchdog_busy(s, busy); /* watched only while running slices */
}
