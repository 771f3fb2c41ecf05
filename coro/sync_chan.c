/*
 * Bounded channel of pointers: a ring buffer plus senders and receivers
 * waiting in arrival order.
 *
 * Hand-off works by reservation, so that the buffer never has to hold
 * more than its capacity: a waiting receiver is handed the claim to one
 * item in the buffer (the item stays there; "claimed" counts such items),
 * a waiting sender the claim to one free slot ("reserved").  Newcomers may
 * only use unclaimed items and unreserved slots, so they never barge past
 * a waiter that was served.  A waiter interrupted after being served
 * gives its claim up, and the claim goes to the next waiter
 * (sync_internal.h).
 *
 * Invariant, restored by chan_grant() after every change: no wakeable
 * receiver waits while an unclaimed item exists, and no wakeable sender
 * waits while an unreserved slot is free.
 *
 * A served waiter is off its queue but has not run yet: when it does, it
 * still uses the channel (to put its item in, to take the claimed one,
 * or, if an interrupt came first, to pass its claim on).  So the queues
 * cannot tell destroy whether the channel is still in use; "inside"
 * counts every call that waited until it has returned, and destroy fails
 * while it is not 0.
 *
 * The zero state (cap 0, no buffer) is "not initialised", and destroy
 * returns the channel to it.  Send, receive and close fail on it with
 * EINVAL: there is no static initializer, so a zero-filled channel is a
 * missing init, and waiting on it would be waiting forever.
 */
#include "sync_internal.h"

#include <assert.h>

struct chan {
    void **buf;               /* ring of cap items, owned; NULL before init */
    size_t cap;               /* slots, >= 1 once initialized */
    size_t head;              /* index of the oldest item */
    size_t len;               /* items in the ring */
    size_t claimed;           /* items promised to woken receivers, <= len */
    size_t reserved;          /* slots promised to woken senders,
                                 len + reserved <= cap */
    bool closed;              /* coro_chan_close() was called */
    struct coro__waitq sendq; /* coro_chan_send() calls, arrival order */
    struct coro__waitq recvq; /* coro_chan_recv() calls, arrival order */
    size_t inside;            /* send/recv calls that waited and have not
                                 returned yet: queued, or served (or woken
                                 by a timer or an interrupt) but not run */
};
CORO__SYNC_CHECK(coro_chan_t, struct chan);

/* The value a waiter is woken with: served (holding a claim) or not. */
enum { CHAN_CLOSED = 0, CHAN_SERVED = 1 };

static struct chan *chan_of(coro_chan_t *ch)
{
    return (struct chan *)(void *)ch;
}

/* The channel of ch if it is initialised, else NULL with errno EINVAL
 * (ch NULL, zero-filled, or destroyed). */
static struct chan *chan_check(coro_chan_t *ch)
{
    struct chan *c = ch != NULL ? chan_of(ch) : NULL;
    if (c == NULL || c->cap == 0) {
        errno = EINVAL;
        return NULL;
    }
    return c;
}

/* Serve waiters while the buffer allows (see the invariant above). */
static void chan_grant(struct chan *c)
{
    struct coro__wait *w;
    while (c->len > c->claimed && (w = coro__sync_first(&c->recvq))) {
        c->claimed++;
        coro__sync_hand(&c->recvq, w, CHAN_SERVED);
    }
    while (!c->closed && c->len + c->reserved < c->cap &&
           (w = coro__sync_first(&c->sendq))) {
        c->reserved++;
        coro__sync_hand(&c->sendq, w, CHAN_SERVED);
    }
}

static void chan_put(struct chan *c, void *item)
{
    c->buf[(c->head + c->len) % c->cap] = item;
    c->len++;
}

static void *chan_get(struct chan *c)
{
    void *item = c->buf[c->head];
    c->head = (c->head + 1) % c->cap;
    c->len--;
    return item;
}

static void chan_send_cancel(struct coro__wait *w)
{
    struct chan *c = w->obj;
    if (w->queued)
        coro__waitq_remove(&c->sendq, w);
    else if (w->value == CHAN_SERVED) {
        assert(c->reserved > 0);
        c->reserved--; /* give the slot up: the next sender gets it */
        chan_grant(c);
    }
}

static void chan_recv_cancel(struct coro__wait *w)
{
    struct chan *c = w->obj;
    if (w->queued)
        coro__waitq_remove(&c->recvq, w);
    else if (w->value == CHAN_SERVED) {
        assert(c->claimed > 0);
        c->claimed--; /* give the item up: the next receiver gets it */
        chan_grant(c);
    }
}

int coro_chan_init(coro_chan_t *ch, size_t capacity)
{
    if (ch == NULL || capacity == 0) {
        errno = EINVAL;
        return -1;
    }
    void **buf = coro__sys_calloc(capacity, sizeof *buf);
    if (buf == NULL)
        return -1;
    /* *ch is overwritten unread: before init it may hold garbage, which
     * no check could tell from a live channel.  So init on an initialised
     * channel leaks its buffer (documented: destroy first). */
    *chan_of(ch) = (struct chan){.buf = buf, .cap = capacity};
    return 0;
}

