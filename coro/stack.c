/*
 * Stacks: mmap'd in slabs, each stack with a PROT_NONE guard page below it
 * while the mapping budget allows, and a canary checked at every switch
 * beyond it.
 *
 * Every guard splits a kernel mapping, and Linux caps a process at
 * vm.max_map_count mappings (65,530 by default).  A guarded slab costs two
 * mappings per stack, so we guard at most a quarter of the cap's worth of
 * stacks and leave the rest of the budget to the application.  Stacks past
 * the budget come from unguarded slabs (one mapping per slab), protected by
 * a canary just below their low end, checked when the coroutine switches
 * out.  A million coroutines therefore need about 16k guarded stacks plus a
 * few hundred unguarded slab mappings, well within the default cap.
 *
 * Layout of one stack's region, from high to low addresses:
 *
 *   [canary zone of the region above][record][stack ... grows down]
 *
 * A coroutine's record (struct coro) sits at the top of its region, so a
 * parked coroutine costs the single page its record and its top frames
 * share.  Its canary must lie just below its stack, which is the top of
 * the region below: a page that region's own record keeps resident
 * anyway.  (A canary inside the stack's own low end would make a second
 * page resident for every parked coroutine.)  An unguarded slab starts
 * with one spare page below its first stack, made a guard page (one more
 * mapping per slab, no resident memory); should that mprotect fail, the
 * page holds the first stack's canary instead.
 *
 * Freed stacks go to a per-size cache (hot: pages kept for reuse) up to a
 * cap; past it, a batch of them gives its pages back (cold), sorted and
 * merged so neighbouring stacks cost one madvise.  Slabs are unmapped only
 * by coro_fini(), so a stale coroutine pointer reads a free marker or
 * zeros, never unmapped memory.
 */
#include "coro_internal.h"

#include <signal.h>
#include <stdlib.h>
#if CORO__VALGRIND
#include <valgrind/valgrind.h>
#endif
#include <string.h>
#include <unistd.h>

#define SLAB_BYTES (16u << 20)   /* guarded slab size: few mmaps */
#define SLAB_MAX_STACKS 256u     /* and few guards mprotected at once */
/* Unguarded slabs are larger: few mappings for many stacks. */
#define PLAIN_SLAB_BYTES (256u << 20)
#define PLAIN_SLAB_MAX_STACKS 4096u
#define HOT_MAX 1024u            /* cached stacks per class keep pages */
#define TRIM_BATCH 256u          /* stacks released at once past HOT_MAX */
#define MAX_CLASSES 16           /* distinct stack sizes per scheduler */
#define CANARY_BYTES 64          /* canary just below an unguarded stack */
#define CANARY_WORD 0x5AFEC0DE0DDBA11ULL
#define SWITCH_ROOM 512          /* stack the switch needs below the check */
#define RECORD_BYTES ((sizeof(struct coro) + 63) & ~(size_t)63)
#define COLOUR_BITS 5            /* record offsets: 32 cache lines */
/* The highest colour leaves the top 4 KiB page at least 1 KiB of frames. */
_Static_assert(((1u << COLOUR_BITS) - 1) * 64 + RECORD_BYTES + CANARY_BYTES <=
                   3072,
               "a record and its colour fit the top page with room to spare");

struct coro__slab {
    struct coro__slab *next; /* every slab of the scheduler */
    char *map;               /* the mapping */
    size_t map_len;          /* its length */
    char *base;              /* first stack region (after the spare page) */
    size_t len;              /* bytes of stack regions */
    size_t stride;           /* bytes per stack, guard included */
    uint32_t count;          /* stacks in the slab */
    uint32_t used;           /* stacks handed out at least once */
    bool guarded;            /* each stack has a guard page below it */
    bool lead_guard;         /* unguarded, but the first stack has one */
};

/* A stack whose pages were given back: remembered by address only. */
struct cold {
    char *lo;                 /* lowest usable byte */
    struct coro__slab *slab;  /* the slab it belongs to */
};

struct stack_class {
    size_t size;                  /* mapping per stack, guard excluded */
    struct coro *hot;             /* free, resident; linked by run_next */
    size_t hot_count;             /* entries in hot */
    struct cold *cold;            /* free, pages released */
    size_t cold_count, cold_cap;  /* entries used / allocated */
    struct coro__slab *fresh[2];  /* slab with never-used stacks, by guard */
};

