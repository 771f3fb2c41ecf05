/*
 * Unbounded FIFO queue of pointers (Shrapnel's fifo).
 *
 * Every push allocates its node first, even when a popper waits and the
 * item goes straight to it: the waiter is handed the node, so if an
 * interrupt then replaces its wake-up, cancel() can pass the node to the
 * next popper or put it back at the head without allocating, which could
 * fail and lose the item.  The popper frees the node.
 *
 * A popper handed a node is off the wait queue but has not run yet: when
 * it does it still uses the fifo (pop_all takes more items; an interrupt
 * makes it pass the node on).  So the queue cannot tell destroy whether
 * the fifo is in use; "inside" counts every pop that waited until it has
 * returned, and destroy fails while it is not 0.  The count fits in the
 * public struct because the list is circular and keeps only its tail.
 */
#include "sync_internal.h"

#include <assert.h>

/* One queued item. */
struct fifo_node {
    struct fifo_node *next; /* the next newer node; the tail's is the
                               oldest, closing the ring */
    void *item;             /* borrowed from the pusher */
};

struct fifo {
    struct fifo_node *tail;     /* newest item, NULL if none; the list is
                                   circular: tail->next is the oldest */
    size_t len;                 /* nodes in the list */
    struct coro__waitq waiters; /* poppers, arrival order; never a
                                   wakeable one while len > 0 */
    size_t inside;              /* pops that waited and have not returned
                                   yet: queued, or handed a node (or woken
                                   by a timer or an interrupt) but not run */
};
CORO__SYNC_CHECK(coro_fifo_t, struct fifo);

static struct fifo *fifo_of(coro_fifo_t *f)
{
    return (struct fifo *)(void *)f;
}

static void fifo_link_front(struct fifo *q, struct fifo_node *n)
{
    if (q->tail != NULL) {
        n->next = q->tail->next; /* after the tail: the new oldest */
        q->tail->next = n;
    } else {
        n->next = n; /* alone: its own head and tail */
        q->tail = n;
    }
    q->len++;
}

static void fifo_link_back(struct fifo *q, struct fifo_node *n)
{
    fifo_link_front(q, n);
    q->tail = n; /* the same place in the ring, now the newest */
}

/* Unlink the oldest node (the fifo must not be empty). */
static struct fifo_node *fifo_unlink_front(struct fifo *q)
{
    struct fifo_node *n = q->tail->next;
    if (n == q->tail)
        q->tail = NULL;
    else
        q->tail->next = n->next;
    q->len--;
    return n;
}

/* Give n to the first wakeable popper; false if there is none. */
static bool fifo_hand(struct fifo *q, struct fifo_node *n)
{
    struct coro__wait *w = coro__sync_first(&q->waiters);
    if (w == NULL)
        return false;
    coro__sync_hand(&q->waiters, w, (intptr_t)n);
    return true;
}

static void fifo_cancel(struct coro__wait *w)
{
    struct fifo *q = w->obj;
    if (w->queued) {
        coro__waitq_remove(&q->waiters, w);
        return;
    }
    /* Handed the oldest item: it stays the oldest. */
    struct fifo_node *n = (struct fifo_node *)w->value;
    if (!fifo_hand(q, n))
        fifo_link_front(q, n);
}

int coro_fifo_init(coro_fifo_t *f)
{
    if (f == NULL) {
        errno = EINVAL;
        return -1;
    }
    /* *f is overwritten unread: before init it may hold garbage, which no
     * check could tell from a live fifo.  So init on a fifo holding items
     * leaks their nodes (documented: destroy first). */
    *fifo_of(f) = (struct fifo){0};
    return 0;
}

int coro_fifo_destroy(coro_fifo_t *f)
{
    if (f == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct fifo *q = fifo_of(f);
    if (q->inside != 0) {
        errno = EBUSY;
        return -1;
    }
    /* Every queued popper is counted in inside. */
    assert(q->waiters.head == NULL);
    while (q->tail != NULL)
        coro__sys_free(fifo_unlink_front(q));
    return 0;
}

static int fifo_push(coro_fifo_t *f, void *item, bool front)
{
    if (f == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct fifo *q = fifo_of(f);
    struct fifo_node *n = coro__sys_malloc(sizeof *n);
    if (n == NULL)
        return -1;
    n->item = item;
    if (fifo_hand(q, n))
        return 0;
    if (front)
        fifo_link_front(q, n);
    else
        fifo_link_back(q, n);
    return 0;
}

int coro_fifo_push(coro_fifo_t *f, void *item)
{
    return fifo_push(f, item, false);
}

int coro_fifo_push_front(coro_fifo_t *f, void *item)
{
    return fifo_push(f, item, true);
}

/* Take the item of n (if out is not NULL) and free n. */
static void fifo_take(struct fifo_node *n, void **out)
{
    if (out != NULL)
        *out = n->item;
    coro__sys_free(n);
}

/* Wait until an item is handed to the caller or one is queued; the
 * caller's first item goes to *out.  0, or -1 with errno. */
static int fifo_wait(struct fifo *q, void **out, struct coro__wait *w)
{
    if (coro__wait_begin(w) != 0)
        return -1;
    if (q->len > 0) {
        fifo_take(fifo_unlink_front(q), out);
        return 0;
    }
    if (coro__sync_park_counted(&q->inside, &q->waiters, w, q,
                                fifo_cancel) != 0)
        return -1;
    fifo_take((struct fifo_node *)w->value, out);
    return 0;
}

int coro_fifo_pop_at(coro_fifo_t *f, void **item, const coro_site_t *site)
{
    if (f == NULL) {
        errno = EINVAL;
        return -1;
    }
    CORO__WAIT(w, "fifo", site);
    return fifo_wait(fifo_of(f), item, &w);
}

int(coro_fifo_pop)(coro_fifo_t *f, void **item)
{
    return coro_fifo_pop_at(f, item, NULL);
}

int coro_fifo_pop_all_at(coro_fifo_t *f, void **items, int max,
                         const coro_site_t *site)
{
    if (f == NULL || items == NULL || max <= 0) {
        errno = EINVAL;
        return -1;
    }
    struct fifo *q = fifo_of(f);
    CORO__WAIT(w, "fifo", site);
    if (fifo_wait(q, &items[0], &w) != 0)
        return -1;
    int n = 1;
    while (n < max && q->len > 0)
        fifo_take(fifo_unlink_front(q), &items[n++]);
    return n;
}

int(coro_fifo_pop_all)(coro_fifo_t *f, void **items, int max)
{
    return coro_fifo_pop_all_at(f, items, max, NULL);
}

int coro_fifo_try_pop(coro_fifo_t *f, void **item)
{
    if (f == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct fifo *q = fifo_of(f);
    if (q->len == 0) {
        errno = EBUSY;
        return -1;
    }
    fifo_take(fifo_unlink_front(q), item);
    return 0;
}

size_t coro_fifo_len(const coro_fifo_t *f)
{
    return f != NULL ? ((const struct fifo *)(const void *)f)->len : 0;
}
