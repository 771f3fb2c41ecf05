/*
 * Instrumenting mode: -finstrument-functions calls
 * __cyg_profile_func_enter/exit around every function of the code built
 * with it; named regions do the same by hand.
 *
 * Shrapnel's model: every event charges the ticks since the previous
 * event to the top frame of the shadow stack that was running (prof__cur:
 * the running coroutine's, the loop's, or the poller wait's), so time is
 * never charged to a coroutine that was switched out.  A call then pushes
 * a frame, a return pops one; a return that does not match the top frame
 * (profiling started inside that function) is ignored.
 *
 * Frames point into a calling-context tree: one node per distinct path,
 * found through a hash of (parent, key), created on the first call along
 * that path.  The per-function table and the call graph are sums over the
 * nodes, made only when a report is asked for; that walk also finds the
 * nodes whose function (by name) is already among their ancestors, whose
 * inclusive time an outer node counts, so that recursion costs nothing
 * per call.
 *
 * Nothing here is instrumented (PROF_NOINSTR, and the library is built
 * without the flag); prof__cur doubles as a re-entrancy guard, cleared
 * while a hook runs.
 */
#include "engine_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <tsc_time/tsc_time.h>

__thread struct prof_shadow *prof__cur __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------------ */
/* The calling-context tree                                            */

struct node_key {
    int32_t parent;
    uint32_t kind;
    uintptr_t key;
};

PROF_NOINSTR static bool node_eq(const void *ctx, int32_t idx)
{
    const struct node_key *k = ctx;
    const struct prof_node *n = &prof__e.nodes[idx];
    return n->key == k->key && n->parent == k->parent && n->kind == k->kind;
}

PROF_NOINSTR static uint32_t node_hash(const struct node_key *k)
{
    /* Cheaper than prof_hash() on the hot path; the multiplier spreads
     * neighbouring addresses over the table. */
    uint64_t h = ((uint64_t)k->key ^ ((uint64_t)k->parent << 32) ^ k->kind) *
                 0x9e3779b97f4a7c15u;
    return (uint32_t)(h >> 32);
}

/* The child of parent for (kind, key), created if new; -1 on ENOMEM. */
PROF_NOINSTR static int32_t node_child(int32_t parent, int kind,
                                       uintptr_t key)
{
    struct prof_engine *e = &prof__e;
    int32_t last = e->nodes[parent].last_child;
    if (last > 0 && e->nodes[last].key == key && e->nodes[last].kind == kind)
        return last;
    struct node_key k = {parent, (uint32_t)kind, key};
    uint32_t h = node_hash(&k);
    int32_t i = prof_itab_find(&e->node_by_key, h, node_eq, &k);
    if (i >= 0) {
        e->nodes[parent].last_child = i;
        return i;
    }
    if (prof_grow(&e->nodes, e->nnodes, &e->capnodes, sizeof *e->nodes,
                  1024) != 0)
        return -1;
    if (prof_itab_add(&e->node_by_key, h, e->nnodes) != 0)
        return -1;
    e->nodes[e->nnodes] = (struct prof_node){
        .key = key, .parent = parent, .kind = (uint8_t)kind};
    e->nodes[parent].last_child = e->nnodes;
    return e->nnodes++;
}

