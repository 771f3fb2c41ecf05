/*
 * Timers: an intrusive binary min-heap ordered by (deadline, seq).
 *
 * The heap is a complete binary tree linked through the nodes themselves
 * (the layout libuv uses): the path from the root to slot n is read off
 * the bits of n, so insert and remove are O(log n) and allocate nothing.
 * Equal deadlines fire in the order they were armed (seq).
 */
#include "coro_internal.h"

#include <assert.h>

static bool less_than(const struct coro__heap_node *a,
                      const struct coro__heap_node *b)
{
    const struct coro__timer *ta = (const struct coro__timer *)a;
    const struct coro__timer *tb = (const struct coro__timer *)b;
    if (ta->deadline != tb->deadline)
        return ta->deadline < tb->deadline;
    return ta->seq < tb->seq;
}

/* Swap a parent with one of its children, fixing every link around. */
static void node_swap(struct coro__timer_heap *h, struct coro__heap_node *parent,
                      struct coro__heap_node *child)
{
    struct coro__heap_node t = *parent, *sibling;
    *parent = *child;
    *child = t;
    parent->parent = child;
    if (child->left == child) {
        child->left = parent;
        sibling = child->right;
    } else {
        child->right = parent;
        sibling = child->left;
    }
    if (sibling != NULL)
        sibling->parent = child;
    if (parent->left != NULL)
        parent->left->parent = parent;
    if (parent->right != NULL)
        parent->right->parent = parent;
    if (child->parent == NULL)
        h->root = child;
    else if (child->parent->left == parent)
        child->parent->left = child;
    else
        child->parent->right = child;
}

/* The link that holds slot n (1-based, breadth-first) of the tree. */
static struct coro__heap_node **slot(struct coro__timer_heap *h, size_t n,
                                     struct coro__heap_node ***parent_link)
{
    uint64_t path = 0;
    unsigned k = 0;
    for (; n >= 2; k++, n /= 2)
        path = (path << 1) | (n & 1);
    struct coro__heap_node **link = &h->root, **parent = &h->root;
    while (k-- > 0) {
        parent = link;
        link = (path & 1) ? &(*link)->right : &(*link)->left;
        path >>= 1;
    }
    if (parent_link != NULL)
        *parent_link = parent;
    return link;
}

void coro__timer_arm(struct coro__timer_heap *h, struct coro__timer *t,
                     int64_t deadline)
{
    assert(!t->armed);
    struct coro__heap_node *n = &t->node;
    n->left = n->right = n->parent = NULL;
    t->deadline = deadline;
    t->seq = h->next_seq++;
    t->armed = true;
    struct coro__heap_node **parent;
    struct coro__heap_node **link = slot(h, h->count + 1, &parent);
    n->parent = (link == &h->root) ? NULL : *parent;
    *link = n;
    h->count++;
    while (n->parent != NULL && less_than(n, n->parent))
        node_swap(h, n->parent, n);
}

void coro__timer_remove(struct coro__timer_heap *h, struct coro__timer *t)
{
    t->armed = false;
    struct coro__heap_node *node = &t->node;
    /* Unlink the last node and put it where node was. */
    struct coro__heap_node **last = slot(h, h->count, NULL);
    h->count--;
    struct coro__heap_node *child = *last;
    *last = NULL;
    if (child == node) {
        if (child == h->root)
            h->root = NULL;
        return;
    }
    child->left = node->left;
    child->right = node->right;
    child->parent = node->parent;
    if (child->left != NULL)
        child->left->parent = child;
    if (child->right != NULL)
        child->right->parent = child;
    if (node->parent == NULL)
        h->root = child;
    else if (node->parent->left == node)
        node->parent->left = child;
    else
        node->parent->right = child;
    /* The moved node may be too big for its place or too small. */
    for (;;) {
        struct coro__heap_node *smallest = child;
        if (child->left != NULL && less_than(child->left, smallest))
            smallest = child->left;
        if (child->right != NULL && less_than(child->right, smallest))
            smallest = child->right;
        if (smallest == child)
            break;
        node_swap(h, child, smallest);
    }
    while (child->parent != NULL && less_than(child, child->parent))
        node_swap(h, child->parent, child);
}

size_t coro__timer_fire_due(struct coro__timer_heap *h, int64_t now)
{
    size_t fired = 0;
    /* Firing only wakes coroutines (it runs no user code), so the heap
     * cannot change under us except by the removal we make. */
    while (h->root != NULL) {
        struct coro__timer *t = (struct coro__timer *)h->root;
        if (t->deadline > now)
            break;
        coro__timer_disarm(h, t);
        t->fire(t);
        fired++;
    }
    return fired;
}
