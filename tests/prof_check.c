#include "prof_check.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* The saved format                                                    */

static bool fail(const char *line, const char *why)
{
    fprintf(stderr, "profile: %s: %.80s\n", why, line);
    return false;
}

bool pc_parse(const char *text, struct pc_profile *p)
{
    memset(p, 0, sizeof *p);
    char *copy = strdup(text);
    if (copy == NULL)
        return false;
    bool ok = true, end = false;
    int n = 0;
    for (char *save, *l = strtok_r(copy, "\n", &save); l != NULL && ok;
         l = strtok_r(NULL, "\n", &save), n++) {
        int used = 0;
        if (n == 0) {
            ok = strcmp(l, "coro-profile 1") == 0 || fail(l, "header");
        } else if (sscanf(l, "mode %15s", p->mode) == 1) {
        } else if (sscanf(l, "hz %d", &p->hz) == 1) {
        } else if (sscanf(l, "ticks-per-sec %" SCNd64, &p->ticks_per_sec)) {
        } else if (sscanf(l, "duration-ticks %" SCNd64, &p->duration)) {
        } else if (!strncmp(l, "start-usec ", 11) ||
                   !strncmp(l, "dropped ", 8) || !strncmp(l, "rusage ", 7)) {
        } else if (!strncmp(l, "fn ", 3)) {
            struct pc_fn *f = &p->fns[p->nfns];
            int id;
            if (p->nfns == PC_MAX ||
                sscanf(l,
                       "fn %d %" SCNu64 " %" SCNd64 " %" SCNd64 " %" SCNd64
                       " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64
                       " %" SCNd64 " %n",
                       &id, &f->calls, &f->incl, &f->excl, &f->ru[0],
                       &f->ru[1], &f->ru[2], &f->ru[3], &f->ru[4], &f->ru[5],
                       &used) != 10 ||
                id != p->nfns || used == 0 || l[used] == '\0')
                ok = fail(l, "fn");
            else
                snprintf(f->name, sizeof f->name, "%s", l + used), p->nfns++;
        } else if (!strncmp(l, "edge ", 5)) {
            struct pc_edge *e = &p->edges[p->nedges];
            if (p->nedges == PC_MAX ||
                sscanf(l, "edge %d %d %" SCNu64, &e->caller, &e->callee,
                       &e->count) != 3 ||
                e->caller < 0 || e->caller >= p->nfns || e->callee < 0 ||
                e->callee >= p->nfns)
                ok = fail(l, "edge");
            else
                p->nedges++;
        } else if (!strncmp(l, "stack ", 6)) {
            int64_t w;
            if (sscanf(l, "stack %" SCNd64 " %n", &w, &used) != 1 ||
                used == 0 || w <= 0)
                ok = fail(l, "stack");
            for (char *q = l + used; ok && *q != '\0';) {
                char *e;
                long id = strtol(q, &e, 10);
                if (e == q || id < 0 || id >= p->nfns ||
                    (*e != ';' && *e != '\0'))
                    ok = fail(l, "stack frame");
                q = *e == ';' ? e + 1 : e;
            }
            p->nstacks++;
            p->stack_total += w;
        } else if (!strncmp(l, "coro ", 5)) {
            struct pc_coro *c = &p->coros[p->ncoros];
            if (p->ncoros == PC_MAX ||
                sscanf(l,
                       "coro %d %" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNd64
                       " %" SCNu64 " %" SCNd64 " %n",
                       &c->id, &c->ended, &c->switches, &c->run_ticks,
                       &c->max_slice, &c->selfish, &c->charged,
                       &used) != 7)
                ok = fail(l, "coro");
            else
                snprintf(c->name, sizeof c->name, "%s", l + used),
                    p->ncoros++;
        } else if (strcmp(l, "end") == 0) {
            end = true;
        } else {
            ok = fail(l, "unknown line");
        }
    }
    free(copy);
    return ok && (end || fail("", "no end line"));
}

const struct pc_fn *pc_fn(const struct pc_profile *p, const char *name)
{
    for (int i = 0; i < p->nfns; i++)
        if (strcmp(p->fns[i].name, name) == 0)
            return &p->fns[i];
    return NULL;
}

uint64_t pc_edge(const struct pc_profile *p, const char *caller,
                 const char *callee)
{
    for (int i = 0; i < p->nedges; i++)
        if (strcmp(p->fns[p->edges[i].caller].name, caller) == 0 &&
            strcmp(p->fns[p->edges[i].callee].name, callee) == 0)
            return p->edges[i].count;
    return 0;
}

