/*
 * Reports from a struct prof_data, for the library and the coro-prof
 * tool alike: the text table, folded stacks, the SVG flame graph, the
 * HTML page and the difference of two profiles.
 *
 * The flame graph is drawn here, as plain SVG (rectangles, text and a
 * <title> per frame for the hover text), so that no script is needed to
 * read it: each frame's width is its share of all samples (or ticks), its
 * children stand on it, and the widest paths are where the time went.
 */
#include "prof_internal.h"
#include "profiler.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static double pct(int64_t part, int64_t total)
{
    return total > 0 ? 100.0 * (double)part / (double)total : 0;
}

static double ms(const struct prof_data *d, int64_t w)
{
    return prof_seconds(d, w) * 1e3;
}

static const char *mode_name(const struct prof_data *d)
{
    return d->mode == CORO_PROF_INSTRUMENT ? "instrumenting" : "sampling";
}

/* Whether only the profiler's own rows ("<uninstrumented>", "<wait>"...)
 * are there: no instrumented function or region ran. */
static bool nothing_instrumented(const struct prof_data *d)
{
    for (int32_t i = 0; i < d->nfns; i++)
        if (d->fns[i].name[0] != '<')
            return false;
    return true;
}

/* One line saying what the profile is. */
static void summary(FILE *out, const struct prof_data *d, int64_t total)
{
    /* Runs at several rates are counted in samples of a common unit
     * (prof_data.hz); above the highest rate, it cannot be one run's. */
    if (d->mode == CORO_PROF_SAMPLE)
        fprintf(out, "%s at %s%d Hz, %.3f s profiled, %" PRId64
                     " samples (<wait>: wall time blocked in the poller, "
                     "in samples at %d Hz)",
                mode_name(d), d->hz > PROF_HZ_MAX ? "several rates, in "
                                                    "samples at "
                                                  : "",
                d->hz, (double)d->duration_ticks /
                (double)(d->ticks_per_sec > 0 ? d->ticks_per_sec : 1),
                total, d->hz);
    else
        fprintf(out, "%s, %.3f s profiled, %.3f s charged",
                mode_name(d), (double)d->duration_ticks /
                (double)(d->ticks_per_sec > 0 ? d->ticks_per_sec : 1),
                prof_seconds(d, total));
    if (d->dropped != 0)
        fprintf(out, ", %" PRIu64 " events dropped", d->dropped);
    if (d->mode == CORO_PROF_INSTRUMENT && nothing_instrumented(d))
        fprintf(out, "; no instrumented function or region ran (build the "
                     "code to profile with -finstrument-functions)");
}

/* ------------------------------------------------------------------ */
/* Order                                                               */

struct order_ctx {
    const struct prof_data *d;
    int sort;
};

static int cmp_i64(int64_t a, int64_t b)
{
    return (a < b) - (a > b); /* descending */
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return (a < b) - (a > b); /* descending */
}

static int cmp_fn(const void *pa, const void *pb, void *ctx)
{
    const struct order_ctx *by = ctx;
    const struct prof_fn *a = &by->d->fns[*(const int32_t *)pa];
    const struct prof_fn *b = &by->d->fns[*(const int32_t *)pb];
    int c = 0;
    switch (by->sort) {
    case CORO_PROF_BY_TOTAL: c = cmp_i64(a->incl, b->incl); break;
    case CORO_PROF_BY_CALLS:
        c = cmp_u64(a->calls, b->calls);
        break;
    default: break;
    }
    if (c == 0)
        c = cmp_i64(a->excl, b->excl);
    if (c == 0)
        c = cmp_i64(a->incl, b->incl);
    return c != 0 ? c : strcmp(a->name, b->name);
}

/* Function indexes in report order; NULL with errno ENOMEM. */
static int32_t *fn_order(const struct prof_data *d, int sort)
{
    int32_t *o = malloc(((size_t)d->nfns + 1) * sizeof *o);
    if (o == NULL)
        return NULL;
    for (int32_t i = 0; i < d->nfns; i++)
        o[i] = i;
    struct order_ctx by = {d, sort};
    qsort_r(o, (size_t)d->nfns, sizeof *o, cmp_fn, &by);
    return o;
}