struct coro__stacks {
    struct stack_class cls[MAX_CLASSES]; /* by size */
    size_t ncls;                         /* classes in use */
    struct coro__slab *slabs;            /* all slabs */
    size_t guard_budget;                 /* guarded stacks allowed */
    size_t guarded;                      /* guarded stacks mapped */
    size_t lead_guards;                  /* unguarded slabs' first stacks,
                                            guarded by the spare page */
    size_t in_use;                       /* stacks held by coroutines */
};

static size_t page_size;

size_t coro__page_size(void)
{
    if (page_size == 0)
        page_size = (size_t)sysconf(_SC_PAGESIZE);
    return page_size;
}

/* ------------------------------------------------------------------ */
/* Overflow reports                                                   */

static void report_overflow(const struct coro *co, const char *how,
                            const void *addr)
{
    char mem[256];
    struct coro__buf b = {mem, 0, sizeof mem};
    coro__buf_str(&b, "coro: stack overflow in coroutine ");
    coro__buf_coro(&b, co);
    coro__buf_str(&b, " (stack size ");
    coro__buf_num(&b, (int64_t)co->stack.size);
    coro__buf_str(&b, " bytes): ");
    coro__buf_str(&b, how);
    if (addr != NULL) {
        coro__buf_str(&b, " at ");
        coro__buf_hex(&b, (uintptr_t)addr);
    }
    coro__buf_str(&b, "\n");
    coro__buf_write(&b, 2);
}

void coro__stack_check(const struct coro *co, const void *sp)
{
    const uint64_t *w = (const uint64_t *)(co->stack.lo - CANARY_BYTES);
    const uint64_t *last = w + CANARY_BYTES / 8 - 1;
    /* sp is taken before the last frames of the switch are pushed: keep
     * room for them, so the switch itself never writes below the stack. */
    if (CORO__LIKELY(w[0] == CANARY_WORD && *last == CANARY_WORD &&
                     (const char *)sp >= co->stack.lo + SWITCH_ROOM))
        return;
    report_overflow(co, "canary overwritten, detected at switch-out", NULL);
    abort();
}

static struct sigaction old_segv;
static char segv_installed;

static void segv_handler(int sig, siginfo_t *si, void *uctx)
{
    struct sched *s = coro__tls_sched;
    const struct coro *co = s != NULL ? s->current : NULL;
    const char *a = si->si_addr;
    uintptr_t pc, fp, spv;
    const char *sp = coro__sys_uctx_regs(uctx, &pc, &fp, &spv)
                         ? (const char *)spv
                         : NULL;
    /* Ours if the fault is just below the running coroutine's stack (its
     * guard page, or a frame that jumped it), or if its stack pointer has
     * left the stack (an unguarded stack overflowing into its neighbour's
     * slab space until something unmapped stopped it). */
    if (co != NULL && a < co->stack.lo &&
        (a >= co->stack.lo - 64 * (ptrdiff_t)coro__page_size() ||
         (sp != NULL && sp < co->stack.lo))) {
        report_overflow(co,
                        co->stack.guarded ? "guard page hit"
                                          : "wrote below the stack",
                        a);
        signal(SIGSEGV, SIG_DFL); /* returning re-faults: dies by SIGSEGV */
        return;
    }
    /* Not ours: hand the fault to whoever handled it before us. */
    if (old_segv.sa_flags & SA_SIGINFO) {
        if (old_segv.sa_sigaction != NULL) {
            old_segv.sa_sigaction(sig, si, uctx);
            return;
        }
    } else if (old_segv.sa_handler != SIG_DFL &&
               old_segv.sa_handler != SIG_IGN) {
        old_segv.sa_handler(sig);
        return;
    }
    signal(SIGSEGV, SIG_DFL);
}

/* The handler needs an alternate stack: the faulting one is full. */
static __thread void *altstack;

static void install_segv_handler(void)
{
    if (altstack == NULL) {
        stack_t cur;
        if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
            size_t len = 64 * 1024;
            void *p = coro__sys_mmap_untested(len);
            if (p != NULL) {
                stack_t ss = {.ss_sp = p, .ss_size = len, .ss_flags = 0};
                if (sigaltstack(&ss, NULL) == 0)
                    altstack = p;
                else
                    coro__sys_munmap(p, len);
            }
        }
    }
    if (!__atomic_test_and_set(&segv_installed, __ATOMIC_ACQ_REL)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = segv_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &old_segv);
    }
}

