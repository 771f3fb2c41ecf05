/*
 * coro_in_parallel: run N functions in their own coroutines, wait for all.
 *
 * Unlike Shrapnel's, it never leaves children behind: when the caller's
 * deadline passes or it is interrupted, the children still running are
 * interrupted with ECANCELED and reaped before it returns.
 */
#include "coro_internal.h"

#include <stdlib.h>

/* Join co, ignoring the caller's deadlines and interrupts: used only after
 * co was interrupted, so it ends soon. */
static void reap(coro_t *co, int *status, int *err)
{
    struct sched *s = coro__tls_sched;
    struct coro *self = s->current;
    struct coro__deadline shield = {.deadline = CORO__NEVER,
                                    .outer = self->deadlines,
                                    .shield = true};
    self->deadlines = &shield;
    int pending = self->pending_err;
    self->pending_err = 0;
    while (coro_join_at(co, status, err, NULL) != 0) {
        if (errno == ESRCH || errno == EINVAL)
            break; /* already reaped: nothing left running */
        pending = errno; /* an interrupt: retry, deliver it afterwards */
    }
    self->deadlines = shield.outer;
    if (self->pending_err == 0) /* a later interrupt replaces an earlier */
        self->pending_err = pending;
}

int coro_in_parallel_at(coro_task_t *tasks, size_t n,
                        const coro_site_t *site)
{
    if (n > 0 && tasks == NULL) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (tasks[i].fn == NULL) {
            errno = EINVAL;
            return -1;
        }
    }
    if (coro__self() == NULL)
        return -1;
    struct sched *s = coro__tls_sched;
    if (n == 0)
        return 0;
    coro_t **kids = coro__sys_calloc(n, sizeof *kids);
    if (kids == NULL)
        return -1;
    coro_opts_t opts = {.name = "in_parallel", .joinable = true};
    for (size_t i = 0; i < n; i++) {
        kids[i] = coro_new(tasks[i].fn, tasks[i].arg, &opts);
        if (kids[i] == NULL) {
            int saved = errno;
            while (i-- > 0)
                coro__discard(s, kids[i]);
            coro__sys_free(kids);
            errno = saved;
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++)
        coro_start(kids[i]);
    int failed = 0, stop_err = 0;
    for (size_t i = 0; i < n; i++) {
        coro_task_t *t = &tasks[i];
        if (stop_err == 0 && coro_join_at(kids[i], &t->status, &t->err,
                                          site) != 0) {
            stop_err = errno;
            for (size_t j = i; j < n; j++)
                coro_interrupt(kids[j], ECANCELED);
        }
        if (stop_err != 0)
            reap(kids[i], &t->status, &t->err);
        failed += t->status < 0;
    }
    coro__sys_free(kids);
    if (stop_err != 0) {
        errno = stop_err;
        return -1;
    }
    return failed;
}

int(coro_in_parallel)(coro_task_t *tasks, size_t n)
{
    return coro_in_parallel_at(tasks, n, NULL);
}
