/*
 * Selfishness settings (Shrapnel's set_selfishness and
 * set_max_selfish_acts).  The counting itself is coro__selfish_act() and
 * coro__selfish_reset() in coro_internal.h: inline, because the socket
 * layer calls them on every operation.
 *
 * Unlike Shrapnel, an operation that blocks on its own refills the count
 * (coro__selfish_reset()): it has given up the CPU already, and without
 * the refill a connection that alternates between blocking and not would
 * be forced to yield at moments unrelated to how long it held the CPU.
 */
#include "coro_internal.h"

static bool selfish_valid(int n)
{
    return n >= 1 && n <= CORO__SELFISH_MAX;
}

int coro_set_selfishness(int n)
{
    if (!selfish_valid(n)) {
        errno = EINVAL;
        return -1;
    }
    struct sched *s = coro__sched();
    if (s == NULL)
        return -1;
    int old = s->default_selfish;
    s->default_selfish = n;
    return old;
}

int coro_selfishness(void)
{
    struct sched *s = coro__sched_peek();
    return s != NULL ? s->default_selfish : CORO__SELFISH_DEFAULT;
}

int coro_set_max_selfish_acts(coro_t *c, int n)
{
    struct coro *co = coro__check(c);
    if (co == NULL)
        return -1;
    if (co->state == CORO_DEAD) {
        errno = ESRCH;
        return -1;
    }
    if (!selfish_valid(n)) {
        errno = EINVAL;
        return -1;
    }
    int old = co->max_selfish_acts;
    co->max_selfish_acts = co->selfish_acts = n;
    return old;
}
