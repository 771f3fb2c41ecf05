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

#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Code ranges, for the signal walk's recovery                         */

/*
 * The executable segments of the modules loaded when the first scheduler
 * was made (modules loaded later are not known: their addresses are just
 * not recovered).  Written once before any reader can run, then only
 * read, from signal handlers too.
 */
#define TEXT_MAX 64
static struct {
    uintptr_t lo, hi;
} text[TEXT_MAX];
static int ntext;
static pthread_once_t text_once = PTHREAD_ONCE_INIT;

static int text_add(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size, (void)arg;
    for (int i = 0; i < info->dlpi_phnum && ntext < TEXT_MAX; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            text[ntext].lo = info->dlpi_addr + ph->p_vaddr;
            text[ntext].hi = text[ntext].lo + ph->p_memsz;
            ntext++;
        }
    }
    return 0;
}

static void text_load(void)
{
    dl_iterate_phdr(text_add, NULL);
}

void coro__text_init(void)
{
    pthread_once(&text_once, text_load);
}

/* Whether [a, a + n) lies in one known code segment. */
static bool in_text(uintptr_t a, size_t n)
{
    for (int i = 0; i < ntext; i++)
        if (a >= text[i].lo && a + n <= text[i].hi && a + n > a)
            return true;
    return false;
}

/*
 * Whether r looks like a return address: in code, right after a call
 * (x86-64: e8 rel32, or ff /2 with a 2, 3, 6 or 7 byte encoding).
 */
#if CORO__ASAN
__attribute__((no_sanitize_address))
#endif
static bool is_return_address(uintptr_t r)
{
#if defined(__x86_64__)
    if (!in_text(r - 7, 7))
        return false;
    const unsigned char *p = (const unsigned char *)r;
    if (p[-5] == 0xe8)
        return true;
    static const int back[] = {2, 3, 6, 7};
    for (size_t i = 0; i < sizeof back / sizeof back[0]; i++) {
        const unsigned char *q = p - back[i];
        if ((q[0] == 0xff && (q[1] & 0x38) == 0x10) ||
            (back[i] >= 3 && q[0] >= 0x40 && q[0] <= 0x4f && q[1] == 0xff &&
             (q[2] & 0x38) == 0x10))
            return true;
    }
    return false;
#else
    (void)r;
    return false;
#endif
}

/*
 * The interrupted code broke the frame-pointer chain at once (glibc's
 * system call wrappers use rbp as a scratch register): look above the
 * stack pointer for a frame record, a saved frame pointer that points up
 * the stack followed by a return address just after a call, and go on
 * from there.  Returns the frame pointer to continue with, or 0.
 */
#if CORO__ASAN
__attribute__((no_sanitize_address))
#endif
static uintptr_t recover(uintptr_t sp, uintptr_t lo, uintptr_t hi,
                         uintptr_t *ret)
{
    if (sp < lo || sp >= hi || ntext == 0)
        return 0;
    uintptr_t a = (sp + 7) & ~(uintptr_t)7;
    uintptr_t end = sp + 512 < hi - 16 ? sp + 512 : hi - 16;
    for (; a <= end; a += 8) {
        const uintptr_t *f = (const uintptr_t *)a;
        uintptr_t w = f[0];
        if (w <= a || w > hi - 16 || w % 8 != 0)
            continue;
        const uintptr_t *g = (const uintptr_t *)w;
        /* The next record must hold up too: the end of the chain, or a
         * frame further up with a return address. */
        bool next_ok = (g[0] == 0 && g[1] == 0) ||
                       (g[0] > w && g[0] <= hi - 16 && g[0] % 8 == 0 &&
                        is_return_address(g[1]));
        if (next_ok && is_return_address(f[1])) {
            *ret = f[1];
            return w;
        }
    }
    return 0;
}

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
            break; /* no return address: the end of the chain */
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
    if (s == NULL || !coro__stack_owned(s, co)) {
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

int coro__sample(const struct coro *co, const void *uctx, uintptr_t *pcs,
                 int max)
{
    uintptr_t pc, fp, sp;
    if (!coro__sys_uctx_regs(uctx, &pc, &fp, &sp))
        return 0;
    uintptr_t lo = (uintptr_t)co->stack.lo, hi = (uintptr_t)co->stack.hi;
    int n = coro__walk(pc, fp, lo, hi, pcs, max);
    uintptr_t ret, next;
    if (n == 1 && max > 1 && (next = recover(sp, lo, hi, &ret)) != 0)
        n = 1 + coro__walk(ret, next, lo, hi, pcs + 1, max - 1);
    return n;
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
    int n = coro__sample(co, uctx, (uintptr_t *)pcs, max);
    if (n > 0 && cop != NULL)
        *cop = (coro_t *)co;
    return n;
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
