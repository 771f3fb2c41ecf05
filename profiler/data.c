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
        for (int j = 0; j < s->n; j++)
            fprintf(out, "%s%" PRId32, j ? ";" : "", s->fns[j]);
        fputc('\n', out);
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

/* Parse a signed integer at *p, then one space (or the end when last). */
static bool num(char **p, int64_t *out, bool last)
{
    char *end;
    errno = 0;
    long long v = strtoll(*p, &end, 10);
    if (end == *p || errno != 0 || (last ? *end != '\0' : *end != ' '))
        return false;
    *out = v;
    *p = last ? end : end + 1;
    return true;
}

static bool nums(char **p, int64_t *v, int n, bool last)
{
    for (int i = 0; i < n; i++)
        if (!num(p, &v[i], last && i == n - 1))
            return false;
    return true;
}

/* One record after the header; false when the line is bad. */
static bool read_record(struct prof_data *d, char *l, bool *end, bool *oom)
{
    int64_t v[11];
    if (strcmp(l, "end") == 0) {
        *end = true;
        return true;
    }
    if (strncmp(l, "fn ", 3) == 0) {
        char *p = l + 3;
        if (!nums(&p, v, 10, false) || v[0] != d->nfns || *p == '\0')
            return false;
        int32_t i = prof_data_fn(d, p);
        if (i < 0) {
            *oom = true;
            return false;
        }
        if (i != v[0])
            return false; /* the same name twice */
        struct prof_fn *f = &d->fns[i];
        f->calls = (uint64_t)v[1];
        f->incl = v[2];
        f->excl = v[3];
        memcpy(f->ru, &v[4], sizeof f->ru);
        return v[1] >= 0;
    }
    if (strncmp(l, "edge ", 5) == 0) {
        char *p = l + 5;
        if (!nums(&p, v, 3, true) || v[0] < 0 || v[0] >= d->nfns ||
            v[1] < 0 || v[1] >= d->nfns || v[2] < 0)
            return false;
        if (prof_data_edge(d, (int32_t)v[0], (int32_t)v[1], (uint64_t)v[2])) {
            *oom = true;
            return false;
        }
        return true;
    }
    if (strncmp(l, "stack ", 6) == 0) {
        char *p = l + 6;
        if (!num(&p, &v[0], false))
            return false;
        int n = 1;
        for (char *q = p; *q != '\0'; q++)
            n += *q == ';';
        int32_t *fns = malloc((size_t)n * sizeof *fns);
        if (fns == NULL) {
            *oom = true;
            return false;
        }
        bool ok = true;
        for (int j = 0; j < n && ok; j++) {
            char *e;
            errno = 0;
            long f = strtol(p, &e, 10);
            ok = e != p && errno == 0 && f >= 0 && f < d->nfns &&
                 (*e == (j == n - 1 ? '\0' : ';'));
            fns[j] = (int32_t)f;
            p = e + 1;
        }
        if (ok && prof_data_stack(d, fns, n, v[0]) != 0) {
            *oom = true;
            ok = false;
        }
        free(fns);
        return ok;
    }
    if (strncmp(l, "coro ", 5) == 0) {
        char *p = l + 5;
        if (!nums(&p, v, 7, false))
            return false;
        struct prof_coro c = {
            .id = (int)v[0], .ended = (uint64_t)v[1],
            .switches = (uint64_t)v[2], .run_ticks = v[3],
            .max_slice_ticks = v[4], .selfish_yields = (uint64_t)v[5],
            .charged = v[6], .name = p};
        if (prof_data_coro(d, &c) != 0) {
            *oom = true;
            return false;
        }
        return true;
    }
    return false;
}

/* The header's "key value" lines, in order. */
static bool read_header(struct prof_data *d, const char *l, int i)
{
    static const char *const keys[] = {
        "coro-profile ", "mode ", "hz ", "ticks-per-sec ",
        "duration-ticks ", "start-usec ", "dropped ", "rusage "};
    size_t kl = strlen(keys[i]);
    if (strncmp(l, keys[i], kl) != 0)
        return false;
    char *p = (char *)l + kl;
    int64_t v;
    if (i == 1) {
        if (strcmp(p, "sample") == 0)
            d->mode = CORO_PROF_SAMPLE;
        else if (strcmp(p, "instrument") == 0)
            d->mode = CORO_PROF_INSTRUMENT;
        else
            return false;
        return true;
    }
    if (!num(&p, &v, true) || v < 0)
        return false;
    switch (i) {
    case 0: return v == PROF_FILE_VERSION;
    case 2: d->hz = (int)v; return v <= PROF_UNIT_HZ_MAX;
    case 3: d->ticks_per_sec = v; return true;
    case 4: d->duration_ticks = v; return true;
    case 5: d->start_usec = v; return true;
    case 6: d->dropped = (uint64_t)v; return true;
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
    bool end = false, oom = false, bad = false;
    errno = 0;
    while (!end && !bad && (len = getline(&buf, &cap, in)) >= 0) {
        n++;
        if (len > 0 && buf[len - 1] == '\n')
            buf[--len] = '\0';
        if (n <= 8)
            bad = !read_header(d, buf, n - 1);
        else
            bad = !read_record(d, buf, &end, &oom);
    }
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