int64_t pc_total(const struct pc_profile *p)
{
    int64_t t = 0;
    for (int i = 0; i < p->nfns; i++)
        t += p->fns[i].excl;
    return t;
}

/* ------------------------------------------------------------------ */
/* XML                                                                 */

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_' || c == ':' ||
           c == '.';
}

/* Character data or an attribute value up to stop: entities valid, no
 * '<' (and, in attributes, no '&' alone). */
static bool text_ok(const char **s, char stop)
{
    const char *p = *s;
    while (*p != '\0' && *p != stop) {
        if (*p == '<' && stop != '<')
            return false;
        if (*p == '&') {
            const char *semi = strchr(p, ';');
            if (semi == NULL || semi - p > 10)
                return false;
            size_t n = (size_t)(semi - p + 1);
            if (!(n == 5 && !strncmp(p, "&amp;", 5)) &&
                !(n == 4 && !strncmp(p, "&lt;", 4)) &&
                !(n == 4 && !strncmp(p, "&gt;", 4)) &&
                !(n == 6 && !strncmp(p, "&quot;", 6)) &&
                !(n == 6 && !strncmp(p, "&apos;", 6)) && p[1] != '#')
                return false;
            p = semi;
        }
        p++;
    }
    *s = p;
    return true;
}

bool xml_well_formed(const char *s, const char **why)
{
    const char *stack[256];
    size_t lens[256];
    int depth = 0, roots = 0;
    *why = "ok";
    if (strncmp(s, "<?xml", 5) == 0) {
        const char *e = strstr(s, "?>");
        if (e == NULL)
            return *why = "unterminated declaration", false;
        s = e + 2;
    }
    while (*s != '\0') {
        if (*s != '<') {
            if (!text_ok(&s, '<'))
                return *why = "bad character data", false;
            if (depth == 0) {
                /* only white space outside the root */
                continue;
            }
            continue;
        }
        if (strncmp(s, "<!--", 4) == 0) {
            const char *e = strstr(s, "-->");
            if (e == NULL)
                return *why = "unterminated comment", false;
            s = e + 3;
            continue;
        }
        if (s[1] == '/') {
            const char *n = s + 2, *e = n;
            while (name_char(*e))
                e++;
            if (depth == 0 || (size_t)(e - n) != lens[depth - 1] ||
                strncmp(n, stack[depth - 1], lens[depth - 1]) != 0 ||
                *e != '>')
                return *why = "mismatched end tag", false;
            depth--;
            s = e + 1;
            continue;
        }
        const char *n = s + 1, *e = n;
        while (name_char(*e))
            e++;
        if (e == n)
            return *why = "bad tag name", false;
        const char *p = e;
        for (;;) {
            while (*p == ' ' || *p == '\n' || *p == '\t')
                p++;
            if (*p == '>' || (p[0] == '/' && p[1] == '>'))
                break;
            const char *a = p;
            while (name_char(*p))
                p++;
            if (p == a || *p != '=' || (p[1] != '"' && p[1] != '\''))
                return *why = "bad attribute", false;
            char q = p[1];
            p += 2;
            if (!text_ok(&p, q) || *p != q)
                return *why = "bad attribute value", false;
            p++;
        }
        if (depth == 0 && ++roots > 1)
            return *why = "more than one root", false;
        if (*p == '/') {
            s = p + 2;
            continue;
        }
        if (depth == 256)
            return *why = "too deep", false;
        stack[depth] = n;
        lens[depth++] = (size_t)(e - n);
        s = p + 1;
    }
    if (depth != 0)
        return *why = "unclosed element", false;
    if (roots != 1)
        return *why = "no root element", false;
    return true;
}

/* ------------------------------------------------------------------ */
/* Folded stacks                                                       */

bool folded_ok(const char *text, int *lines, int64_t *sum)
{
    *lines = 0;
    *sum = 0;
    const char *l = text;
    while (*l != '\0') {
        const char *nl = strchr(l, '\n');
        if (nl == NULL)
            return false; /* every line ends with a newline */
        const char *sp = nl;
        while (sp > l && sp[-1] != ' ')
            sp--;
        if (sp == l || sp - 1 == l)
            return false; /* no frames */
        char *end;
        long long count = strtoll(sp, &end, 10);
        if (end != nl || count <= 0)
            return false;
        for (const char *f = l; f < sp - 1; f++) {
            /* frames are non-empty */
            if (*f == ';' && (f == l || f[-1] == ';' || f + 1 == sp - 1))
                return false;
        }
        (*lines)++;
        *sum += count;
        l = nl + 1;
    }
    return true;
}
