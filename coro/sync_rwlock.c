/*
 * Read-write lock, writer-preferring, with Shrapnel's hand-offs: a
 * writer's unlock hands the lock to the first waiting writer, else to
 * every waiting reader at once; the last reader's unlock hands it to the
 * first waiting writer.  Readers arriving while a writer waits queue
 * behind it, so a stream of readers cannot starve writers.
 *
 * Readers are counted, not recorded: recording them would need memory
 * per reader, and waits allocate nothing.  So read locks are not
 * recursive and a read unlock cannot check who calls it.
 */
#include "sync_internal.h"

#include <assert.h>

struct rwlock {
    struct coro *writer;    /* holder for writing, or NULL */
    size_t readers;         /* read locks held; 0 while writer set */
    struct coro__waitq rdq; /* coro_rwlock_rdlock() calls */
    struct coro__waitq wrq; /* coro_rwlock_wrlock() calls */
};
CORO__SYNC_CHECK(coro_rwlock_t, struct rwlock);

static struct rwlock *rwlock_of(coro_rwlock_t *rw)
{
    return (struct rwlock *)(void *)rw;
}

/* Hand the lock to whoever may have it now: the first waiting writer if
 * the lock is free, else, while no writer holds it or waits, every
 * waiting reader. */
static void rwlock_grant(struct rwlock *rl)
{
    if (rl->writer != NULL)
        return;
    struct coro__wait *w = coro__sync_first(&rl->wrq);
    if (w != NULL) {
        if (rl->readers == 0) {
            rl->writer = w->co;
            coro__sync_hand(&rl->wrq, w, 0);
        }
        return; /* a waiting writer holds back new readers */
    }
    while ((w = coro__sync_first(&rl->rdq)) != NULL) {
        rl->readers++;
        coro__sync_hand(&rl->rdq, w, 0);
    }
}

static void rwlock_rd_cancel(struct coro__wait *w)
{
    struct rwlock *rl = w->obj;
    if (w->queued) {
        coro__waitq_remove(&rl->rdq, w);
        return;
    }
    assert(rl->readers > 0);
    rl->readers--; /* handed a read lock: drop it */
    rwlock_grant(rl);
}

static void rwlock_wr_cancel(struct coro__wait *w)
{
    struct rwlock *rl = w->obj;
    if (w->queued)
        coro__waitq_remove(&rl->wrq, w);
    else {
        assert(rl->writer == w->co);
        rl->writer = NULL; /* handed the write lock: drop it */
    }
    /* A leaving writer may have been all that held readers back. */
    rwlock_grant(rl);
}

int coro_rwlock_init(coro_rwlock_t *rw)
{
    if (rw == NULL) {
        errno = EINVAL;
        return -1;
    }
    *rwlock_of(rw) = (struct rwlock){0};
    return 0;
}

/* Take a read lock without waiting if possible: 0, 1 when the caller
 * must wait, or -1 with errno EDEADLK. */
static int rwlock_rd_take(struct rwlock *rl, struct coro *self)
{
    if (rl->writer == self) {
        errno = EDEADLK;
        return -1;
    }
    if (rl->writer != NULL || coro__sync_first(&rl->wrq) != NULL)
        return 1;
    rl->readers++;
    return 0;
}

/* As rwlock_rd_take() for the write lock. */
static int rwlock_wr_take(struct rwlock *rl, struct coro *self)
{
    if (rl->writer == self) {
        errno = EDEADLK;
        return -1;
    }
    if (rl->writer != NULL || rl->readers > 0)
        return 1;
    rl->writer = self;
    return 0;
}

int coro_rwlock_rdlock_at(coro_rwlock_t *rw, const coro_site_t *site)
{
    if (rw == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct rwlock *rl = rwlock_of(rw);
    CORO__WAIT(w, "rwlock read", site);
    if (coro__wait_begin(&w) != 0)
        return -1;
    int rc = rwlock_rd_take(rl, w.co);
    if (rc <= 0)
        return rc;
    return coro__sync_park(&rl->rdq, &w, rl, rwlock_rd_cancel);
}

int(coro_rwlock_rdlock)(coro_rwlock_t *rw)
{
    return coro_rwlock_rdlock_at(rw, NULL);
}

int coro_rwlock_wrlock_at(coro_rwlock_t *rw, const coro_site_t *site)
{
    if (rw == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct rwlock *rl = rwlock_of(rw);
    CORO__WAIT(w, "rwlock write", site);
    if (coro__wait_begin(&w) != 0)
        return -1;
    int rc = rwlock_wr_take(rl, w.co);
    if (rc <= 0)
        return rc;
    return coro__sync_park(&rl->wrq, &w, rl, rwlock_wr_cancel);
}

int(coro_rwlock_wrlock)(coro_rwlock_t *rw)
{
    return coro_rwlock_wrlock_at(rw, NULL);
}

/* A try-variant: take with take(), turning "must wait" into EBUSY. */
static int rwlock_try(coro_rwlock_t *rw,
                      int (*take)(struct rwlock *rl, struct coro *self))
{
    if (rw == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct coro *self = coro__self(); /* the writer's identity */
    if (self == NULL)
        return -1;
    int rc = take(rwlock_of(rw), self);
    if (rc > 0) {
        errno = EBUSY;
        return -1;
    }
    return rc;
}

int coro_rwlock_try_rdlock(coro_rwlock_t *rw)
{
    return rwlock_try(rw, rwlock_rd_take);
}

int coro_rwlock_try_wrlock(coro_rwlock_t *rw)
{
    return rwlock_try(rw, rwlock_wr_take);
}

int coro_rwlock_rdunlock(coro_rwlock_t *rw)
{
    if (rw == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct rwlock *rl = rwlock_of(rw);
    if (rl->readers == 0) {
        errno = EPERM;
        return -1;
    }
    if (--rl->readers == 0)
        rwlock_grant(rl);
    return 0;
}

int coro_rwlock_wrunlock(coro_rwlock_t *rw)
{
    if (rw == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct rwlock *rl = rwlock_of(rw);
    struct coro *self = coro__self();
    if (self == NULL || rl->writer != self) {
        errno = EPERM;
        return -1;
    }
    rl->writer = NULL;
    rwlock_grant(rl);
    return 0;
}
