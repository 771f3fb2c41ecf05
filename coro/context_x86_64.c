/*
 * The C half of the x86-64 backend: the parts that need no assembly.
 */
#include "context_internal.h"

void coro__ctx_init_self(struct coro__ctx *ctx, void *storage)
{
    /* The asm backend saves everything on the stack being left. */
    (void)storage;
    ctx->p = NULL;
}

bool coro__ctx_saves_sigmask(void)
{
    return false; /* the mask is the thread's, never switched */
}

void coro__ctx_set_sigmask(struct coro__ctx *ctx, const void *mask)
{
    (void)ctx;
    (void)mask;
}

const char *coro__ctx_name(void)
{
    return "asm-x86_64";
}
