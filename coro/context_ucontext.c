/*
 * Portable context switch on getcontext/makecontext/swapcontext.  Slower
 * than the asm backend (swapcontext saves and restores the signal mask with
 * a system call on every switch) but it runs wherever ucontext exists, and
 * it is the reference the fast backend is tested against.
 */
#include "context_internal.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <ucontext.h>

_Static_assert(sizeof(ucontext_t) <= CORO__CTX_SELF_STORAGE,
               "CORO__CTX_SELF_STORAGE too small for ucontext_t");

/* The entry of the context being started (one thread starts one at a
 * time; makecontext passes only ints). */
static _Thread_local struct coro__ctx *(*start_entry)(void);

static void start_trampoline(void)
{
    struct coro__ctx *next = start_entry();
    /* The new context has ended: drop it and go on with next. */
    setcontext((ucontext_t *)next->p);
    perror("coro: setcontext");
    abort();
}

void coro__ctx_prepare(struct coro__ctx *ctx, void *lo, void *hi)
{
    /* Keep the ucontext_t just below the top of the new stack.  The
     * creator's floating-point state is what getcontext saves now. */
    (void)lo;
    uintptr_t top = ((uintptr_t)hi - sizeof(ucontext_t)) & ~(uintptr_t)63;
    ucontext_t *uc = (ucontext_t *)top;
    if (getcontext(uc) != 0) {
        perror("coro: getcontext");
        abort();
    }
    ctx->p = uc;
}

void coro__ctx_start(struct coro__ctx *from, struct coro__ctx *to, void *lo,
                     void *hi, struct coro__ctx *(*entry)(void))
{
    ucontext_t *uc = to->p; /* made by coro__ctx_prepare */
    uintptr_t top = (uintptr_t)uc;
    (void)hi;
    uc->uc_stack.ss_sp = lo;
    uc->uc_stack.ss_size = top - (uintptr_t)lo;
    uc->uc_link = NULL;
    makecontext(uc, start_trampoline, 0);
    start_entry = entry;
    coro__ctx_switch(from, to);
}

void coro__ctx_init_self(struct coro__ctx *ctx, void *storage)
{
    ctx->p = storage;
}

void coro__ctx_switch(struct coro__ctx *from, struct coro__ctx *to)
{
    if (swapcontext((ucontext_t *)from->p, (ucontext_t *)to->p) != 0) {
        perror("coro: swapcontext");
        abort();
    }
}

bool coro__ctx_saves_sigmask(void)
{
    return true;
}

void coro__ctx_set_sigmask(struct coro__ctx *ctx, const void *mask)
{
    /* The loop's storage before its first switch away holds no context
     * yet; the mask written there is overwritten by that switch. */
    if (ctx->p != NULL)
        ((ucontext_t *)ctx->p)->uc_sigmask = *(const sigset_t *)mask;
}

bool coro__ctx_frame(const struct coro__ctx *ctx, uintptr_t *pc,
                     uintptr_t *fp)
{
    /* Saved by swapcontext in coro__ctx_switch (one that never ran holds
     * what getcontext saw when it was prepared; callers do not walk it). */
    uintptr_t sp;
    return ctx->p != NULL && coro__sys_uctx_regs(ctx->p, pc, fp, &sp);
}

const char *coro__ctx_name(void)
{
    return "ucontext";
}
