/*
 * Condition variable without a mutex, as in Shrapnel: coroutines switch
 * only inside blocking calls, so "test, then wait" cannot miss a wake-up.
 *
 * A wake carries a value (or, from interrupt_all, an error) to each
 * waiter it chooses.  A waiter chosen by wake_one or wake_n stands for
 * one unit of work the waker meant someone to do, so if an interrupt
 * replaces its wake-up it passes the unit and the value to the next
 * waiter.  A waiter woken by wake_all or interrupt_all passes nothing on:
 * every waiter of that moment got the same news.
 */
#include "sync_internal.h"

#include <limits.h>

struct cond {
    struct coro__waitq waiters; /* struct cond_wait, arrival order */
};
CORO__SYNC_CHECK(coro_cond_t, struct cond);

/* A coro_cond_wait() call. */
struct cond_wait {
    struct coro__wait w; /* first member: the queue holds &w */
    bool unit;           /* chosen by wake_one/wake_n: pass on if cut */
    int err;             /* from interrupt_all: the call fails with it */
};

static struct cond *cond_of(coro_cond_t *c)
{
    return (struct cond *)(void *)c;
}

/* Wake up to n waiters, in arrival order, with value or err.  Returns the
 * number woken. */
static int cond_wake(struct cond *cv, int n, intptr_t value, bool unit, int err)
{
    int woken = 0;
    struct coro__wait *w;
    while (woken < n && (w = coro__sync_first(&cv->waiters)) != NULL) {
        struct cond_wait *cw = (struct cond_wait *)w;
        cw->unit = unit;
        cw->err = err;
        coro__sync_hand(&cv->waiters, w, value);
        woken++;
    }
    return woken;
}

static void cond_cancel(struct coro__wait *w)
{
    struct cond *cv = w->obj;
    if (w->queued)
        coro__waitq_remove(&cv->waiters, w);
    else if (((struct cond_wait *)w)->unit)
        cond_wake(cv, 1, w->value, true, 0); /* pass the wake-up on */
}

int coro_cond_init(coro_cond_t *c)
{
    if (c == NULL) {
        errno = EINVAL;
        return -1;
    }
    *cond_of(c) = (struct cond){0};
    return 0;
}

int coro_cond_wait_at(coro_cond_t *c, intptr_t *value, const coro_site_t *site)
{
    if (c == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct cond *cv = cond_of(c);
    struct cond_wait cw;
    coro__wait_init(&cw.w, "cond", site, __builtin_return_address(0));
    cw.unit = false;
    cw.err = 0;
    if (coro__wait_begin(&cw.w) != 0)
        return -1;
    if (coro__sync_park(&cv->waiters, &cw.w, cv, cond_cancel) != 0)
        return -1;
    if (cw.err != 0) {
        errno = cw.err;
        return -1;
    }
    if (value != NULL)
        *value = cw.w.value;
    return 0;
}

int(coro_cond_wait)(coro_cond_t *c, intptr_t *value)
{
    return coro_cond_wait_at(c, value, NULL);
}

int coro_cond_wake_one(coro_cond_t *c, intptr_t value)
{
    return coro_cond_wake_n(c, 1, value);
}

int coro_cond_wake_n(coro_cond_t *c, int n, intptr_t value)
{
    if (c == NULL || n < 0) {
        errno = EINVAL;
        return -1;
    }
    return cond_wake(cond_of(c), n, value, true, 0);
}

int coro_cond_wake_all(coro_cond_t *c, intptr_t value)
{
    if (c == NULL) {
        errno = EINVAL;
        return -1;
    }
    return cond_wake(cond_of(c), INT_MAX, value, false, 0);
}

int coro_cond_interrupt_all(coro_cond_t *c, int err)
{
    if (c == NULL || err <= 0) {
        errno = EINVAL;
        return -1;
    }
    return cond_wake(cond_of(c), INT_MAX, 0, false, err);
}