int coro_chan_destroy(coro_chan_t *ch)
{
    if (ch == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct chan *c = chan_of(ch);
    if (c->inside != 0) {
        errno = EBUSY;
        return -1;
    }
    /* Every queued waiter is counted in inside. */
    assert(c->sendq.head == NULL && c->recvq.head == NULL);
    /* A channel not initialised has no buffer: destroying it again, or a
     * zero-filled one, frees nothing and succeeds, as free(NULL) does. */
    coro__sys_free(c->buf);
    *c = (struct chan){0};
    return 0;
}

/* Send without waiting if possible: 0, 1 when the caller must wait, or
 * -1 with errno EPIPE. */
static int chan_send_now(struct chan *c, void *item)
{
    if (c->closed) {
        errno = EPIPE;
        return -1;
    }
    if (c->len + c->reserved >= c->cap)
        return 1;
    chan_put(c, item);
    chan_grant(c);
    return 0;
}

int coro_chan_send_at(coro_chan_t *ch, void *item, const coro_site_t *site)
{
    struct chan *c = chan_check(ch);
    if (c == NULL)
        return -1;
    CORO__WAIT(w, "chan send", site);
    if (coro__wait_begin(&w) != 0)
        return -1;
    int rc = chan_send_now(c, item);
    if (rc <= 0)
        return rc;
    if (coro__sync_park_counted(&c->inside, &c->sendq, &w, c,
                                chan_send_cancel) != 0)
        return -1;
    if (w.value == CHAN_SERVED) {
        c->reserved--;
        if (!c->closed) {
            chan_put(c, item);
            chan_grant(c);
            return 0;
        }
    }
    errno = EPIPE; /* closed before the item went in */
    return -1;
}

int(coro_chan_send)(coro_chan_t *ch, void *item)
{
    return coro_chan_send_at(ch, item, NULL);
}

/* Receive without waiting if possible: 0, 1 when the caller must wait,
 * or -1 with errno EPIPE. */
static int chan_recv_now(struct chan *c, void **item)
{
    if (c->len > c->claimed) {
        void *it = chan_get(c);
        if (item != NULL)
            *item = it;
        chan_grant(c);
        return 0;
    }
    if (c->closed) {
        errno = EPIPE;
        return -1;
    }
    return 1;
}

int coro_chan_recv_at(coro_chan_t *ch, void **item, const coro_site_t *site)
{
    struct chan *c = chan_check(ch);
    if (c == NULL)
        return -1;
    CORO__WAIT(w, "chan recv", site);
    if (coro__wait_begin(&w) != 0)
        return -1;
    int rc = chan_recv_now(c, item);
    if (rc <= 0)
        return rc;
    if (coro__sync_park_counted(&c->inside, &c->recvq, &w, c,
                                chan_recv_cancel) != 0)
        return -1;
    if (w.value == CHAN_SERVED)
        c->claimed--; /* a claim is on an item, not a given one */
    rc = chan_recv_now(c, item);
    assert(rc <= 0);
    return rc;
}

int(coro_chan_recv)(coro_chan_t *ch, void **item)
{
    return coro_chan_recv_at(ch, item, NULL);
}

int coro_chan_try_send(coro_chan_t *ch, void *item)
{
    struct chan *c = chan_check(ch);
    if (c == NULL)
        return -1;
    int rc = chan_send_now(c, item);
    if (rc > 0) {
        errno = EBUSY;
        return -1;
    }
    return rc;
}

int coro_chan_try_recv(coro_chan_t *ch, void **item)
{
    struct chan *c = chan_check(ch);
    if (c == NULL)
        return -1;
    int rc = chan_recv_now(c, item);
    if (rc > 0) {
        errno = EBUSY;
        return -1;
    }
    return rc;
}

int coro_chan_close(coro_chan_t *ch)
{
    struct chan *c = chan_check(ch);
    if (c == NULL)
        return -1;
    if (c->closed) {
        errno = EALREADY;
        return -1;
    }
    c->closed = true;
    /* Nothing more will come: every waiter learns it now.  Receivers
     * already served keep their claims; the rest find no item and fail. */
    struct coro__wait *w;
    while ((w = coro__sync_first(&c->sendq)) != NULL)
        coro__sync_hand(&c->sendq, w, CHAN_CLOSED);
    while ((w = coro__sync_first(&c->recvq)) != NULL)
        coro__sync_hand(&c->recvq, w, CHAN_CLOSED);
    return 0;
}

size_t coro_chan_len(const coro_chan_t *ch)
{
    return ch != NULL ? ((const struct chan *)(const void *)ch)->len : 0;
}
