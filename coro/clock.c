/*
 * The coarse clock: a tick count refreshed about every millisecond by a
 * background thread, so the scheduler can time run slices and notice due
 * timers with one memory load per switch instead of a TSC read (rdtsc
 * costs about 20 ns on a virtual CPU, more than the switch itself).
 *
 * The thread ticks every millisecond while some event loop is running
 * coroutines and every 100 ms otherwise, so an idle program wakes rarely.
 * Loops take a precise TSC reading at every pass; the coarse clock only
 * advances time inside a chain of direct coroutine-to-coroutine switches,
 * and the scheduler bounds those chains, so nothing depends on the thread
 * for correctness: without it (it could not start, or fork() left it
 * behind) timing is merely coarser.
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

static void *ticker(void *arg)
{
    (void)arg;
    for (;;) {
        atomic_store_explicit(&coro__coarse_ticks, tsc__read(),
                              memory_order_relaxed);
        long ns = atomic_load_explicit(&busy_loops, memory_order_relaxed) > 0
                      ? 1000000L
                      : 100000000L;
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void after_fork_in_child(void)
{
    /* Threads do not survive fork(): start a new ticker when needed. */
    started = false;
    atomic_store(&busy_loops, 0);
    pthread_mutex_init(&start_lock, NULL);
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
    atomic_fetch_add_explicit(&busy_loops, busy ? 1 : -1,
                              memory_order_relaxed);
}
