/*
 * Semaphores: the counting semaphore and the inverted semaphore.
 *
 * The counting semaphore hands units out: release() takes the units a
 * waiter asked for off the count before waking it, first come first
 * served, and stops at the first waiter that does not fit (Shrapnel's
 * head-of-line rule: strict FIFO, so a large request is never starved by
 * small ones).  A waiter interrupted after that gives its units back and
 * lets the next ones try (sync_internal.h).
 *
 * The inverted semaphore hands nothing out: waiters wait for the count to
 * fall to their level, and each is woken on its own, so an interrupted
 * one has nothing to pass on.
 */
#include "sync_internal.h"

struct sem {
    size_t avail;               /* units not handed out; first member, so
                                   CORO_SEM_INIT(n) sets it */
    struct coro__waitq waiters; /* struct sem_wait, arrival order */
};
CORO__SYNC_CHECK(coro_sem_t, struct sem);
_Static_assert(offsetof(struct sem, avail) == 0, "CORO_SEM_INIT sets avail");

/* A coro_sem_acquire() call. */
struct sem_wait {
    struct coro__wait w; /* first member: the queue holds &w */
    size_t n;            /* units it asked for */
};

static struct sem *sem_of(coro_sem_t *s)
{
    return (struct sem *)(void *)s;
}

/* Hand units to the waiters from the head while they fit.  A waiter that
 * is leaving (woken by a timer or interrupt) is skipped, not waited for. */
static void sem_grant(struct sem *sm)
{
    struct coro__wait *w;
    while ((w = coro__sync_first(&sm->waiters)) != NULL) {
        size_t n = ((struct sem_wait *)w)->n;
        if (n > sm->avail)
            break;
        sm->avail -= n;
        coro__sync_hand(&sm->waiters, w, 0);
    }
}

static void sem_cancel(struct coro__wait *w)
{
    struct sem *sm = w->obj;
    if (w->queued)
        coro__waitq_remove(&sm->waiters, w);
    else
        sm->avail += ((struct sem_wait *)w)->n; /* handed: give them back */
    /* Either way the head may have changed: the next waiters may fit. */
    sem_grant(sm);
}

int coro_sem_init(coro_sem_t *s, size_t n)
{
    if (s == NULL) {
        errno = EINVAL;
        return -1;
    }
    *sem_of(s) = (struct sem){.avail = n};
    return 0;
}

/* Whether n units can be taken now without passing a waiter. */
static bool sem_can_take(const struct sem *sm, size_t n)
{
    return n <= sm->avail && coro__sync_first(&sm->waiters) == NULL;
}

int coro_sem_acquire_at(coro_sem_t *s, size_t n, const coro_site_t *site)
{
    if (s == NULL || n == 0) {
        errno = EINVAL;
        return -1;
    }
    struct sem *sm = sem_of(s);
    struct sem_wait sw;
    coro__wait_init(&sw.w, "sem", site, __builtin_return_address(0));
    sw.n = n;
    if (coro__wait_begin(&sw.w) != 0)
        return -1;
    if (sem_can_take(sm, n)) {
        sm->avail -= n;
        return 0;
    }
    /* Success means release() took our n units off the count for us. */
    return coro__sync_park(&sm->waiters, &sw.w, sm, sem_cancel);
}

int(coro_sem_acquire)(coro_sem_t *s, size_t n)
{
    return coro_sem_acquire_at(s, n, NULL);
}

int coro_sem_try_acquire(coro_sem_t *s, size_t n)
{
    if (s == NULL || n == 0) {
        errno = EINVAL;
        return -1;
    }
    struct sem *sm = sem_of(s);
    if (!sem_can_take(sm, n)) {
        errno = EBUSY;
        return -1;
    }
    sm->avail -= n;
    return 0;
}

int coro_sem_release(coro_sem_t *s, size_t n)
{
    if (s == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct sem *sm = sem_of(s);
    if (n > SIZE_MAX - sm->avail) {
        errno = EOVERFLOW;
        return -1;
    }
    sm->avail += n;
    sem_grant(sm);
    return 0;
}

size_t coro_sem_value(const coro_sem_t *s)
{
    return s != NULL ? ((const struct sem *)(const void *)s)->avail : 0;
}

/* ------------------------------------------------------------------ */
/* The inverted semaphore.                                            */

struct isem {
    size_t value;               /* the count; first member, so
                                   CORO_ISEM_INIT(n) sets it */
    struct coro__waitq waiters; /* struct isem_wait, arrival order; each
                                   wakeable one's level is below value */
};
CORO__SYNC_CHECK(coro_isem_t, struct isem);
_Static_assert(offsetof(struct isem, value) == 0, "CORO_ISEM_INIT sets value");

/* A coro_isem_wait() call. */
struct isem_wait {
    struct coro__wait w; /* first member: the queue holds &w */
    size_t level;        /* it returns once value <= level */
};

static struct isem *isem_of(coro_isem_t *s)
{
    return (struct isem *)(void *)s;
}

static void isem_cancel(struct coro__wait *w)
{
    struct isem *is = w->obj;
    if (w->queued)
        coro__waitq_remove(&is->waiters, w);
    /* A waiter that was woken took nothing that others need. */
}

int coro_isem_init(coro_isem_t *s, size_t n)
{
    if (s == NULL) {
        errno = EINVAL;
        return -1;
    }
    *isem_of(s) = (struct isem){.value = n};
    return 0;
}

int coro_isem_acquire(coro_isem_t *s, size_t n)
{
    if (s == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct isem *is = isem_of(s);
    if (n > SIZE_MAX - is->value) {
        errno = EOVERFLOW;
        return -1;
    }
    is->value += n;
    return 0;
}

int coro_isem_release(coro_isem_t *s, size_t n)
{
    if (s == NULL || n > isem_of(s)->value) {
        errno = EINVAL;
        return -1;
    }
    struct isem *is = isem_of(s);
    is->value -= n;
    /* Wake, in arrival order, everyone whose level is now reached. */
    struct coro__wait *w = is->waiters.head;
    while (w != NULL) {
        struct coro__wait *next = w->next;
        if (coro__sync_wakeable(w) &&
            ((struct isem_wait *)w)->level >= is->value)
            coro__sync_hand(&is->waiters, w, 0);
        w = next;
    }
    return 0;
}

int coro_isem_wait_at(coro_isem_t *s, size_t level, const coro_site_t *site)
{
    if (s == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct isem *is = isem_of(s);
    struct isem_wait iw;
    coro__wait_init(&iw.w, "isem", site, __builtin_return_address(0));
    iw.level = level;
    if (coro__wait_begin(&iw.w) != 0)
        return -1;
    if (is->value <= level)
        return 0;
    return coro__sync_park(&is->waiters, &iw.w, is, isem_cancel);
}

int(coro_isem_wait)(coro_isem_t *s, size_t level)
{
    return coro_isem_wait_at(s, level, NULL);
}

size_t coro_isem_value(const coro_isem_t *s)
{
    return s != NULL ? ((const struct isem *)(const void *)s)->value : 0;
}
