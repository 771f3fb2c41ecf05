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

const char *coro__ctx_name(void)
{
    return "asm-x86_64";
}