/* ------------------------------------------------------------------ */
/* Allocation                                                          */

static struct coro__stacks *stacks_of(struct sched *s)
{
    if (s->stacks == NULL) {
        struct coro__stacks *st = coro__sys_calloc(1, sizeof *st);
        if (st == NULL)
            return NULL;
        st->guard_budget = (size_t)coro__sys_max_map_count() / 4;
        s->stacks = st;
        install_segv_handler();
    }
    return s->stacks;
}

static __attribute__((noinline)) struct stack_class *
class_find(struct coro__stacks *st, size_t size)
{
    for (size_t i = 0; i < st->ncls; i++)
        if (st->cls[i].size == size)
            return &st->cls[i];
    if (st->ncls == MAX_CLASSES) {
        errno = ENOMEM; /* a program with 16 stack sizes is unusual */
        return NULL;
    }
    struct stack_class *c = &st->cls[st->ncls++];
    memset(c, 0, sizeof *c);
    c->size = size;
    return c;
}

static inline struct stack_class *class_of(struct coro__stacks *st,
                                           size_t size)
{
    if (CORO__LIKELY(st->cls[0].size == size))
        return &st->cls[0]; /* the default size, nearly always */
    return class_find(st, size);
}

/* Map a new slab for class c; NULL with errno. */
static struct coro__slab *slab_new(struct coro__stacks *st,
                                   struct stack_class *c)
{
    size_t pg = coro__page_size();
    size_t room = st->guard_budget - st->guarded;
    bool guarded = room > 0;
    size_t stride = c->size + (guarded ? pg : 0);
    size_t count = (guarded ? SLAB_BYTES : PLAIN_SLAB_BYTES) / stride;
    size_t max = guarded ? SLAB_MAX_STACKS : PLAIN_SLAB_MAX_STACKS;
    if (count > max)
        count = max;
    if (count == 0)
        count = 1;
    if (guarded && count > room)
        count = room;
    struct coro__slab *sl = coro__sys_malloc(sizeof *sl);
    if (sl == NULL)
        return NULL;
    /* Unguarded: a spare first page below the first stack. */
    size_t lead = guarded ? 0 : pg;
    char *base = coro__sys_mmap(lead + stride * count);
    if (base == NULL)
        goto fail_free;
    if (guarded) {
        for (size_t i = 0; i < count; i++)
            if (coro__sys_mprotect_none(base + i * stride, pg) != 0)
                goto fail_unmap;
        st->guarded += count;
    }
    /* The spare page becomes the first stack's guard; if the mapping
     * cannot be split, it holds that stack's canary (resident). */
    bool lead_guard = !guarded && coro__sys_mprotect_none(base, pg) == 0;
    if (lead_guard)
        st->lead_guards++;
    *sl = (struct coro__slab){.next = st->slabs, .map = base,
                              .map_len = lead + stride * count,
                              .base = base + lead, .len = stride * count,
                              .stride = stride, .count = (uint32_t)count,
                              .guarded = guarded, .lead_guard = lead_guard};
    st->slabs = sl;
    return sl;
fail_unmap:;
    int saved = errno;
    coro__sys_munmap(base, lead + stride * count);
    errno = saved;
fail_free:
    saved = errno;
    coro__sys_free(sl);
    errno = saved;
    return NULL;
}

/* Whether the stack starting at lo in slab sl has a guard page. */
static bool has_guard(const struct coro__slab *sl, const char *lo)
{
    return sl->guarded || (sl->lead_guard && lo == sl->base);
}

/* Tell Valgrind that [lo, hi) is a stack; returns its id (0 without). */
static unsigned vg_register(const char *lo, const char *hi)
{
#if CORO__VALGRIND
    return VALGRIND_STACK_REGISTER(lo, hi);
#else
    (void)lo, (void)hi;
    return 0;
#endif
}

static void vg_deregister(unsigned id)
{
#if CORO__VALGRIND
    VALGRIND_STACK_DEREGISTER(id);
#else
    (void)id;
#endif
}