static int cmp_coro(const void *pa, const void *pb)
{
    const struct prof_coro *a = pa, *b = pb;
    int c = cmp_i64(a->charged, b->charged);
    if (c == 0)
        c = cmp_i64(a->run_ticks, b->run_ticks);
    return c != 0 ? c : (a->id > b->id) - (a->id < b->id);
}

/* The coroutine rows, most charged first; NULL with errno ENOMEM. */
static struct prof_coro *coro_order(const struct prof_data *d)
{
    struct prof_coro *c = malloc(((size_t)d->ncoros + 1) * sizeof *c);
    if (c == NULL)
        return NULL;
    if (d->ncoros > 0) {
        memcpy(c, d->coros, (size_t)d->ncoros * sizeof *c);
        qsort(c, (size_t)d->ncoros, sizeof *c, cmp_coro);
    }
    return c;
}

/* What the table and the page both start from. */
struct report {
    int32_t *order;         /* function indexes in report order; owned */
    struct prof_coro *coros; /* coroutine rows, most charged first; owned */
    int32_t shown;          /* functions shown (top) */
    int64_t total;          /* sum of exclusive weights */
    bool inst;              /* instrumenting */
};

/* 0, or -1 with errno ENOMEM. */
static int report_begin(struct report *rp, const struct prof_data *d,
                        const struct prof_render *r)
{
    rp->order = fn_order(d, r->sort);
    rp->coros = coro_order(d);
    if (rp->order == NULL || rp->coros == NULL) {
        free(rp->order);
        free(rp->coros);
        return -1;
    }
    rp->shown = r->top > 0 && r->top < d->nfns ? r->top : d->nfns;
    rp->total = prof_data_total(d);
    rp->inst = d->mode == CORO_PROF_INSTRUMENT;
    errno = 0;
    return 0;
}

static void report_end(struct report *rp)
{
    free(rp->order);
    free(rp->coros);
}

static double tick_ms(const struct prof_data *d, int64_t ticks)
{
    return d->ticks_per_sec > 0 ? 1e3 * (double)ticks /
                                      (double)d->ticks_per_sec
                                : 0;
}

/* ------------------------------------------------------------------ */
/* Table                                                               */

#define CORO_ROWS 20 /* coroutine rows in the table */

int prof_write_table(FILE *out, const struct prof_data *d,
                     const struct prof_render *r)
{
    struct report rp;
    if (report_begin(&rp, d, r) != 0)
        return -1;
    const int32_t *o = rp.order;
    const struct prof_coro *co = rp.coros;
    int64_t total = rp.total;
    bool inst = rp.inst;
    fputs("coro profile: ", out);
    summary(out, d, total);
    fputs("\n\n", out);
    if (inst)
        fprintf(out, "%10s ", "calls");
    fprintf(out, "%11s %6s %11s %6s", "self ms", "self%", "total ms",
            "total%");
    if (inst)
        fprintf(out, " %11s %11s", "self us/c", "total us/c");
    else
        fprintf(out, " %9s", "samples");
    if (d->rusage)
        for (int j = 0; j < PROF_RU_N; j++)
            fprintf(out, " %9s", prof_ru_names[j]);
    fputs("  function\n", out);
    for (int32_t k = 0; k < rp.shown; k++) {
        const struct prof_fn *f = &d->fns[o[k]];
        if (f->excl == 0 && f->incl == 0 && f->calls == 0)
            continue;
        if (inst)
            fprintf(out, "%10" PRIu64 " ", f->calls);
        fprintf(out, "%11.3f %5.1f%% %11.3f %5.1f%%", ms(d, f->excl),
                pct(f->excl, total), ms(d, f->incl), pct(f->incl, total));
        if (inst && f->calls > 0) {
            double c = (double)f->calls;
            fprintf(out, " %11.3f %11.3f", ms(d, f->excl) * 1e3 / c,
                    ms(d, f->incl) * 1e3 / c);
        } else if (inst) {
            fprintf(out, " %11s %11s", "-", "-"); /* <main>, <wait> */
        } else {
            fprintf(out, " %9" PRId64, f->excl);
        }
        if (d->rusage)
            for (int j = 0; j < PROF_RU_N; j++)
                fprintf(out, " %9" PRId64, f->ru[j]);
        fprintf(out, "  %s\n", f->name);
    }
    if (d->ncoros > 0) {
        fprintf(out, "\ncoroutines (charged: %s while each ran; the rest "
                     "are coro_info() counters since it started)\n",
                inst ? "time" : "samples");
        fprintf(out, "%8s %11s %6s %10s %11s %12s %8s  %s\n", "id",
                "charged ms", "share", "switches", "run ms", "max slice ms",
                "selfish", "name");
        for (int32_t k = 0; k < d->ncoros && k < CORO_ROWS; k++) {
            const struct prof_coro *c = &co[k];
            if (c->id > 0)
                fprintf(out, "%8d", c->id);
            else
                fprintf(out, "%8s", "ended");
            fprintf(out,
                    " %11.3f %5.1f%% %10" PRIu64 " %11.3f %12.3f %8" PRIu64
                    "  %s",
                    ms(d, c->charged), pct(c->charged, total), c->switches,
                    tick_ms(d, c->run_ticks), tick_ms(d, c->max_slice_ticks),
                    c->selfish_yields, c->name);
            if (c->id <= 0)
                fprintf(out, " (%" PRIu64 " ended)", c->ended);
            fputc('\n', out);
        }
        if (d->ncoros > CORO_ROWS)
            fprintf(out, "(%d more)\n", (int)(d->ncoros - CORO_ROWS));
    }
    report_end(&rp);
    return prof_stream_result(out);
}

