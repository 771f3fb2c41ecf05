/*
 * Mutex: recursive, with direct hand-off to the first waiter.
 *
 * Unlock makes the first waiter the owner before it runs (as Shrapnel
 * does), so a coroutine that arrives later cannot take the mutex from
 * under it.  A waiter interrupted after the hand-off unlocks on its way
 * out, passing the mutex on (see sync_internal.h).
 */
#include "sync_internal.h"

#include <assert.h>

struct mutex {
    struct coro *owner;         /* holder, NULL when unlocked; the record, not
                                   the id, so a reused id cannot pass for it */
    size_t count;               /* the owner's locks not yet unlocked; 0 iff
                                   owner is NULL */
    struct coro__waitq waiters; /* coro_mutex_lock() calls, arrival order;
                                   never a wakeable one while unlocked */
};
CORO__SYNC_CHECK(coro_mutex_t, struct mutex);

static struct mutex *mutex_of(coro_mutex_t *m)
{
    return (struct mutex *)(void *)m;
}

/* Let the mutex go: hand it to the first wakeable waiter, or unlock. */
static void mutex_pass(struct mutex *mx)
{
    struct coro__wait *w = coro__sync_first(&mx->waiters);
    if (w == NULL) {
        mx->owner = NULL;
        mx->count = 0;
        return;
    }
    mx->owner = w->co;
    mx->count = 1;
    coro__sync_hand(&mx->waiters, w, 0);
}

static void mutex_cancel(struct coro__wait *w)
{
    struct mutex *mx = w->obj;
    if (w->queued)
        coro__waitq_remove(&mx->waiters, w);
    else {
        /* It had been made the owner and has not run since. */
        assert(mx->owner == w->co && mx->count == 1);
        mutex_pass(mx);
    }
}

int coro_mutex_init(coro_mutex_t *m)
{
    if (m == NULL) {
        errno = EINVAL;
        return -1;
    }
    *mutex_of(m) = (struct mutex){0};
    return 0;
}

/* Take mx without waiting if that is possible: 0, 1 when the caller
 * must wait, or -1 with errno EOVERFLOW. */
static int mutex_take(struct mutex *mx, struct coro *self)
{
    if (mx->owner == NULL) {
        mx->owner = self;
        mx->count = 1;
        return 0;
    }
    if (mx->owner != self)
        return 1;
    if (mx->count == SIZE_MAX) {
        errno = EOVERFLOW;
        return -1;
    }
    mx->count++;
    return 0;
}

int coro_mutex_lock_at(coro_mutex_t *m, const coro_site_t *site)
{
    if (m == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct mutex *mx = mutex_of(m);
    CORO__WAIT(w, "mutex", site);
    if (coro__wait_begin(&w) != 0)
        return -1;
    int rc = mutex_take(mx, w.co);
    if (rc <= 0)
        return rc;
    /* Success means unlock made us the owner (count 1) before waking us. */
    return coro__sync_park(&mx->waiters, &w, mx, mutex_cancel);
}

int(coro_mutex_lock)(coro_mutex_t *m)
{
    return coro_mutex_lock_at(m, NULL);
}

int coro_mutex_trylock(coro_mutex_t *m)
{
    if (m == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct coro *self = coro__self();
    if (self == NULL)
        return -1;
    int rc = mutex_take(mutex_of(m), self);
    if (rc > 0) {
        errno = EBUSY;
        return -1;
    }
    return rc;
}

int coro_mutex_unlock(coro_mutex_t *m)
{
    if (m == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct mutex *mx = mutex_of(m);
    struct coro *self = coro__self();
    if (self == NULL || mx->owner != self) {
        errno = EPERM;
        return -1;
    }
    if (--mx->count == 0)
        mutex_pass(mx);
    return 0;
}

bool coro_mutex_locked(const coro_mutex_t *m)
{
    return m != NULL && ((const struct mutex *)(const void *)m)->owner != NULL;
}
