/*
 * One-shot event carrying a value: a future.  Setting it wakes every
 * waiter; later waiters return at once.  Each waiter is woken on its own
 * and takes nothing from the others, so an interrupted one has nothing to
 * pass on.
 *
 * Setting is the end of the event's story for its waiters: set empties
 * the queue, handing each waiter the value with its wake-up, so that no
 * waiter touches the event after set returns (not even one a timer or an
 * interrupt woke before and that has not run yet: its cancel() finds
 * itself off the queue).  The event may then be reused or freed while
 * woken waiters are still to run.
 */
#include "sync_internal.h"

struct event {
    bool set;                   /* coro_event_set() was called */
    void *value;                /* its value, borrowed; NULL until set */
    struct coro__waitq waiters; /* coro_event_wait() calls; empty once
                                   set */
};
CORO__SYNC_CHECK(coro_event_t, struct event);

static struct event *event_of(coro_event_t *ev)
{
    return (struct event *)(void *)ev;
}

static void event_cancel(struct coro__wait *w)
{
    struct event *e = w->obj;
    if (w->queued)
        coro__waitq_remove(&e->waiters, w);
}

int coro_event_init(coro_event_t *ev)
{
    if (ev == NULL) {
        errno = EINVAL;
        return -1;
    }
    *event_of(ev) = (struct event){0};
    return 0;
}

int coro_event_set(coro_event_t *ev, void *value)
{
    if (ev == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct event *e = event_of(ev);
    if (e->set) {
        errno = EALREADY;
        return -1;
    }
    e->set = true;
    e->value = value;
    /* Take every wait off the queue, the ones a timer or an interrupt
     * woke too (they fail as they would have; off the queue, their
     * cancel() does nothing), and give the wakeable ones the value. */
    struct coro__wait *w;
    while ((w = coro__waitq_pop(&e->waiters)) != NULL)
        coro__wake(w, (intptr_t)value);
    return 0;
}

int coro_event_wait_at(coro_event_t *ev, void **value, const coro_site_t *site)
{
    if (ev == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct event *e = event_of(ev);
    CORO__WAIT(w, "event", site);
    if (coro__wait_begin(&w) != 0)
        return -1;
    void *v = e->value;
    if (!e->set) {
        if (coro__sync_park(&e->waiters, &w, e, event_cancel) != 0)
            return -1;
        v = (void *)w.value; /* from set: the event may be gone by now */
    }
    if (value != NULL)
        *value = v;
    return 0;
}

int(coro_event_wait)(coro_event_t *ev, void **value)
{
    return coro_event_wait_at(ev, value, NULL);
}

bool coro_event_is_set(const coro_event_t *ev, void **value)
{
    if (ev == NULL)
        return false;
    const struct event *e = (const struct event *)(const void *)ev;
    if (e->set && value != NULL)
        *value = e->value;
    return e->set;
}