/* ------------------------------------------------------------------ */
/* Folded stacks                                                       */

/* A name as one folded frame: ';' separates frames. */
static void put_frame(FILE *out, const char *name)
{
    for (const char *p = name; *p != '\0'; p++)
        fputc(*p == ';' ? ':' : *p, out);
}

int prof_write_folded(FILE *out, const struct prof_data *d)
{
    errno = 0;
    for (int32_t i = 0; i < d->nstacks; i++) {
        const struct prof_stack *s = &d->stacks[i];
        if (s->weight <= 0)
            continue;
        for (int j = 0; j < s->n; j++) {
            if (j > 0)
                fputc(';', out);
            put_frame(out, d->fns[s->fns[j]].name);
        }
        fprintf(out, " %" PRId64 "\n", s->weight);
    }
    return prof_stream_result(out);
}

/* ------------------------------------------------------------------ */
/* Flame graph                                                         */

/* The stacks merged into a tree: a node per distinct path. */
struct fnode {
    int32_t fn;      /* function index; -1 for the root ("all") */
    int32_t parent;  /* -1 for the root */
    int64_t weight;  /* inclusive */
    int32_t child;   /* first child, -1 if none */
    int32_t sibling; /* next sibling, -1 if none */
};

struct ftree {
    struct fnode *n;
    int32_t len, cap;
    int depth;                /* deepest stack */
    struct prof_itab by_pair; /* (parent, fn) -> node: a node may have
                                 thousands of children */
};

static void ftree_free(struct ftree *t)
{
    free(t->n);
    prof_itab_free(&t->by_pair);
}

struct fpair_key {
    const struct ftree *t;
    int32_t pair[2]; /* parent, fn */
};

static bool fpair_eq(const void *ctx, int32_t idx)
{
    const struct fpair_key *k = ctx;
    return k->t->n[idx].parent == k->pair[0] && k->t->n[idx].fn == k->pair[1];
}

/* The child of node at for function fn, made if new; -1 on ENOMEM. */
static int32_t ftree_child(struct ftree *t, int32_t at, int32_t fn)
{
    struct fpair_key k = {t, {at, fn}};
    uint32_t h = prof_hash(k.pair, sizeof k.pair, 8);
    int32_t c = prof_itab_find(&t->by_pair, h, fpair_eq, &k);
    if (c >= 0)
        return c;
    if (prof_grow(&t->n, t->len, &t->cap, sizeof *t->n, 256) != 0 ||
        prof_itab_add(&t->by_pair, h, t->len) != 0)
        return -1;
    t->n[t->len] = (struct fnode){fn, at, 0, -1, t->n[at].child};
    t->n[at].child = t->len;
    return t->len++;
}

