/*
 * What the sync primitives (sync_*.c) share.  Never installed.
 *
 * Every primitive parks its waiters through wait.c and keeps one rule:
 * a wait that is still queued on the object has been handed nothing, and
 * a wait the object took off its queue to wake has been handed what it
 * waited for (ownership, units, an item, a slot, a value).  So when a
 * timer or an interrupt ends a wait instead, its cancel() callback knows
 * what to do: remove a queued wait, or pass on what a dequeued one was
 * handed.  That is what keeps every wake-up when an interrupt replaces
 * it (the robustness contract of Shrapnel's sync primitives).
 *
 * A queued wait whose coroutine a timer or an interrupt has already made
 * runnable stays queued until that coroutine runs and its cancel()
 * removes it.  Objects skip such waits when they hand something out:
 * only a wakeable wait can be handed anything.  (The event, whose waiters
 * have nothing to pass on, takes such waits off its queue too when it is
 * set, so that no waiter touches it afterwards: see sync_event.c.)
 *
 * A wait off the queue may still use its object when its coroutine runs
 * (to take what it was handed, or to pass it on).  So an object whose
 * destroy must know that it is no longer in use (the fifo, the channel)
 * counts its waits from park until they return, not just queued ones.
 */
#ifndef CORO_SYNC_INTERNAL_H
#define CORO_SYNC_INTERNAL_H

#include "coro_internal.h"

/* Whether an object may still wake w: its coroutine is parked in it and
 * no other cause has woken it yet. */
static inline bool coro__sync_wakeable(const struct coro__wait *w)
{
    return w->co->state == CORO_WAITING && w->co->wait == w;
}

/* The first wakeable wait of q, or NULL: the waiter to serve next. */
static inline struct coro__wait *coro__sync_first(const struct coro__waitq *q)
{
    struct coro__wait *w = q->head;
    while (w != NULL && !coro__sync_wakeable(w))
        w = w->next;
    return w;
}

/* Hand w (wakeable, queued on q) what it waits for: dequeue it, which
 * records the hand-off for its cancel(), and wake it with value. */
static inline void coro__sync_hand(struct coro__waitq *q, struct coro__wait *w,
                                   intptr_t value)
{
    coro__waitq_remove(q, w);
    coro__wake(w, value);
}

/* Queue w (after a successful coro__wait_begin()) on q and park it.
 * Returns as coro__wait_park(). */
static inline int coro__sync_park(struct coro__waitq *q, struct coro__wait *w,
                                  void *obj,
                                  void (*cancel)(struct coro__wait *w))
{
    w->obj = obj;
    w->cancel = cancel;
    coro__waitq_push(q, w);
    return coro__wait_park_fast(w);
}

/* coro__sync_park(), counted in *inside from park until the call runs
 * again, for objects whose destroy must see waiters it has served but
 * that have not run yet (see above). */
static inline int coro__sync_park_counted(size_t *inside,
                                          struct coro__waitq *q,
                                          struct coro__wait *w, void *obj,
                                          void (*cancel)(struct coro__wait *w))
{
    ++*inside;
    int rc = coro__sync_park(q, w, obj, cancel);
    --*inside;
    return rc;
}

/* Check at compile time that the real struct priv fits in the public
 * storage type pub, in size and alignment. */
#define CORO__SYNC_CHECK(pub, priv)                                            \
    _Static_assert(sizeof(pub) >= sizeof(priv), #priv " fits " #pub);          \
    _Static_assert(_Alignof(pub) >= _Alignof(priv), #priv " aligns in " #pub)

#endif /* CORO_SYNC_INTERNAL_H */
