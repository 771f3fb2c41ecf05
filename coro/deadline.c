/*
 * Sleeping, with_timeout, grace periods.
 *
 * Deadline frames live on the coroutine's stack and link outward.  The
 * nearest deadline applies to every wait; a grace frame is a shield: the
 * frames outside it are ignored until it ends.  When a wait fails on a
 * deadline, each frame learns whether its own deadline passed (expired) or
 * only one outside it did (saw_outer), which is how an inner with_timeout
 * knows not to report an outer deadline as its own.
 */
#include "coro_internal.h"

#include <math.h>

int64_t coro__deadline_walk(const struct coro__deadline *d)
{
    int64_t min = CORO__NEVER;
    for (; d != NULL; d = d->outer) {
        if (d->deadline < min)
            min = d->deadline;
        if (d->shield)
            break;
    }
    return min;
}

void coro__deadline_hit(struct coro *co, int64_t now)
{
    for (struct coro__deadline *d = co->deadlines; d; d = d->outer) {
        if (d->deadline <= now) {
            d->expired = true;
        } else {
            for (struct coro__deadline *o = d; !o->shield && o->outer;) {
                o = o->outer;
                if (o->deadline <= now) {
                    d->saw_outer = true;
                    break;
                }
            }
        }
        if (d->shield)
            break;
    }
}

/* now + ticks without overflow. */
static int64_t add_sat(int64_t now, int64_t ticks)
{
    if (ticks > 0 && now > CORO__NEVER - ticks)
        return CORO__NEVER;
    return now + ticks;
}

int coro_sleep_until_at(int64_t deadline, const coro_site_t *site)
{
    CORO__WAIT(w, "sleep", site);
    w.deadline = deadline;
    w.deadline_err = 0; /* reaching its own deadline is success */
    if (coro__wait_begin(&w) != 0)
        return -1;
    /* A deadline already past parks until the next loop pass: a yield
     * that also lets timers and I/O run. */
    return coro__wait_park(&w);
}

int coro_sleep_at(double sec, const coro_site_t *site)
{
    if (isnan(sec)) {
        errno = EINVAL;
        return -1;
    }
    int64_t ticks = sec > 0 ? tsc_sec_to_ticks(sec) : 0;
    return coro_sleep_until_at(add_sat(tsc__read(), ticks), site);
}

int(coro_sleep)(double sec)
{
    return coro_sleep_at(sec, NULL);
}

int(coro_sleep_until)(int64_t deadline)
{
    return coro_sleep_until_at(deadline, NULL);
}

/* Run fn inside frame d; the result rules of coro_with_timeout(). */
static int run_framed(struct coro *co, struct coro__deadline *d,
                      int (*fn)(void *), void *arg)
{
    co->deadlines = d;
    int rc = fn(arg);
    co->deadlines = d->outer;
    if (d->expired) {
        errno = ETIMEDOUT;
        return -1;
    }
    if (d->saw_outer) {
        errno = ECANCELED;
        return -1;
    }
    return rc;
}

int coro_with_deadline(int64_t deadline, int (*fn)(void *), void *arg)
{
    if (fn == NULL) {
        errno = EINVAL;
        return -1;
    }
    struct coro *co = coro__self();
    if (co == NULL)
        return -1;
    struct coro__deadline d = {.deadline = deadline, .outer = co->deadlines};
    return run_framed(co, &d, fn, arg);
}

int coro_with_timeout(double timeout_sec, int (*fn)(void *), void *arg)
{
    if (isnan(timeout_sec)) {
        errno = EINVAL;
        return -1;
    }
    int64_t ticks = timeout_sec > 0 ? tsc_sec_to_ticks(timeout_sec) : 0;
    return coro_with_deadline(add_sat(tsc__read(), ticks), fn, arg);
}

int coro_with_grace(double grace_sec, int (*fn)(void *), void *arg)
{
    if (fn == NULL || isnan(grace_sec)) {
        errno = EINVAL;
        return -1;
    }
    struct coro *co = coro__self();
    if (co == NULL)
        return -1;
    int64_t ticks = grace_sec > 0 ? tsc_sec_to_ticks(grace_sec) : 0;
    struct coro__deadline d = {.deadline = add_sat(tsc__read(), ticks),
                               .outer = co->deadlines,
                               .shield = true};
    int set_aside = co->pending_err; /* delivered again afterwards */
    co->pending_err = 0;
    int rc = run_framed(co, &d, fn, arg);
    if (co->pending_err == 0)
        co->pending_err = set_aside;
    return rc;
}

double coro_time_left(void)
{
    struct sched *s = coro__tls_sched;
    if (s == NULL || s->current == NULL)
        return INFINITY;
    int64_t min = coro__deadline_min(s->current);
    if (min == CORO__NEVER)
        return INFINITY;
    /* A deadline given as absolute ticks may be anywhere down to
     * INT64_MIN: saturate rather than overflow. */
    int64_t left;
    if (__builtin_sub_overflow(min, tsc__read(), &left))
        left = INT64_MIN;
    return tsc_ticks_to_sec(left);
}