static int ftree_build(struct ftree *t, const struct prof_data *d)
{
    *t = (struct ftree){0};
    if (prof_grow(&t->n, 0, &t->cap, sizeof *t->n, 256) != 0)
        return -1;
    t->n[t->len++] = (struct fnode){-1, -1, 0, -1, -1};
    for (int32_t i = 0; i < d->nstacks; i++) {
        const struct prof_stack *s = &d->stacks[i];
        if (s->weight <= 0)
            continue;
        int32_t at = 0;
        t->n[0].weight += s->weight;
        if (s->n > t->depth)
            t->depth = s->n;
        for (int j = 0; j < s->n; j++) {
            int32_t c = ftree_child(t, at, s->fns[j]);
            if (c < 0)
                return -1;
            t->n[c].weight += s->weight;
            at = c;
        }
    }
    return 0;
}

/* The UTF-8 character at s: its length (1 to 4), or 0 when the bytes
 * there are not one (a stray or cut sequence, an overlong form, a
 * surrogate, past U+10FFFF).  Its code point goes to *cp. */
static size_t utf8_char(const unsigned char *s, uint32_t *cp)
{
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2
                           : (s[0] & 0xf0) == 0xe0 ? 3
                           : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0)
        return 0;
    uint32_t c = n == 1 ? s[0] : s[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the end, '\0' */
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* Whether XML text may hold cp: no control characters (C0, DEL, C1; XML
 * forbids most of C0 outright) and not U+FFFE or U+FFFF. */
static bool xml_char(uint32_t cp)
{
    return cp >= 0x20 && !(cp >= 0x7f && cp <= 0x9f) && cp != 0xfffe &&
           cp != 0xffff;
}

/* The characters put_xml() writes for s: a byte that starts no UTF-8
 * character counts as one. */
static size_t xml_len(const char *s)
{
    size_t n = 0;
    uint32_t cp;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
         n++) {
        size_t k = utf8_char(p, &cp);
        p += k > 0 ? k : 1;
    }
    return n;
}

/* At most max characters of s as XML text: escaped, and well-formed
 * whatever s holds (names come from symbol tables, files and users): a
 * byte that is not UTF-8, or a character XML does not allow, becomes
 * U+FFFD, and a cut never splits a character. */
static void put_xml(FILE *out, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; *p != '\0' && i < max; i++) {
        uint32_t cp;
        size_t n = utf8_char(p, &cp);
        if (n == 0 || !xml_char(cp)) {
            fputs("\xef\xbf\xbd", out); /* U+FFFD, the replacement */
            p += n > 0 ? n : 1;
            continue;
        }
        switch (cp) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default: fwrite(p, 1, n, out);
        }
        p += n;
    }
}

#define SVG_W 1200.0    /* drawing width, px */
#define SVG_PAD 10.0    /* left and right margin */
#define FRAME_H 16      /* frame height, px */
#define CHAR_W 7.0      /* average glyph width at 12 px, for labels */
#define SVG_TOP 48      /* room for the title */
#define MIN_W 0.1       /* narrower frames are not drawn */

/* A warm colour from the name, so a function keeps its colour; the
 * pseudo-functions are grey-blue. */
static void frame_color(const char *name, char *buf, size_t len)
{
    uint32_t h = prof_hash(name, strlen(name), 7);
    if (name[0] == '<')
        snprintf(buf, len, "rgb(%u,%u,%u)", 150 + h % 30, 170 + h % 30,
                 210 + (h >> 8) % 30);
    else
        snprintf(buf, len, "rgb(%u,%u,%u)", 205 + h % 50,
                 (h >> 8) % 190 + 40, (h >> 16) % 55);
}

struct svg_ctx {
    FILE *out;
    const struct prof_data *d;
    const struct ftree *t;
    double scale; /* px per unit of weight */
    int64_t total;
    int height;
};

