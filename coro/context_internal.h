/*
 * The context-switch contract.  Each backend (context_x86_64.S,
 * context_ucontext.c) implements all of it and nothing else; the build
 * links exactly one.
 *
 * A context is the saved state of a suspended thread of control.  The
 * scheduler passes data to a new context through its own state, never
 * through the entry function's arguments (makecontext passes only ints).
 */
#ifndef CORO_CONTEXT_INTERNAL_H
#define CORO_CONTEXT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Saved state.  For the asm backend, the saved stack pointer (registers and
 * the floating-point control words are pushed on the suspended stack).  For
 * the ucontext backend, a pointer to a ucontext_t kept on that stack.
 */
struct coro__ctx {
    void *p;     /* backend-defined; NULL until started or initialised */
    uint32_t fp[2]; /* asm: MXCSR and x87 control word a start begins with */
};

/* Bytes of storage coro__ctx_init_self() needs (a ucontext_t fits). */
#define CORO__CTX_SELF_STORAGE 1024

/*
 * Prepare *ctx for a coro__ctx_start() on the stack [lo, hi): record the
 * caller's floating-point control state (rounding, exception masks), which
 * the new context begins with whoever starts it, as a thread begins with
 * its creator's.  The backend may keep state just below hi.
 */
void coro__ctx_prepare(struct coro__ctx *ctx, void *lo, void *hi);

/*
 * Save the running state into *from, as coro__ctx_switch() does, and start
 * a new context on the stack [lo, hi) by calling entry() there, with the
 * control state *to was prepared with.  hi is the first byte above the
 * stack.  The new context's state goes to *to when it first switches
 * away.  When entry() returns, the new context has ended: its state is
 * dropped and the context entry() returned is resumed (one that has been
 * saved by a switch or a start).  Returns when another context switches
 * back to *from.
 */
void coro__ctx_start(struct coro__ctx *from, struct coro__ctx *to, void *lo,
                     void *hi, struct coro__ctx *(*entry)(void));

/*
 * Prepare *ctx to receive the state of the running thread of control (the
 * event loop's) on its first coro__ctx_switch() away.  storage holds
 * CORO__CTX_SELF_STORAGE bytes, 16-aligned, and outlives the context.
 */
void coro__ctx_init_self(struct coro__ctx *ctx, void *storage);

/*
 * Save the running state into *from and resume *to.  Returns when another
 * context switches back to *from.  Callee-saved registers, the x87 control
 * word and MXCSR are preserved, as the ABI requires of any call.
 */
void coro__ctx_switch(struct coro__ctx *from, struct coro__ctx *to);

/*
 * Whether a context carries its own signal mask (ucontext: swapcontext
 * restores the mask saved with the context), so that a change of the
 * thread's mask must be copied into every saved context with
 * coro__ctx_set_sigmask().  The asm backend leaves the mask alone.
 */
bool coro__ctx_saves_sigmask(void);
/* Make *ctx resume with mask (a sigset_t) when next switched to.  Does
 * nothing where contexts carry no mask. */
void coro__ctx_set_sigmask(struct coro__ctx *ctx, const void *mask);

/*
 * Where a suspended context resumes: the return address into the code
 * that switched away (*pc) and that code's frame pointer (*fp), for
 * walking its stack.  False when the context never ran (its p is NULL),
 * or the backend cannot tell.
 */
bool coro__ctx_frame(const struct coro__ctx *ctx, uintptr_t *pc,
                     uintptr_t *fp);

/*
 * The pc, frame pointer and stack pointer in a ucontext_t: a signal
 * handler's context or one saved by swapcontext.  False where the
 * platform is unknown.  Async-signal-safe.  (sys.c; shared with the
 * ucontext backend.)
 */
bool coro__sys_uctx_regs(const void *uctx, uintptr_t *pc, uintptr_t *fp,
                         uintptr_t *sp);

/* The backend's name: "asm-x86_64" or "ucontext". */
const char *coro__ctx_name(void);

#endif /* CORO_CONTEXT_INTERNAL_H */
