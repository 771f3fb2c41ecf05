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

bool coro__ctx_frame(const struct coro__ctx *ctx, uintptr_t *pc,
                     uintptr_t *fp)
{
    /* The frame a switch or start pushed (context_x86_64.S): rbp at 48,
     * the return address at 56.  No context yet: NULL; rbp 0: code
     * without a frame chain. */
    const uintptr_t *sp = ctx->p;
    if (sp == NULL || sp[6] == 0)
        return false;
    *fp = sp[6];
    *pc = sp[7];
    return true;
}