/* One frame: its rectangle, label and hover text. */
static void svg_frame(const struct svg_ctx *c, int32_t i, double x,
                      int depth)
{
    const struct fnode *n = &c->t->n[i];
    double w = (double)n->weight * c->scale;
    const char *name = n->fn >= 0 ? c->d->fns[n->fn].name : "all";
    double y = c->height - (depth + 1) * FRAME_H - 4;
    char color[40];
    frame_color(name, color, sizeof color);
    FILE *out = c->out;
    fputs("<g><title>", out);
    put_xml(out, name, SIZE_MAX);
    fprintf(out, " (%.3f ms, %.2f%%)</title>", ms(c->d, n->weight),
            pct(n->weight, c->total));
    fprintf(out,
            "<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%d\" "
            "fill=\"%s\" rx=\"2\"/>",
            x, y, w, FRAME_H - 1, color);
    size_t fit = w > 2 * CHAR_W ? (size_t)((w - 6) / CHAR_W) : 0;
    if (fit >= 3) {
        size_t len = xml_len(name); /* characters, as fit */
        fprintf(out, "<text x=\"%.2f\" y=\"%.0f\">", x + 3, y + 11.5);
        if (len <= fit) {
            put_xml(out, name, len);
        } else {
            put_xml(out, name, fit - 2);
            fputs("..", out);
        }
        fputs("</text>", out);
    }
    fputs("</g>\n", out);
}

/* Every frame wide enough to see, depth first with an explicit stack:
 * a deep recursion must not overflow a coroutine's small stack. */
static int svg_frames(const struct svg_ctx *c)
{
    struct todo {
        int32_t node;
        int depth;
        double x;
    } *todo = malloc((size_t)c->t->len * sizeof *todo);
    if (todo == NULL)
        return -1;
    size_t n = 0;
    todo[n++] = (struct todo){0, 0, SVG_PAD};
    while (n > 0) {
        struct todo t = todo[--n];
        if ((double)c->t->n[t.node].weight * c->scale < MIN_W)
            continue;
        svg_frame(c, t.node, t.x, t.depth);
        double x = t.x;
        for (int32_t k = c->t->n[t.node].child; k >= 0;
             k = c->t->n[k].sibling) {
            todo[n++] = (struct todo){k, t.depth + 1, x};
            x += (double)c->t->n[k].weight * c->scale;
        }
    }
    free(todo);
    return 0;
}

/* The <svg> element; standalone adds the XML declaration. */
static int svg_body(FILE *out, const struct prof_data *d,
                    const struct prof_render *r, bool standalone)
{
    struct ftree t;
    if (ftree_build(&t, d) != 0) {
        ftree_free(&t);
        return -1;
    }
    int64_t total = t.n[0].weight;
    int height = SVG_TOP + (t.depth + 1) * FRAME_H + 8;
    if (standalone)
        fputs("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n",
              out);
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
            "width=\"%.0f\" height=\"%d\" viewBox=\"0 0 %.0f %d\">\n",
            SVG_W, height, SVG_W, height);
    fputs("<style>text{font-family:Verdana,sans-serif;font-size:12px;"
          "fill:#000}.h{font-size:17px}.s{font-size:12px;fill:#555}</style>\n",
          out);
    fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%d\" "
                 "fill=\"#fdfdf6\"/>\n", SVG_W, height);
    fprintf(out, "<text class=\"h\" x=\"%.0f\" y=\"22\" "
                 "text-anchor=\"middle\">", SVG_W / 2);
    put_xml(out, r->title, SIZE_MAX);
    fputs("</text>\n", out);
    fprintf(out, "<text class=\"s\" x=\"%.0f\" y=\"40\" "
                 "text-anchor=\"middle\">", SVG_W / 2);
    /* The summary, escaped: print it into memory first. */
    char *sum = NULL;
    size_t sumlen = 0;
    FILE *m = open_memstream(&sum, &sumlen);
    if (m != NULL) {
        summary(m, d, total);
        fputs("; width = share of the time, hover for figures", m);
        fclose(m);
        if (sum != NULL)
            put_xml(out, sum, SIZE_MAX);
        free(sum);
    }
    fputs("</text>\n", out);
    if (total > 0) {
        struct svg_ctx c = {out, d, &t, (SVG_W - 2 * SVG_PAD) /
                                            (double)total,
                            total, height};
        if (svg_frames(&c) != 0) {
            ftree_free(&t);
            return -1;
        }
    }
    fputs("</svg>\n", out);
    ftree_free(&t);
    return 0;
}

int prof_write_svg(FILE *out, const struct prof_data *d,
                   const struct prof_render *r)
{
    errno = 0;
    if (svg_body(out, d, r, true) != 0)
        return -1;
    return prof_stream_result(out);
}

/* ------------------------------------------------------------------ */
/* HTML                                                                */