int prof__inst_init(void)
{
    struct prof_engine *e = &prof__e;
    if (e->nnodes > 0)
        return 0;
    e->nodes = calloc(1024, sizeof *e->nodes);
    if (e->nodes == NULL)
        return -1;
    e->capnodes = 1024;
    e->nodes[0] = (struct prof_node){.parent = -1, .kind = NODE_ROOT};
    e->nnodes = 1;
    e->node_main = node_child(0, NODE_PSEUDO, (uintptr_t)PROF_MAIN);
    e->node_wait = node_child(0, NODE_PSEUDO, (uintptr_t)PROF_WAIT);
    e->node_uninstr = node_child(0, NODE_PSEUDO,
                                 (uintptr_t)PROF_UNINSTRUMENTED);
    if (e->node_main < 0 || e->node_wait < 0 || e->node_uninstr < 0) {
        prof__inst_free();
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void prof__inst_free(void)
{
    struct prof_engine *e = &prof__e;
    free(e->nodes);
    e->nodes = NULL;
    e->nnodes = e->capnodes = 0;
    prof_itab_free(&e->node_by_key);
}

/* ------------------------------------------------------------------ */
/* Charging, calls and returns                                         */

PROF_NOINSTR static void charge_rusage(struct prof_node *n)
{
    struct prof_engine *e = &prof__e;
    struct rusage ru;
#ifdef RUSAGE_THREAD
    /* The loop's thread only: the offload pool's work is not ours. */
    if (getrusage(RUSAGE_THREAD, &ru) != 0)
        return;
#else
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return;
#endif
    const struct rusage *o = &e->last_ru;
    n->ru[PROF_RU_UTIME] += (ru.ru_utime.tv_sec - o->ru_utime.tv_sec) *
                                1000000 +
                            (ru.ru_utime.tv_usec - o->ru_utime.tv_usec);
    n->ru[PROF_RU_STIME] += (ru.ru_stime.tv_sec - o->ru_stime.tv_sec) *
                                1000000 +
                            (ru.ru_stime.tv_usec - o->ru_stime.tv_usec);
    n->ru[PROF_RU_MINFLT] += ru.ru_minflt - o->ru_minflt;
    n->ru[PROF_RU_MAJFLT] += ru.ru_majflt - o->ru_majflt;
    n->ru[PROF_RU_NVCSW] += ru.ru_nvcsw - o->ru_nvcsw;
    n->ru[PROF_RU_NIVCSW] += ru.ru_nivcsw - o->ru_nivcsw;
    e->last_ru = ru;
}

PROF_NOINSTR void prof__charge(struct prof_shadow *sh, int64_t now)
{
    struct prof_engine *e = &prof__e;
    int64_t d = now - e->last;
    e->last = now;
    if (d < 0)
        d = 0; /* a TSC resync may step back a little */
    sh->vclock += d;
    struct prof_node *n =
        &e->nodes[sh->depth > 0 ? sh->frames[sh->depth - 1].node
                                : sh->empty_node];
    n->excl += d;
    if (e->rusage)
        charge_rusage(n);
}

/* Close the top frame: its inclusive time (a report leaves it out when
 * an outer frame of the same function counts it). */
PROF_NOINSTR static void pop(struct prof_shadow *sh)
{
    struct prof_frame *f = &sh->frames[--sh->depth];
    prof__e.nodes[f->node].incl += sh->vclock - f->entry_vclock;
}

void prof__close_all(struct prof_shadow *sh)
{
    while (sh->depth > 0)
        pop(sh);
}

PROF_NOINSTR static void push(struct prof_shadow *sh, int kind,
                              uintptr_t key)
{
    if (prof_grow(&sh->frames, sh->depth, &sh->cap, sizeof *sh->frames,
                  32) != 0) {
        prof__drop(1); /* its return will not match: ignored */
        return;
    }
    int32_t parent = sh->depth > 0 ? sh->frames[sh->depth - 1].node : 0;
    int32_t node = node_child(parent, kind, key);
    if (node < 0) {
        prof__drop(1);
        return;
    }
    prof__e.nodes[node].calls++;
    sh->frames[sh->depth++] = (struct prof_frame){node, sh->vclock};
}

/* Pop the innermost open frame of (kind, key) and any left open above it
 * (regions never ended); nothing if there is none. */
PROF_NOINSTR static void pop_to(struct prof_shadow *sh, int kind,
                                uintptr_t key)
{
    for (int i = sh->depth - 1; i >= 0; i--) {
        const struct prof_node *n = &prof__e.nodes[sh->frames[i].node];
        if (n->key == key && n->kind == kind) {
            while (sh->depth > i)
                pop(sh);
            return;
        }
        if (n->kind == NODE_FN && kind == NODE_FN)
            return; /* another function returned unseen: do not guess */
    }
}

PROF_NOINSTR void __cyg_profile_func_enter(void *fn, void *site);
PROF_NOINSTR void __cyg_profile_func_exit(void *fn, void *site);

CORO_API void __cyg_profile_func_enter(void *fn, void *site)
{
    (void)site;
    struct prof_shadow *sh = prof__cur;
    if (sh == NULL)
        return; /* not profiling this thread, or inside a hook */
    prof__cur = NULL;
    prof__charge(sh, prof__now());
    push(sh, NODE_FN, (uintptr_t)fn);
    prof__cur = sh;
}

CORO_API void __cyg_profile_func_exit(void *fn, void *site)
{
    (void)site;
    struct prof_shadow *sh = prof__cur;
    if (sh == NULL)
        return;
    prof__cur = NULL;
    prof__charge(sh, prof__now());
    pop_to(sh, NODE_FN, (uintptr_t)fn);
    prof__cur = sh;
}

void coro_prof_region_begin(const char *name)
{
    struct prof_shadow *sh = prof__cur;
    if (sh == NULL || name == NULL)
        return;
    prof__cur = NULL;
    prof__charge(sh, prof__now());
    push(sh, NODE_REGION, (uintptr_t)name);
    prof__cur = sh;
}

void coro_prof_region_end(void)
{
    struct prof_shadow *sh = prof__cur;
    if (sh == NULL)
        return;
    prof__cur = NULL;
    prof__charge(sh, prof__now());
    if (sh->depth > 0 &&
        prof__e.nodes[sh->frames[sh->depth - 1].node].kind == NODE_REGION)
        pop(sh);
    prof__cur = sh;
}

void coro_prof__scope_end(int *unused)
{
    (void)unused;
    coro_prof_region_end();
}

/* ------------------------------------------------------------------ */
/* Snapshot                                                            */

static void node_name(const struct prof_node *n, char *buf, size_t len)
{
    if (n->kind == NODE_FN)
        prof__name_pc((const void *)n->key, false, false, buf, len);
    else
        snprintf(buf, len, "%s", (const char *)n->key);
}

/* Inclusive time of the frames still open on sh, as if they returned
 * now, into the functions' figures (inner: see tree_walk()). */
static void add_open(struct prof_data *d, const struct prof_shadow *sh,
                     const int32_t *fn_of, const bool *inner)
{
    for (int i = 0; i < sh->depth; i++) {
        const struct prof_frame *f = &sh->frames[i];
        if (!inner[f->node])
            d->fns[fn_of[f->node]].incl += sh->vclock - f->entry_vclock;
    }
}

/* Scratch arrays of a snapshot, one slot per node (or function). */
struct walk {
    int32_t *fn_of;  /* node -> function index in d */
    bool *inner;     /* the node's function is among its ancestors */
    int32_t *first;  /* first child, 0 if none */
    int32_t *next;   /* next sibling, 0 if none */
    int32_t *stack;  /* nodes to enter, and ~node to leave one */
    int32_t *depth;  /* root: 0 */
    int32_t *path;   /* function indexes from the root to the node */
    int32_t *open;   /* per function: its nodes on the current path */
};

static void walk_free(struct walk *w)
{
    free(w->fn_of);
    free(w->inner);
    free(w->first);
    free(w->next);
    free(w->stack);
    free(w->depth);
    free(w->path);
    free(w->open);
}

/*
 * Depth first through the tree, knowing the path from the root: whether
 * each node's function (by name: two static functions of one name are
 * one row) is already on its path, so that inclusive time counts once per
 * name along a path; and a stack, root first, per node that was charged.
 * Its cost is the total length of those stacks, which is what the data
 * holds.  0, or -1 (ENOMEM).
 */
static int tree_walk(struct prof_data *d, struct walk *w, int32_t n)
{
    const struct prof_node *nodes = prof__e.nodes;
    for (int32_t i = n - 1; i >= 1; i--) {
        w->next[i] = w->first[nodes[i].parent];
        w->first[nodes[i].parent] = i;
    }
    size_t sp = 0;
    w->depth[0] = 0;
    for (int32_t c = w->first[0]; c > 0; c = w->next[c])
        w->stack[sp++] = c;
    while (sp > 0) {
        int32_t x = w->stack[--sp];
        if (x < 0) {
            w->open[w->fn_of[~x]]--; /* leaving ~x */
            continue;
        }
        int32_t fn = w->fn_of[x];
        int32_t dep = w->depth[nodes[x].parent] + 1;
        w->depth[x] = dep;
        w->path[dep - 1] = fn;
        w->inner[x] = w->open[fn]++ > 0;
        if (nodes[x].excl > 0 &&
            prof_data_stack(d, w->path, dep, nodes[x].excl) != 0)
            return -1;
        w->stack[sp++] = ~x;
        for (int32_t c = w->first[x]; c > 0; c = w->next[c])
            w->stack[sp++] = c;
    }
    return 0;
}

int prof__inst_snapshot(struct prof_data *d)
{
    struct prof_engine *e = &prof__e;
    int32_t n = e->nnodes;
    size_t m = (size_t)(n > 0 ? n : 1);
    struct walk w = {
        .fn_of = malloc(m * sizeof *w.fn_of),
        .inner = calloc(m, sizeof *w.inner),
        .first = calloc(m, sizeof *w.first),
        .next = calloc(m, sizeof *w.next),
        .stack = malloc(2 * m * sizeof *w.stack), /* a node and its ~node */
        .depth = malloc(m * sizeof *w.depth),
        .path = malloc(m * sizeof *w.path)};
    if (w.fn_of == NULL || w.inner == NULL || w.first == NULL ||
        w.next == NULL || w.stack == NULL || w.depth == NULL ||
        w.path == NULL)
        goto fail;
    char name[512];
    for (int32_t i = 1; i < n; i++) {
        node_name(&e->nodes[i], name, sizeof name);
        if ((w.fn_of[i] = prof_data_fn(d, name)) < 0)
            goto fail;
    }
    w.open = calloc((size_t)d->nfns + 1, sizeof *w.open);
    if (w.open == NULL || tree_walk(d, &w, n) != 0)
        goto fail;
    for (int32_t i = 1; i < n; i++) {
        const struct prof_node *nd = &e->nodes[i];
        struct prof_fn *f = &d->fns[w.fn_of[i]];
        f->calls += nd->calls;
        f->excl += nd->excl;
        if (!w.inner[i]) /* else an outer node of its name counts it */
            f->incl += nd->incl;
        for (int j = 0; j < PROF_RU_N; j++)
            f->ru[j] += nd->ru[j];
        if (nd->parent > 0 && nd->calls > 0 &&
            prof_data_edge(d, w.fn_of[nd->parent], w.fn_of[i], nd->calls) !=
                0)
            goto fail;
    }
    /* The pseudo-functions show their time, not a call per switch. */
    d->fns[w.fn_of[e->node_main]].incl = d->fns[w.fn_of[e->node_main]].excl;
    d->fns[w.fn_of[e->node_wait]].incl = d->fns[w.fn_of[e->node_wait]].excl;
    d->fns[w.fn_of[e->node_uninstr]].incl =
        d->fns[w.fn_of[e->node_uninstr]].excl;
    add_open(d, &e->loop, w.fn_of, w.inner);
    add_open(d, &e->wait, w.fn_of, w.inner);
    for (size_t b = 0; b < e->nbuckets; b++)
        for (const struct prof_shadow *sh = e->buckets[b]; sh != NULL;
             sh = sh->next)
            add_open(d, sh, w.fn_of, w.inner);
    walk_free(&w);
    return 0;
fail:
    walk_free(&w);
    errno = ENOMEM;
    return -1;
}
