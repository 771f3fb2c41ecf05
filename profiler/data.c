/*
 * The profile data model (prof_internal.h): building it, deriving the
 * sampling mode's per-function weights from its stacks, and the saved
 * file format, written and read.
 *
 * The file is text, one record per line, so that diff tools and grep work
 * on it (docs/profiler.md describes every field):
 *
 *   coro-profile 1
 *   mode sample|instrument
 *   hz 1000
 *   ticks-per-sec 2900000000
 *   duration-ticks 8700000000
 *   start-usec 1700000000000000
 *   dropped 0
 *   rusage 0|1
 *   fn ID CALLS INCL EXCL UTIME STIME MINFLT MAJFLT NVCSW NIVCSW NAME
 *   edge CALLER CALLEE COUNT
 *   stack WEIGHT ID;ID;...
 *   coro ID ENDED SWITCHES RUN_TICKS MAX_SLICE_TICKS SELFISH CHARGED NAME
 *   end
 *
 * Function ids are 0, 1, 2... in file order; names are the rest of the
 * line.  A reader rejects another version, an unknown record and a file
 * without its "end" line (cut short).
 */
#include "prof_internal.h"
#include "profiler.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

const char *const prof_ru_names[PROF_RU_N] = {
    "utime_us", "stime_us", "minflt", "majflt", "nvcsw", "nivcsw"};

/* ------------------------------------------------------------------ */
/* Index tables                                                        */

uint32_t prof_hash(const void *p, size_t n, uint32_t seed)
{
    const unsigned char *b = p;
    uint32_t h = 2166136261u ^ seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    h ^= h >> 15; /* FNV's low bits are weak: mix before masking */
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return h;
}

int32_t prof_itab_find(const struct prof_itab *t, uint32_t hash,
                       bool (*eq)(const void *ctx, int32_t idx),
                       const void *ctx)
{
    if (t->cap == 0)
        return -1;
    size_t mask = t->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const struct prof_islot *s = &t->slots[i];
        if (s->idx < 0)
            return -1;
        if (s->hash == hash && eq(ctx, s->idx))
            return s->idx;
    }
}

static void itab_put(struct prof_islot *slots, size_t cap, uint32_t hash,
                     int32_t idx)
{
    size_t mask = cap - 1, i = hash & mask;
    while (slots[i].idx >= 0)
        i = (i + 1) & mask;
    slots[i] = (struct prof_islot){hash, idx};
}