static const char html_style[] =
    "body{font-family:sans-serif;margin:1em 2em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
    "td.n,th.n{text-align:left}th{cursor:pointer;background:#eee}"
    "h3{margin:1em 0 .2em}.cg td{border:0}a{color:#036}";

/* Click a heading to sort by that column; again to reverse. */
static const char html_script[] =
    "document.querySelectorAll('table.sortable th').forEach(function(th){"
    "th.onclick=function(){var t=th.closest('table'),b=t.tBodies[0],"
    "i=th.cellIndex,r=[].slice.call(b.rows),up=th.dataset.up!=='1',"
    "txt=th.className==='n';th.dataset.up=up?'1':'0';"
    "r.sort(function(x,y){var a=x.cells[i].textContent,"
    "c=y.cells[i].textContent,v=txt?a.localeCompare(c):"
    "parseFloat(a)-parseFloat(c);return up?v:-v;});"
    "r.forEach(function(x){b.appendChild(x);});};});";

/* The edges of each function as callee (or caller): those of f are
 * edge[at[f]] .. edge[at[f + 1] - 1], in the data's order. */
struct edge_index {
    int32_t *at;   /* nfns + 2 */
    int32_t *edge; /* nedges */
};

static void edge_index_free(struct edge_index *x)
{
    free(x->at);
    free(x->edge);
    *x = (struct edge_index){0};
}

/* 0, or -1 with errno ENOMEM. */
static int edge_index_build(struct edge_index *x, const struct prof_data *d,
                            bool by_callee)
{
    x->at = calloc((size_t)d->nfns + 2, sizeof *x->at);
    x->edge = malloc(((size_t)d->nedges + 1) * sizeof *x->edge);
    if (x->at == NULL || x->edge == NULL) {
        edge_index_free(x);
        return -1;
    }
    /* Counts two places up, sums one place up, then each edge moves its
     * function's start up one place: at[f] ends where f's edges start. */
    for (int32_t e = 0; e < d->nedges; e++)
        x->at[(by_callee ? d->edges[e].callee : d->edges[e].caller) + 2]++;
    for (int32_t f = 2; f < d->nfns + 2; f++)
        x->at[f] += x->at[f - 1];
    for (int32_t e = 0; e < d->nedges; e++)
        x->edge[x->at[(by_callee ? d->edges[e].callee
                                 : d->edges[e].caller) + 1]++] = e;
    return 0;
}

/* A function's callers (from the index by callee) or callees (by
 * caller); on_page[f]: f's call-graph section is on the page (with --top,
 * not all are), so a link to it leads somewhere. */
static void html_calls(FILE *out, const struct prof_data *d, int32_t fn,
                       const struct edge_index *x, bool callers,
                       const bool *on_page)
{
    uint64_t sum = 0;
    for (int32_t k = x->at[fn]; k < x->at[fn + 1]; k++)
        sum += d->edges[x->edge[k]].count;
    if (sum == 0)
        return;
    fprintf(out, "<tr><td></td><td class=\"n\"><i>%s</i></td></tr>\n",
            callers ? "called by" : "calls");
    for (int32_t k = x->at[fn]; k < x->at[fn + 1]; k++) {
        const struct prof_edge *ed = &d->edges[x->edge[k]];
        int32_t other = callers ? ed->caller : ed->callee;
        fprintf(out, "<tr><td>%" PRIu64 " (%.1f%%)</td><td class=\"n\">",
                ed->count, 100.0 * (double)ed->count / (double)sum);
        if (on_page[other])
            fprintf(out, "<a href=\"#f%d\">", (int)other);
        put_xml(out, d->fns[other].name, SIZE_MAX);
        fputs(on_page[other] ? "</a></td></tr>\n" : "</td></tr>\n", out);
    }
}

