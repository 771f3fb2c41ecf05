/*
 * Application variables: "vars", "get NAME", "set NAME VALUE", and the
 * checks of coro_backdoor_add_var().  A value is parsed whole for its
 * type (parse.c) and checked against the variable's range before the
 * single store, so a refused "set" changes nothing.
 */
#include "backdoor_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The range "set" accepts for an integer variable. */
static void int_range(const coro_backdoor_var_t *v, int64_t *lo, int64_t *hi)
{
    if (v->min != 0 || v->max != 0) {
        *lo = v->min;
        *hi = v->max;
    } else if (v->type == CORO_BACKDOOR_INT) {
        *lo = INT_MIN;
        *hi = INT_MAX;
    } else if (v->type == CORO_BACKDOOR_UINT) {
        *lo = 0;
        *hi = UINT_MAX;
    } else {
        *lo = INT64_MIN;
        *hi = INT64_MAX;
    }
}

bool coro__bd_var_ok(const coro_backdoor_var_t *v)
{
    if (!coro__bd_name_ok(v->name) || v->ptr == NULL ||
        (v->flags & ~CORO_BACKDOOR_READONLY) != 0)
        return false;
    switch (v->type) {
    case CORO_BACKDOOR_INT:
    case CORO_BACKDOOR_UINT:
    case CORO_BACKDOOR_INT64: {
        if (v->min > v->max)
            return false;
        coro_backdoor_var_t full = *v;
        full.min = full.max = 0;
        int64_t lo, hi;
        int_range(&full, &lo, &hi);
        return v->min >= lo && v->max <= hi;
    }
    case CORO_BACKDOOR_DOUBLE:
        return isfinite(v->dmin) && isfinite(v->dmax) && v->dmin <= v->dmax;
    case CORO_BACKDOOR_BOOL:
        return true;
    case CORO_BACKDOOR_STRING:
        return v->size > 0;
    }
    return false;
}

static const char *type_name(coro_backdoor_type_t t)
{
    static const char *const names[] = {"?",      "int",  "int64", "uint",
                                        "double", "bool", "string"};
    return t >= 1 && t <= CORO_BACKDOOR_STRING ? names[t] : "?";
}