int prof_itab_add(struct prof_itab *t, uint32_t hash, int32_t idx)
{
    if ((t->len + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct prof_islot *s = malloc(cap * sizeof *s);
        if (s == NULL)
            return -1;
        for (size_t i = 0; i < cap; i++)
            s[i].idx = -1;
        for (size_t i = 0; i < t->cap; i++)
            if (t->slots[i].idx >= 0)
                itab_put(s, cap, t->slots[i].hash, t->slots[i].idx);
        free(t->slots);
        t->slots = s;
        t->cap = cap;
    }
    itab_put(t->slots, t->cap, hash, idx);
    t->len++;
    return 0;
}

void prof_itab_free(struct prof_itab *t)
{
    free(t->slots);
    *t = (struct prof_itab){0};
}

int prof_grow_slow(void *arr, int32_t *cap, size_t sz, int32_t first)
{
    if (*cap > INT32_MAX / 2) {
        errno = ENOMEM; /* indexes are int32_t */
        return -1;
    }
    int32_t ncap = *cap ? *cap * 2 : first;
    void *p = realloc(*(void **)arr, (size_t)ncap * sz);
    if (p == NULL)
        return -1;
    *(void **)arr = p;
    *cap = ncap;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Building                                                            */

void prof_data_init(struct prof_data *d)
{
    *d = (struct prof_data){.mode = CORO_PROF_SAMPLE};
}

void prof_data_free(struct prof_data *d)
{
    for (int32_t i = 0; i < d->nfns; i++)
        free(d->fns[i].name);
    for (int32_t i = 0; i < d->nstacks; i++)
        free(d->stacks[i].fns);
    for (int32_t i = 0; i < d->ncoros; i++)
        free(d->coros[i].name);
    free(d->fns);
    free(d->edges);
    free(d->stacks);
    free(d->coros);
    prof_itab_free(&d->fn_by_name);
    prof_itab_free(&d->edge_by_pair);
    prof_itab_free(&d->stack_by_fns);
    prof_data_init(d);
}

struct name_key {
    const struct prof_data *d;
    const char *name;
};

static bool fn_eq(const void *ctx, int32_t idx)
{
    const struct name_key *k = ctx;
    return strcmp(k->d->fns[idx].name, k->name) == 0;
}

/* A copy of s without control characters (they would break the line
 * formats), or NULL.  An empty name becomes "" in quotes: names are the
 * rest of their line in the file, and a reader cannot tell an empty one
 * from a line cut short. */
static char *clean_dup(const char *s)
{
    char *c = strdup(*s != '\0' ? s : "\"\"");
    if (c == NULL)
        return NULL;
    for (char *p = c; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return c;
}

int32_t prof_data_find(const struct prof_data *d, const char *name)
{
    struct name_key k = {d, name};
    return prof_itab_find(&d->fn_by_name, prof_hash(name, strlen(name), 0),
                          fn_eq, &k);
}

int32_t prof_data_fn(struct prof_data *d, const char *name)
{
    char *clean = clean_dup(name);
    if (clean == NULL)
        return -1;
    struct name_key k = {d, clean};
    uint32_t h = prof_hash(clean, strlen(clean), 0);
    int32_t i = prof_itab_find(&d->fn_by_name, h, fn_eq, &k);
    if (i >= 0) {
        free(clean);
        return i;
    }
    if (prof_grow(&d->fns, d->nfns, &d->capfns, sizeof *d->fns, 64) != 0 ||
        prof_itab_add(&d->fn_by_name, h, d->nfns) != 0) {
        free(clean);
        return -1;
    }
    d->fns[d->nfns] = (struct prof_fn){.name = clean};
    return d->nfns++;
}

struct pair_key {
    const struct prof_data *d;
    int32_t caller, callee;
};

static bool edge_eq(const void *ctx, int32_t idx)
{
    const struct pair_key *k = ctx;
    const struct prof_edge *e = &k->d->edges[idx];
    return e->caller == k->caller && e->callee == k->callee;
}

int prof_data_edge(struct prof_data *d, int32_t caller, int32_t callee,
                   uint64_t count)
{
    struct pair_key k = {d, caller, callee};
    int32_t pair[2] = {caller, callee};
    uint32_t h = prof_hash(pair, sizeof pair, 1);
    int32_t i = prof_itab_find(&d->edge_by_pair, h, edge_eq, &k);
    if (i < 0) {
        if (prof_grow(&d->edges, d->nedges, &d->capedges, sizeof *d->edges,
                      64) != 0 ||
            prof_itab_add(&d->edge_by_pair, h, d->nedges) != 0)
            return -1;
        i = d->nedges++;
        d->edges[i] = (struct prof_edge){caller, callee, 0};
    }
    d->edges[i].count += count;
    return 0;
}

struct stack_key {
    const struct prof_data *d;
    const int32_t *fns;
    int n;
};

static bool stack_eq(const void *ctx, int32_t idx)
{
    const struct stack_key *k = ctx;
    const struct prof_stack *s = &k->d->stacks[idx];
    return s->n == k->n &&
           memcmp(s->fns, k->fns, (size_t)k->n * sizeof *k->fns) == 0;
}

int prof_data_stack(struct prof_data *d, const int32_t *fns, int n,
                    int64_t weight)
{
    if (n <= 0 || weight == 0)
        return 0;
    struct stack_key k = {d, fns, n};
    uint32_t h = prof_hash(fns, (size_t)n * sizeof *fns, 2);
    int32_t i = prof_itab_find(&d->stack_by_fns, h, stack_eq, &k);
    if (i < 0) {
        int32_t *copy = malloc((size_t)n * sizeof *copy);
        if (copy == NULL ||
            prof_grow(&d->stacks, d->nstacks, &d->capstacks,
                      sizeof *d->stacks, 64) != 0 ||
            prof_itab_add(&d->stack_by_fns, h, d->nstacks) != 0) {
            free(copy);
            return -1;
        }
        memcpy(copy, fns, (size_t)n * sizeof *copy);
        i = d->nstacks++;
        d->stacks[i] = (struct prof_stack){copy, n, 0};
    }
    d->stacks[i].weight += weight;
    return 0;
}

int prof_data_coro(struct prof_data *d, const struct prof_coro *c)
{
    char *name = clean_dup(c->name != NULL ? c->name : "");
    if (name == NULL ||
        prof_grow(&d->coros, d->ncoros, &d->capcoros, sizeof *d->coros,
                  64) != 0) {
        free(name);
        return -1;
    }
    d->coros[d->ncoros] = *c;
    d->coros[d->ncoros++].name = name;
    return 0;
}

int prof_data_coro_set(struct prof_data *d, int32_t i,
                       const struct prof_coro *c)
{
    char *name = clean_dup(c->name != NULL ? c->name : "");
    if (name == NULL)
        return -1;
    free(d->coros[i].name);
    d->coros[i] = *c;
    d->coros[i].name = name;
    return 0;
}

int prof_data_derive(struct prof_data *d)
{
    /* seen[f] == stamp: f already counted for the current stack, so a
     * recursive function's inclusive weight counts each sample once. */
    int32_t *seen = calloc((size_t)d->nfns + 1, sizeof *seen);
    if (seen == NULL)
        return -1;
    for (int32_t i = 0; i < d->nfns; i++) {
        d->fns[i].incl = 0;
        d->fns[i].excl = 0;
    }
    int rc = 0;
    for (int32_t si = 0; si < d->nstacks && rc == 0; si++) {
        const struct prof_stack *s = &d->stacks[si];
        int32_t stamp = si + 1;
        d->fns[s->fns[s->n - 1]].excl += s->weight;
        for (int j = 0; j < s->n; j++) {
            int32_t f = s->fns[j];
            if (seen[f] != stamp) {
                seen[f] = stamp;
                d->fns[f].incl += s->weight;
            }
            if (j > 0 &&
                prof_data_edge(d, s->fns[j - 1], f, (uint64_t)s->weight) != 0)
                rc = -1;
        }
    }
    free(seen);
    return rc;
}

int64_t prof_data_total(const struct prof_data *d)
{
    int64_t t = 0;
    for (int32_t i = 0; i < d->nfns; i++)
        t += d->fns[i].excl;
    return t;
}

double prof_seconds(const struct prof_data *d, int64_t weight)
{
    if (d->mode == CORO_PROF_SAMPLE)
        return d->hz > 0 ? (double)weight / d->hz : 0;
    return d->ticks_per_sec > 0 ? (double)weight / (double)d->ticks_per_sec
                                : 0;
}

/* ------------------------------------------------------------------ */
/* The file                                                            */

int prof_stream_result(FILE *out)
{
    if (fflush(out) != 0 || ferror(out)) {
        if (errno == 0)
            errno = EIO;
        return -1;
    }
    return 0;
}

/* "id;id;...;id\n": by hand, as deep recursion makes stacks of
 * thousands of frames each, and fprintf() per frame was most of a save. */
static void put_ids(FILE *out, const int32_t *ids, int n)
{
    char buf[4096];
    size_t len = 0;
    for (int j = 0; j < n; j++) {
        if (len > sizeof buf - 16) {
            fwrite(buf, 1, len, out);
            len = 0;
        }
        char digits[12];
        int k = 0;
        uint32_t v = (uint32_t)ids[j]; /* an index: not negative */
        do
            digits[k++] = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        if (j > 0)
            buf[len++] = ';';
        while (k > 0)
            buf[len++] = digits[--k];
    }
    buf[len++] = '\n';
    fwrite(buf, 1, len, out);
}

int prof_write_raw(FILE *out, const struct prof_data *d)
{
    errno = 0;
    fprintf(out,
            "coro-profile %d\nmode %s\nhz %d\nticks-per-sec %" PRId64
            "\nduration-ticks %" PRId64 "\nstart-usec %" PRId64
            "\ndropped %" PRIu64 "\nrusage %d\n",
            PROF_FILE_VERSION,
            d->mode == CORO_PROF_INSTRUMENT ? "instrument" : "sample", d->hz,
            d->ticks_per_sec, d->duration_ticks, d->start_usec, d->dropped,
            d->rusage ? 1 : 0);
    for (int32_t i = 0; i < d->nfns; i++) {
        const struct prof_fn *f = &d->fns[i];
        fprintf(out, "fn %" PRId32 " %" PRIu64 " %" PRId64 " %" PRId64, i,
                f->calls, f->incl, f->excl);
        for (int j = 0; j < PROF_RU_N; j++)
            fprintf(out, " %" PRId64, f->ru[j]);
        fprintf(out, " %s\n", f->name);
    }
    for (int32_t i = 0; i < d->nedges; i++)
        fprintf(out, "edge %" PRId32 " %" PRId32 " %" PRIu64 "\n",
                d->edges[i].caller, d->edges[i].callee, d->edges[i].count);
    for (int32_t i = 0; i < d->nstacks; i++) {
        const struct prof_stack *s = &d->stacks[i];
        fprintf(out, "stack %" PRId64 " ", s->weight);
        put_ids(out, s->fns, s->n);
    }
    for (int32_t i = 0; i < d->ncoros; i++) {
        const struct prof_coro *c = &d->coros[i];
        fprintf(out,
                "coro %d %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64
                " %" PRIu64 " %" PRId64 " %s\n",
                c->id, c->ended, c->switches, c->run_ticks,
                c->max_slice_ticks, c->selfish_yields, c->charged, c->name);
    }
    fputs("end\n", out);
    return prof_stream_result(out);
}

/*
 * Reading.  Every number in the file is a count, a weight or an id, so
 * never negative: a number is decimal digits only, within the range its
 * field was written from (INT64_MAX for signed fields, UINT64_MAX for the
 * unsigned ones), and the sums the reports make (all exclusive weights,
 * all stack weights, all edge counts) must fit too.  Anything else is a
 * bad line, named by the reader's caller.
 */

#define I64 ((uint64_t)INT64_MAX)

/* Digits at *p, at most max, then sep (stepped over, unless it is the
 * end of the line). */
static bool num_sep(char **p, uint64_t max, uint64_t *out, char sep)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (*s != sep)
        return false;
    *out = v;
    *p = (char *)(sep != '\0' ? s + 1 : s);
    return true;
}

/* A number, then a space (or the end of the line when last). */
static bool num(char **p, uint64_t max, uint64_t *out, bool last)
{
    return num_sep(p, max, out, last ? '\0' : ' ');
}

/* n numbers, the i-th at most max[i]. */
static bool nums(char **p, uint64_t *v, const uint64_t *max, int n,
                 bool last)
{
    for (int i = 0; i < n; i++)
        if (!num(p, max[i], &v[i], last && i == n - 1))
            return false;
    return true;
}

/* *sum += v, unless that passes max. */
static bool add_within(uint64_t *sum, uint64_t v, uint64_t max)
{
    if (v > max - *sum)
        return false;
    *sum += v;
    return true;
}

/* What a reader checks across lines. */
struct reader {
    struct prof_data *d;
    uint64_t excl_sum;  /* exclusive weights, at most INT64_MAX */
    uint64_t stack_sum; /* stack weights, at most INT64_MAX */
    uint64_t edge_sum;  /* edge counts */
    bool end, oom;
};

static bool read_fn(struct reader *r, char *p)
{
    static const uint64_t max[10] = {INT32_MAX, UINT64_MAX, I64, I64, I64,
                                     I64,       I64,        I64, I64, I64};
    struct prof_data *d = r->d;
    uint64_t v[10];
    if (!nums(&p, v, max, 10, false) || v[0] != (uint64_t)d->nfns ||
        *p == '\0' || !add_within(&r->excl_sum, v[3], I64))
        return false;
    int32_t i = prof_data_fn(d, p);
    if (i < 0) {
        r->oom = true;
        return false;
    }
    if (i != (int32_t)v[0])
        return false; /* the same name twice */
    struct prof_fn *f = &d->fns[i];
    f->calls = v[1];
    f->incl = (int64_t)v[2];
    f->excl = (int64_t)v[3];
    for (int j = 0; j < PROF_RU_N; j++)
        f->ru[j] = (int64_t)v[4 + j];
    return true;
}

static bool read_edge(struct reader *r, char *p)
{
    static const uint64_t max[3] = {INT32_MAX, INT32_MAX, UINT64_MAX};
    uint64_t v[3];
    if (!nums(&p, v, max, 3, true) || v[0] >= (uint64_t)r->d->nfns ||
        v[1] >= (uint64_t)r->d->nfns ||
        !add_within(&r->edge_sum, v[2], UINT64_MAX))
        return false;
    if (prof_data_edge(r->d, (int32_t)v[0], (int32_t)v[1], v[2]) != 0) {
        r->oom = true;
        return false;
    }
    return true;
}

static bool read_stack(struct reader *r, char *p)
{
    uint64_t w;
    if (!num(&p, I64, &w, false) || !add_within(&r->stack_sum, w, I64))
        return false;
    size_t n = 1;
    for (const char *q = p; *q != '\0'; q++)
        n += *q == ';';
    if (n > INT32_MAX / sizeof(int32_t))
        return false;
    int32_t *fns = malloc(n * sizeof *fns);
    if (fns == NULL) {
        r->oom = true;
        return false;
    }
    bool ok = true;
    for (size_t j = 0; j < n && ok; j++) {
        uint64_t f = 0;
        ok = num_sep(&p, INT32_MAX, &f, j == n - 1 ? '\0' : ';') &&
             f < (uint64_t)r->d->nfns;
        fns[j] = (int32_t)f;
    }
    if (ok && prof_data_stack(r->d, fns, (int)n, (int64_t)w) != 0) {
        r->oom = true;
        ok = false;
    }
    free(fns);
    return ok;
}

static bool read_coro(struct reader *r, char *p)
{
    static const uint64_t max[7] = {INT32_MAX, UINT64_MAX, UINT64_MAX, I64,
                                    I64,       UINT64_MAX, I64};
    uint64_t v[7];
    if (!nums(&p, v, max, 7, false))
        return false;
    struct prof_coro c = {
        .id = (int)v[0], .ended = v[1], .switches = v[2],
        .run_ticks = (int64_t)v[3], .max_slice_ticks = (int64_t)v[4],
        .selfish_yields = v[5], .charged = (int64_t)v[6], .name = p};
    if (prof_data_coro(r->d, &c) != 0) {
        r->oom = true;
        return false;
    }
    return true;
}

/* One record after the header; false when the line is bad. */
static bool read_record(struct reader *r, char *l)
{
    if (strcmp(l, "end") == 0) {
        r->end = true;
        return true;
    }
    if (strncmp(l, "fn ", 3) == 0)
        return read_fn(r, l + 3);
    if (strncmp(l, "edge ", 5) == 0)
        return read_edge(r, l + 5);
    if (strncmp(l, "stack ", 6) == 0)
        return read_stack(r, l + 6);
    if (strncmp(l, "coro ", 5) == 0)
        return read_coro(r, l + 5);
    return false;
}

/* The header's "key value" lines, in order. */
static bool read_header(struct prof_data *d, char *l, int i)
{
    static const char *const keys[] = {
        "coro-profile ", "mode ", "hz ", "ticks-per-sec ",
        "duration-ticks ", "start-usec ", "dropped ", "rusage "};
    size_t kl = strlen(keys[i]);
    if (strncmp(l, keys[i], kl) != 0)
        return false;
    char *p = l + kl;
    if (i == 1) {
        if (strcmp(p, "sample") == 0)
            d->mode = CORO_PROF_SAMPLE;
        else if (strcmp(p, "instrument") == 0)
            d->mode = CORO_PROF_INSTRUMENT;
        else
            return false;
        return true;
    }
    uint64_t v;
    if (!num(&p, i == 6 ? UINT64_MAX : I64, &v, true))
        return false;
    switch (i) {
    case 0: return v == PROF_FILE_VERSION;
    case 2:
        /* Sampling weights are in samples at hz: it divides. */
        d->hz = (int)(v <= PROF_UNIT_HZ_MAX ? v : 0);
        return d->mode == CORO_PROF_SAMPLE
                   ? v >= 1 && v <= PROF_UNIT_HZ_MAX
                   : v == 0;
    case 3: d->ticks_per_sec = (int64_t)v; return v >= 1;
    case 4: d->duration_ticks = (int64_t)v; return true;
    case 5: d->start_usec = (int64_t)v; return true;
    case 6: d->dropped = v; return true;
    default: d->rusage = v != 0; return v <= 1;
    }
}

int prof_read(FILE *in, struct prof_data *d, int *line)
{
    prof_data_init(d);
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    int n = 0;
    bool bad = false;
    errno = 0;
    struct reader r = {.d = d};
    while (!r.end && !bad && (len = getline(&buf, &cap, in)) >= 0) {
        n = n < INT_MAX ? n + 1 : n;
        if (len > 0 && buf[len - 1] == '\n')
            buf[--len] = '\0';
        if (n <= 8)
            bad = !read_header(d, buf, n - 1);
        else
            bad = !read_record(&r, buf);
    }
    bool end = r.end, oom = r.oom;
    int err = errno;
    free(buf);
    if (line != NULL)
        *line = bad ? n : n + 1;
    if (bad || !end || ferror(in)) {
        prof_data_free(d);
        errno = oom ? ENOMEM : ferror(in) && err != 0 ? err : EINVAL;
        return -1;
    }
    return 0;
}