int prof_write_html(FILE *out, const struct prof_data *d,
                    const struct prof_render *r)
{
    struct report rp;
    if (report_begin(&rp, d, r) != 0)
        return -1;
    const int32_t *o = rp.order;
    const struct prof_coro *co = rp.coros;
    int64_t total = rp.total;
    bool inst = rp.inst;
    int32_t n = rp.shown;
    bool *on_page = calloc((size_t)d->nfns + 1, sizeof *on_page);
    struct edge_index by_callee = {0}, by_caller = {0};
    if (on_page == NULL || edge_index_build(&by_callee, d, true) != 0 ||
        edge_index_build(&by_caller, d, false) != 0)
        goto fail;
    for (int32_t k = 0; k < n; k++)
        on_page[o[k]] = true;
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>",
          out);
    put_xml(out, r->title, SIZE_MAX);
    fprintf(out, "</title><style>%s</style></head><body>\n<h1>", html_style);
    put_xml(out, r->title, SIZE_MAX);
    fputs("</h1>\n<p>", out);
    summary(out, d, total);
    fputs(". <a href=\"#callgraph\">Call graph</a>, "
          "<a href=\"#flame\">flame graph</a>, "
          "<a href=\"#coros\">coroutines</a>.</p>\n", out);

    fputs("<h2>Functions</h2><p>Click a heading to sort.</p>\n"
          "<table class=\"sortable\"><thead><tr>", out);
    if (inst)
        fputs("<th>calls</th>", out);
    fputs("<th>self ms</th><th>self %</th><th>total ms</th><th>total %</th>",
          out);
    if (inst)
        fputs("<th>self us/call</th><th>total us/call</th>", out);
    if (d->rusage)
        for (int j = 0; j < PROF_RU_N; j++)
            fprintf(out, "<th>%s</th>", prof_ru_names[j]);
    fputs("<th class=\"n\">function</th></tr></thead><tbody>\n", out);
    for (int32_t k = 0; k < n; k++) {
        const struct prof_fn *f = &d->fns[o[k]];
        fputs("<tr>", out);
        if (inst)
            fprintf(out, "<td>%" PRIu64 "</td>", f->calls);
        fprintf(out, "<td>%.3f</td><td>%.2f</td><td>%.3f</td><td>%.2f</td>",
                ms(d, f->excl), pct(f->excl, total), ms(d, f->incl),
                pct(f->incl, total));
        if (inst && f->calls > 0) {
            double c = (double)f->calls;
            fprintf(out, "<td>%.3f</td><td>%.3f</td>",
                    ms(d, f->excl) * 1e3 / c, ms(d, f->incl) * 1e3 / c);
        } else if (inst) {
            fputs("<td>-</td><td>-</td>", out);
        }
        if (d->rusage)
            for (int j = 0; j < PROF_RU_N; j++)
                fprintf(out, "<td>%" PRId64 "</td>", f->ru[j]);
        fprintf(out, "<td class=\"n\"><a href=\"#f%d\">", (int)o[k]);
        put_xml(out, f->name, SIZE_MAX);
        fputs("</a></td></tr>\n", out);
    }
    fputs("</tbody></table>\n", out);

    fprintf(out, "<h2 id=\"callgraph\">Call graph</h2><p>For each function, "
                 "its callers and callees with the %s of each (and its "
                 "share).</p>\n",
            inst ? "calls" : "samples");
    for (int32_t k = 0; k < n; k++) {
        const struct prof_fn *f = &d->fns[o[k]];
        fprintf(out, "<h3 id=\"f%d\">", (int)o[k]);
        put_xml(out, f->name, SIZE_MAX);
        fprintf(out, "</h3><table class=\"cg\"><tr><td>self %.2f%%, total "
                     "%.2f%%</td></tr>\n",
                pct(f->excl, total), pct(f->incl, total));
        html_calls(out, d, o[k], &by_callee, true, on_page);
        html_calls(out, d, o[k], &by_caller, false, on_page);
        fputs("</table>\n", out);
    }

    fputs("<h2 id=\"flame\">Flame graph</h2>\n", out);
    if (svg_body(out, d, r, false) != 0)
        goto fail;

    fputs("<h2 id=\"coros\">Coroutines</h2>\n<table class=\"sortable\">"
          "<thead><tr><th>id</th><th>charged ms</th><th>share %</th>"
          "<th>switches</th><th>run ms</th><th>max slice ms</th>"
          "<th>selfish yields</th><th>ended</th><th class=\"n\">name</th>"
          "</tr></thead><tbody>\n", out);
    for (int32_t k = 0; k < d->ncoros; k++) {
        const struct prof_coro *c = &co[k];
        fprintf(out,
                "<tr><td>%d</td><td>%.3f</td><td>%.2f</td><td>%" PRIu64
                "</td><td>%.3f</td><td>%.3f</td><td>%" PRIu64
                "</td><td>%" PRIu64 "</td><td class=\"n\">",
                c->id, ms(d, c->charged), pct(c->charged, total),
                c->switches, tick_ms(d, c->run_ticks),
                tick_ms(d, c->max_slice_ticks), c->selfish_yields, c->ended);
        put_xml(out, c->name, SIZE_MAX);
        fputs("</td></tr>\n", out);
    }
    fprintf(out, "</tbody></table>\n<script>%s</script>\n</body></html>\n",
            html_script);
    free(on_page);
    edge_index_free(&by_callee);
    edge_index_free(&by_caller);
    report_end(&rp);
    return prof_stream_result(out);
