/*
 * The one park/wake primitive under every blocking call, and interrupts.
 *
 * A wait is woken by exactly one cause: its object, its timer (the call's
 * own deadline or the nearest with_timeout deadline), or an interrupt.  An
 * interrupt that arrives after the object woke the waiter but before it ran
 * replaces that cause, and the waiter's cancel() hands back whatever the
 * object had given it, so no wake-up is lost.  Deadlines are checked again
 * on every wait, so a stream of wake-ups can never postpone one.
 */
#include "coro_internal.h"

#include <stddef.h>

int coro__wait_begin_check(struct coro__wait *w)
{
    struct coro *co = w->co;
    if (co->pending_err != 0) {
        errno = co->pending_err;
        co->pending_err = 0;
        return -1;
    }
    if (co->deadlines != NULL) {
        int64_t now = coro__now(coro__tls_sched);
        if (coro__deadline_min(co) <= now) {
            coro__deadline_hit(co, now);
            errno = ETIMEDOUT;
            return -1;
        }
    }
    return 0;
}

static void wait_timer_fire(struct coro__timer *t)
{
    struct coro__wait *w =
        (struct coro__wait *)((char *)t - offsetof(struct coro__wait, timer));
    struct coro *co = w->co;
    if (co->state == CORO_WAITING && co->wait == w) {
        w->cause = CORO__WOKEN_BY_TIMER;
        coro__make_runnable(coro__tls_sched, co);
    }
}

int coro__wait_park(struct coro__wait *w)
{
    struct sched *s = coro__tls_sched;
    struct coro *co = w->co;
    int64_t outer = coro__deadline_min(co);
    int64_t at = w->deadline < outer ? w->deadline : outer;
    w->cause = CORO__WOKEN_NOT;
    w->err = 0;
    if (at != CORO__NEVER) {
        w->timer.fire = wait_timer_fire;
        coro__timer_arm(&s->timers, &w->timer, at);
    }
    coro__wait_sleep(s, co, w);
    coro__timer_disarm(&s->timers, &w->timer);
    if (w->cause == CORO__WOKEN_BY_TIMER) {
        /* A with_timeout deadline wins over the call's own when both have
         * come (with_timeout(0, sleep, 0) times out, as in Shrapnel). */
        if (outer <= s->now) {
            coro__deadline_hit(co, s->now);
            w->err = ETIMEDOUT;
        } else {
            w->err = w->deadline_err;
        }
    }
    return coro__wait_end(w);
}

int coro_interrupt(coro_t *c, int err)
{
    struct coro *co = coro__check(c);
    if (co == NULL)
        return -1;
    if (err <= 0) {
        errno = EINVAL;
        return -1;
    }
    if (co->state == CORO_DEAD) {
        errno = ESRCH;
        return -1;
    }
    struct coro__wait *w = co->wait;
    if (co->state == CORO_WAITING) {
        w->cause = CORO__WOKEN_BY_INTERRUPT;
        w->err = err;
        coro__make_runnable(coro__tls_sched, co);
    } else if (co->state == CORO_RUNNABLE && w != NULL) {
        /* Woken but not yet running: the interrupt replaces the cause. */
        w->cause = CORO__WOKEN_BY_INTERRUPT;
        w->err = err;
    } else {
        co->pending_err = err; /* running, new, or not yet started */
    }
    return 0;
}