/* Write the canary that guards the unguarded stack starting at lo. */
static void write_canary(char *lo)
{
    uint64_t *w = (uint64_t *)(lo - CANARY_BYTES);
    for (size_t i = 0; i < CANARY_BYTES / 8; i++)
        w[i] = CANARY_WORD;
}

/*
 * The record of the stack whose usable part starts at lo: near the top,
 * lowered by a colour of 0 to 2^COLOUR_BITS - 1 cache lines hashed from
 * the address (its number in 4 KiB pages).  Stacks lie a multiple of the page apart, so records at one
 * offset in their pages would all share a few cache sets and evict each
 * other when many coroutines run in turn.  The colour stays small enough
 * that a parked coroutine's record and frames still share its top page.
 */
static struct coro *record_of(char *lo, size_t size)
{
    uint32_t page = (uint32_t)((uintptr_t)lo >> 12);
    size_t colour = (page * 0x9E3779B1u) >> (32 - COLOUR_BITS);
    return (struct coro *)(lo + size - CANARY_BYTES - RECORD_BYTES -
                           colour * 64);
}

/* Take a hot stack of class c.  Its record still holds the stack's
 * description (and its Valgrind registration) from when it was cached. */
static inline struct coro *hot_pop(struct coro__stacks *st,
                                   struct stack_class *c)
{
    struct coro *co = c->hot;
    c->hot = co->run_next;
    c->hot_count--;
    st->in_use++;
    return co;
}

static __attribute__((noinline)) struct coro *
stack_get_slow(struct sched *s, size_t size);

struct coro *coro__stack_get(struct sched *s, size_t size)
{
    /* The common case first: a hot stack of the default size. */
    struct coro__stacks *st = s->stacks;
    if (CORO__LIKELY(st != NULL && st->cls[0].hot != NULL &&
                     st->cls[0].size == size))
        return hot_pop(st, &st->cls[0]);
    return stack_get_slow(s, size);
}

static __attribute__((noinline)) struct coro *
stack_get_slow(struct sched *s, size_t size)
{
    struct coro__stacks *st = stacks_of(s);
    if (st == NULL)
        return NULL;
    struct stack_class *c = class_of(st, size);
    if (c == NULL)
        return NULL;
    if (c->hot != NULL)
        return hot_pop(st, c);
    struct coro *co;
    char *lo;
    bool guarded;
    struct coro__slab *slab;
    unsigned vg_id;
    if (c->cold_count > 0) {
        struct cold *k = &c->cold[--c->cold_count];
        lo = k->lo;
        guarded = has_guard(k->slab, lo);
        slab = k->slab;
        co = record_of(lo, size);
        if (!guarded)
            write_canary(lo);
        vg_id = vg_register(lo, (char *)co);
    } else {
        struct coro__slab *sl = c->fresh[1] ? c->fresh[1] : c->fresh[0];
        if (sl == NULL || sl->used == sl->count) {
            sl = slab_new(st, c);
            if (sl == NULL)
                return NULL;
            c->fresh[sl->guarded] = sl;
        }
        size_t guard = sl->guarded ? coro__page_size() : 0;
        lo = sl->base + (size_t)sl->used * sl->stride + guard;
        guarded = has_guard(sl, lo);
        slab = sl;
        if (++sl->used == sl->count)
            c->fresh[sl->guarded] = NULL;
        co = record_of(lo, size);
        if (!guarded)
            write_canary(lo);
        vg_id = vg_register(lo, (char *)co);
    }
    /* No memset: the caller sets every field of the record. */
    co->stack = (struct coro__stack){.lo = lo, .hi = (char *)co,
                                     .size = size, .guarded = guarded,
                                     .vg_id = vg_id, .slab = slab};
    st->in_use++;
    return co;
}