/* A double that reads back as the same value. */
static void format_double(double d, char *buf, size_t len)
{
    snprintf(buf, len, "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, len, "%.17g", d);
}

/* The value of v as "get" shows it; a string is quoted, with its
 * unprintable bytes escaped. */
static void format_value(const coro_backdoor_var_t *v, char *buf, size_t len)
{
    switch (v->type) {
    case CORO_BACKDOOR_INT:
        snprintf(buf, len, "%d", *(const int *)v->ptr);
        return;
    case CORO_BACKDOOR_INT64:
        snprintf(buf, len, "%" PRId64, *(const int64_t *)v->ptr);
        return;
    case CORO_BACKDOOR_UINT:
        snprintf(buf, len, "%u", *(const unsigned *)v->ptr);
        return;
    case CORO_BACKDOOR_DOUBLE:
        format_double(*(const double *)v->ptr, buf, len);
        return;
    case CORO_BACKDOOR_BOOL:
        snprintf(buf, len, "%s", *(const bool *)v->ptr ? "true" : "false");
        return;
    case CORO_BACKDOOR_STRING:
        break;
    }
    const unsigned char *p = v->ptr;
    size_t n = 0;
    buf[n++] = '"';
    /* Within the buffer's size even if the application forgot the NUL. */
    for (size_t i = 0; i < v->size && p[i] != '\0' && n + 6 < len; i++) {
        if (p[i] == '"' || p[i] == '\\')
            n += (size_t)snprintf(buf + n, len - n, "\\%c", p[i]);
        else if (p[i] < ' ' || p[i] > '~')
            n += (size_t)snprintf(buf + n, len - n, "\\x%02x", p[i]);
        else
            buf[n++] = (char)p[i];
    }
    buf[n++] = '"';
    buf[n] = '\0';
}

static coro_backdoor_var_t *var_arg(coro_backdoor_session_t *s,
                                    const char *name)
{
    for (size_t i = 0; i < s->bd->nvars; i++)
        if (strcmp(s->bd->vars[i].name, name) == 0)
            return &s->bd->vars[i];
    char b[48];
    coro__bd_error(s, "no variable '%s' (vars lists them)",
                   coro__bd_shown(name, b, sizeof b));
    return NULL;
}

int coro__bd_cmd_vars(coro_backdoor_session_t *s, int argc, char **argv,
                      void *ud)
{
    (void)ud;
    if (argc != 1)
        return coro__bd_usage(s, argv[0]);
    if (s->bd->nvars == 0)
        coro_backdoor_printf(s, "no variables\n");
    for (size_t i = 0; i < s->bd->nvars; i++) {
        const coro_backdoor_var_t *v = &s->bd->vars[i];
        char val[4200];
        format_value(v, val, sizeof val);
        coro_backdoor_printf(
            s, "%-16s %-6s %-3s %-20s %s\n", v->name, type_name(v->type),
            v->flags & CORO_BACKDOOR_READONLY ? "ro" : "rw", val, v->help);
    }
    return 0;
}

int coro__bd_cmd_get(coro_backdoor_session_t *s, int argc, char **argv,
                     void *ud)
{
    (void)ud;
    if (argc != 2)
        return coro__bd_usage(s, argv[0]);
    const coro_backdoor_var_t *v = var_arg(s, argv[1]);
    if (v != NULL) {
        char val[4200];
        format_value(v, val, sizeof val);
        coro_backdoor_printf(s, "%s = %s\n", v->name, val);
    }
    return 0;
}

/* Parse text for v and store it; 0, or -1 after an error line. */
static int store(coro_backdoor_session_t *s, coro_backdoor_var_t *v,
                 const char *text)
{
    int64_t i, lo, hi;
    double d;
    bool b;
    switch (v->type) {
    case CORO_BACKDOOR_INT:
    case CORO_BACKDOOR_INT64:
    case CORO_BACKDOOR_UINT:
        int_range(v, &lo, &hi);
        if (coro__bd_parse_i64(text, &i) != 0 || i < lo || i > hi) {
            coro__bd_error(s, "%s wants an integer in %" PRId64 "..%" PRId64,
                           v->name, lo, hi);
            return -1;
        }
        if (v->type == CORO_BACKDOOR_INT)
            *(int *)v->ptr = (int)i;
        else if (v->type == CORO_BACKDOOR_UINT)
            *(unsigned *)v->ptr = (unsigned)i;
        else
            *(int64_t *)v->ptr = i;
        return 0;
    case CORO_BACKDOOR_DOUBLE: {
        bool ranged = v->dmin != 0 || v->dmax != 0;
        if (coro__bd_parse_double(text, &d) != 0 ||
            (ranged && (d < v->dmin || d > v->dmax))) {
            char a[32], z[32];
            format_double(v->dmin, a, sizeof a);
            format_double(v->dmax, z, sizeof z);
            if (ranged)
                coro__bd_error(s, "%s wants a number in %s..%s", v->name, a, z);
            else
                coro__bd_error(s, "%s wants a finite number", v->name);
            return -1;
        }
        *(double *)v->ptr = d;
        return 0;
    }
    case CORO_BACKDOOR_BOOL:
        if (coro__bd_parse_bool(text, &b) != 0) {
            coro__bd_error(s, "%s wants true or false (on/off, yes/no, 1/0)",
                           v->name);
            return -1;
        }
        *(bool *)v->ptr = b;
        return 0;
    case CORO_BACKDOOR_STRING:
        if (strlen(text) >= v->size) {
            coro__bd_error(s, "%s holds at most %zu bytes", v->name,
                           v->size - 1);
            return -1;
        }
        memcpy(v->ptr, text, strlen(text) + 1);
        return 0;
    }
    return -1;
}

int coro__bd_cmd_set(coro_backdoor_session_t *s, int argc, char **argv,
                     void *ud)
{
    (void)ud;
    if (argc != 3)
        return coro__bd_usage(s, argv[0]);
    coro_backdoor_var_t *v = var_arg(s, argv[1]);
    if (v == NULL)
        return 0;
    if (v->flags & CORO_BACKDOOR_READONLY) {
        coro__bd_error(s, "%s is read-only", v->name);
        return 0;
    }
    char was[4200], now[4200];
    format_value(v, was, sizeof was);
    if (store(s, v, argv[2]) != 0)
        return 0;
    format_value(v, now, sizeof now);
    coro_backdoor_printf(s, "%s = %s (was %s)\n", v->name, now, was);
    return 0;
}
