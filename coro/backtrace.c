/*
 * Stacks and symbols: the return addresses on a coroutine's stack, from
 * normal code (a suspended or the running coroutine) or from a signal
 * handler that interrupted the running one, and their names.
 *
 * Every walk follows frame pointers and stays inside the coroutine's own
 * stack: each frame record is checked before it is read and frames must go
 * up the stack, so a broken chain (code built without frame pointers, a
 * frame being set up) ends the walk instead of faulting.
 */
#include "coro_internal.h"
#include "context_internal.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

/* Under ASan the reads must not be checked: a stale frame pointer may
 * point into a redzone. */
#if CORO__ASAN
__attribute__((no_sanitize_address))
#endif
int coro__walk(uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi,
               uintptr_t *pcs, int max)
{
    if (max <= 0)
        return 0;
    int n = 0;
    pcs[n++] = pc;
    while (n < max) {
        if (fp < lo || fp > hi - 2 * sizeof(uintptr_t) ||
            fp % sizeof(uintptr_t) != 0)
            break;
        const uintptr_t *frame = (const uintptr_t *)fp;
        uintptr_t next = frame[0], ret = frame[1];
        if (ret == 0)
            break; /* the outermost frame (the context trampoline) */
        pcs[n++] = ret;
        if (next <= fp)
            break;
        fp = next;
    }
    return n;
}

/* Not inlined: the running coroutine's walk starts at our own frame. */
__attribute__((noinline)) int coro_backtrace(const coro_t *c, void **pcs,
                                             int max)
{
    struct coro *co = coro__check(c);
    if (co == NULL)
        return -1;
    if (max < 0 || (pcs == NULL && max > 0)) {
        errno = EINVAL;
        return -1;
    }
    if (co->state == CORO_DEAD) {
        errno = ESRCH;
        return -1;
    }
    if (co->state == CORO_NEW || co->switches == 0)
        return 0; /* nothing on its stack yet */
    struct sched *s = coro__tls_sched;
    if (s == NULL || coro_by_id(co->id) != c) {
        errno = EINVAL; /* another thread's: its stack moves under us */
        return -1;
    }
    if (co == s->current) {
        /* From our frame record: the caller's return address and frame. */
        const uintptr_t *fp = __builtin_frame_address(0);
        return coro__walk(fp[1], fp[0], (uintptr_t)co->stack.lo,
                          (uintptr_t)co->stack.hi, (uintptr_t *)pcs, max);
    }
    uintptr_t pc, fp;
    if (!coro__ctx_frame(&co->ctx, &pc, &fp))
        return 0;
    return coro__walk(pc, fp, (uintptr_t)co->stack.lo,
                      (uintptr_t)co->stack.hi, (uintptr_t *)pcs, max);
}

int coro_backtrace_signal(const void *uctx, coro_t **cop, void **pcs,
                          int max)
{
    /* Async-signal-safe: thread-local and atomic reads only. */
    if (cop != NULL)
        *cop = NULL;
    struct sched *s = coro__tls_sched;
    if (uctx == NULL || max <= 0 || pcs == NULL || s == NULL)
        return 0;
    const struct coro *co = s->current;
    if (co == NULL ||
        atomic_load_explicit(&s->lat.switching, memory_order_relaxed))
        return 0;
    uintptr_t pc, fp;
    if (!coro__sys_uctx_frame(uctx, &pc, &fp))
        return 0;
    if (cop != NULL)
        *cop = (coro_t *)co;
    return coro__walk(pc, fp, (uintptr_t)co->stack.lo,
                      (uintptr_t)co->stack.hi, (uintptr_t *)pcs, max);
}

int coro_symbolize(const void *pc, bool is_return, char *buf, size_t len)
{
    if (buf == NULL && len > 0) {
        errno = EINVAL;
        return -1;
    }
    struct coro__sym sym;
    /* A return address may be the first byte after its function (a
     * noreturn call at the end): look up the call instruction. */
    uintptr_t at = (uintptr_t)pc - (is_return && pc != NULL ? 1 : 0);
    coro__sys_symbolize((const void *)at, &sym);
    uintptr_t adj = (uintptr_t)pc - at;
    int n;
    if (sym.name != NULL && sym.module != NULL)
        n = snprintf(buf, len, "%s+0x%zx (%s)", sym.name,
                     (size_t)(sym.name_off + adj), sym.module);
    else if (sym.name != NULL)
        n = snprintf(buf, len, "%s+0x%zx", sym.name,
                     (size_t)(sym.name_off + adj));
    else if (sym.module != NULL)
        n = snprintf(buf, len, "%s+0x%zx", sym.module,
                     (size_t)(sym.module_off + adj));
    else
        n = snprintf(buf, len, "%p", pc);
    return n;
}