static int by_address(const void *a, const void *b)
{
    const struct cold *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* Give back the pages of run = stacks [first, last] of one slab, laid out
 * back to back.  The top of the last one holds the canary of the stack
 * above it, which is rewritten if that stack is in use. */
static void release_run(struct stack_class *c, const struct cold *first,
                        const struct cold *last)
{
    char *lo = first->lo;
    char *end = last->lo + c->size;
    coro__sys_madvise_free(lo, (size_t)(end - lo));
    struct coro__slab *sl = last->slab;
    if (!sl->guarded && end < sl->base + (size_t)sl->used * sl->stride) {
        struct coro *above = record_of(end, c->size);
        if (above->magic == CORO__MAGIC_LIVE)
            write_canary(end);
    }
}

/* Move TRIM_BATCH stacks from the hot cache to the cold list, releasing
 * their pages with as few madvise calls as their layout allows. */
static __attribute__((noinline)) void trim(struct stack_class *c)
{
    size_t n = TRIM_BATCH < c->hot_count ? TRIM_BATCH : c->hot_count;
    if (c->cold_cap - c->cold_count < n) {
        size_t cap = c->cold_cap ? c->cold_cap * 2 : 4 * TRIM_BATCH;
        while (cap - c->cold_count < n)
            cap *= 2;
        struct cold *grown = coro__sys_realloc(c->cold, cap * sizeof *grown);
        if (grown == NULL)
            return; /* keep them cached: memory stays, nothing breaks */
        c->cold = grown;
        c->cold_cap = cap;
    }
    struct cold *batch = &c->cold[c->cold_count];
    for (size_t i = 0; i < n; i++) {
        struct coro *co = c->hot;
        c->hot = co->run_next;
        vg_deregister(co->stack.vg_id);
        batch[i] = (struct cold){co->stack.lo, co->stack.slab};
    }
    c->hot_count -= n;
    c->cold_count += n;
    qsort(batch, n, sizeof *batch, by_address);
    size_t start = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i == n || batch[i].slab != batch[i - 1].slab ||
            batch[i].slab->guarded ||
            batch[i].lo != batch[i - 1].lo + batch[i].slab->stride) {
            release_run(c, &batch[start], &batch[i - 1]);
            start = i;
        }
    }
}

/* Cache co's stack in c, its class, trimming the cache when it is full. */
static inline void hot_push(struct coro__stacks *st, struct stack_class *c,
                            struct coro *co)
{
    st->in_use--;
    co->magic = CORO__MAGIC_FREE;
    co->run_next = c->hot;
    c->hot = co;
    c->hot_count++;
    if (c->hot_count > HOT_MAX + TRIM_BATCH)
        trim(c);
}

static __attribute__((noinline)) void stack_put_slow(struct coro__stacks *st,
                                                     struct coro *co)
{
    hot_push(st, class_find(st, co->stack.size), co);
}

void coro__stack_put(struct sched *s, struct coro *co)
{
    /* As coro__stack_get(): the default size without a call.  Not
     * class_of(): its out-of-line search here makes GCC save registers on
     * the fast path too (nine more instructions a coroutine). */
    struct coro__stacks *st = s->stacks;
    if (CORO__LIKELY(st->cls[0].size == co->stack.size))
        hot_push(st, &st->cls[0], co);
    else
        stack_put_slow(st, co);
}

bool coro__stack_owned(struct sched *s, const struct coro *co)
{
    const char *p = (const char *)co;
    for (const struct coro__slab *sl = s->stacks ? s->stacks->slabs : NULL;
         sl != NULL; sl = sl->next)
        if (p >= sl->map && p < sl->map + sl->map_len)
            return true;
    return false;
}

void coro__stack_stats(struct sched *s, coro_stats_t *out)
{
    struct coro__stacks *st = s->stacks;
    if (st == NULL)
        return;
    out->stacks_in_use = st->in_use;
    out->stacks_cached = 0;
    for (size_t i = 0; i < st->ncls; i++)
        out->stacks_cached += st->cls[i].hot_count;
    out->stacks_guarded = st->guarded + st->lead_guards;
}

void coro__stack_fini(struct sched *s)
{
    struct coro__stacks *st = s->stacks;
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->ncls; i++)
        for (struct coro *co = st->cls[i].hot; co != NULL; co = co->run_next)
            vg_deregister(co->stack.vg_id);
    for (struct coro__slab *sl = st->slabs, *next; sl != NULL; sl = next) {
        next = sl->next;
        coro__sys_munmap(sl->map, sl->map_len);
        coro__sys_free(sl);
    }
    for (size_t i = 0; i < st->ncls; i++)
        coro__sys_free(st->cls[i].cold);
    coro__sys_free(st);
    s->stacks = NULL;
    if (altstack != NULL) {
        stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
        coro__sys_munmap(altstack, 64 * 1024);
        altstack = NULL;
    }
}