fail:
    free(on_page);
    edge_index_free(&by_callee);
    edge_index_free(&by_caller);
    report_end(&rp);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Difference                                                          */

struct diff_row {
    const char *name;
    double old_ms, new_ms;
    double old_pct, new_pct;
    bool in_old, in_new; /* the function is in that profile */
};

static int cmp_diff(const void *pa, const void *pb)
{
    const struct diff_row *a = pa, *b = pb;
    double da = a->new_ms - a->old_ms, db = b->new_ms - b->old_ms;
    da = da < 0 ? -da : da;
    db = db < 0 ? -db : db;
    if (da != db)
        return da < db ? 1 : -1;
    return strcmp(a->name, b->name);
}

int prof_write_diff(FILE *out, const struct prof_data *old,
                    const struct prof_data *new_, int top)
{
    size_t cap = (size_t)old->nfns + (size_t)new_->nfns + 1;
    struct diff_row *rows = calloc(cap, sizeof *rows);
    if (rows == NULL)
        return -1;
    int64_t ot = prof_data_total(old), nt = prof_data_total(new_);
    size_t n = 0;
    for (int32_t i = 0; i < old->nfns; i++) {
        const struct prof_fn *f = &old->fns[i];
        int32_t j = prof_data_find(new_, f->name);
        const struct prof_fn *g = j >= 0 ? &new_->fns[j] : NULL;
        rows[n++] = (struct diff_row){
            f->name, ms(old, f->excl), g ? ms(new_, g->excl) : 0,
            pct(f->excl, ot), g ? pct(g->excl, nt) : 0, true, g != NULL};
    }
    for (int32_t j = 0; j < new_->nfns; j++) {
        const struct prof_fn *g = &new_->fns[j];
        if (prof_data_find(old, g->name) < 0)
            rows[n++] = (struct diff_row){g->name, 0, ms(new_, g->excl), 0,
                                          pct(g->excl, nt), false, true};
    }
    qsort(rows, n, sizeof *rows, cmp_diff);
    errno = 0;
    fputs("old: ", out);
    summary(out, old, ot);
    fputs("\nnew: ", out);
    summary(out, new_, nt);
    fputs("\n(self time by function, largest change first; shares are "
          "of each profile's total)\n\n", out);
    fprintf(out, "%11s %11s %11s %7s %7s  %-7s  %s\n", "old ms", "new ms",
            "delta ms", "old%", "new%", "", "function");
    size_t shown = top > 0 && (size_t)top < n ? (size_t)top : n;
    /* A change counts when it is over 5 % of the function's time and
     * over 0.1 % of the larger profile: noise on tiny figures is not. */
    double floor_ms = 1e-3 * (ms(old, ot) > ms(new_, nt) ? ms(old, ot)
                                                          : ms(new_, nt));
    for (size_t i = 0; i < shown; i++) {
        const struct diff_row *r = &rows[i];
        double delta = r->new_ms - r->old_ms;
        bool big = delta > floor_ms || -delta > floor_ms;
        const char *v = !r->in_old ? "new"
                        : !r->in_new ? "gone"
                        : big && r->new_ms > r->old_ms * 1.05 ? "slower"
                        : big && r->new_ms < r->old_ms * 0.95 ? "faster"
                                                              : "same";
        fprintf(out, "%11.3f %11.3f %+11.3f %6.1f%% %6.1f%%  %-7s  %s\n",
                r->old_ms, r->new_ms, r->new_ms - r->old_ms, r->old_pct,
                r->new_pct, v, r->name);
    }
    free(rows);
    return prof_stream_result(out);
}
