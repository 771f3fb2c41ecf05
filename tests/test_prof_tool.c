/*
 * coro-prof, the tool that renders saved profiles: each report from a
 * profile saved by the library, the difference of two, and its errors
 * (exit 1 for a file it cannot read, 2 for a usage error).
 */
#include "helpers.h"
#include "prof_check.h"

#include <coro/profiler.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(prof_tool, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 60);

static volatile uint64_t sink;

#define UNIT 100000

#define BURN(n) PROF_BURN(sink, n)

void tool_steady(void);
void tool_changed(long units);
int tool_work(void *arg);

__attribute__((noinline)) void tool_steady(void)
{
    BURN(2 * UNIT);
}

__attribute__((noinline)) void tool_changed(long units)
{
    BURN(units * UNIT);
}

/* arg: the units tool_changed burns per call. */
int tool_work(void *arg)
{
    for (int i = 0; i < 10; i++) {
        tool_steady();
        tool_changed((long)(intptr_t)arg);
        coro_yield();
    }
    return 0;
}

static char dir[] = "/tmp/coro-prof-tool-XXXXXX";

/* dir/name, dir made if need be. */
static const char *in_dir(const char *name)
{
    static char path[4][96];
    static int k;
    static bool made; /* not from dir's end: mkdtemp() may put an X there */
    if (!made)
        cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    made = true;
    char *p = path[k++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}

/* Profile tool_work with units per call into dir/name; the path. */
static const char *profile(const char *name, long units)
{
    const char *p = in_dir(name);
    coro_prof_opts_t o = {.mode = CORO_PROF_INSTRUMENT};
    cr_assert_eq(coro_prof_start(&o), 0);
    coro_spawn(tool_work, (void *)(intptr_t)units, "work");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    cr_assert_eq(coro_prof_save(p), 0);
    cr_assert_eq(coro_prof_reset(), 0);
    return p;
}

/* Run coro-prof with args (a shell word list); its standard output (and
 * error) in a string to free, its exit status in *status. */
static char *tool(const char *args, int *status)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", CORO_PROF_BIN, args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(m);
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(prof_tool, renders_a_saved_profile_as_table_folded_svg_and_html)
{
    SKIP_UNDER_TSAN("forks a child while the clock thread runs");
    const char *p = profile("a.prof", 6); /* three times tool_steady */
    char args[256];
    int st;

    snprintf(args, sizeof args, "table '%s' --top 4", p);
    char *out = tool(args, &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert_not_null(strstr(out, "coro profile: instrumenting"), "%s", out);
    char *c = strstr(out, "tool_changed"), *s = strstr(out, "tool_steady");
    cr_assert(c != NULL && s != NULL && c < s, "by self time:\n%s", out);
    cr_assert_not_null(strstr(out, "work (1 ended)"));
    free(out);

    snprintf(args, sizeof args, "folded '%s'", p);
    out = tool(args, &st);
    cr_assert_eq(st, 0);
    int lines;
    int64_t sum;
    cr_assert(folded_ok(out, &lines, &sum), "%s", out);
    cr_assert_not_null(strstr(out, "tool_work;tool_changed "), "%s", out);
    free(out);

    snprintf(args, sizeof args, "svg '%s' --title 'a <test>'", p);
    out = tool(args, &st);
    cr_assert_eq(st, 0);
    const char *why;
    cr_assert(xml_well_formed(out, &why), "%s", why);
    cr_assert_not_null(strstr(out, ">a &lt;test&gt;</text>"));
    free(out);

    snprintf(args, sizeof args, "html '%s' --sort total -o '%s/a.html'", p,
             dir);
    out = tool(args, &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert_str_eq(out, "", "-o: nothing on standard output");
    free(out);
    snprintf(args, sizeof args, "%s/a.html", dir);
    FILE *f = fopen(args, "r");
    cr_assert_not_null(f);
    char page[1 << 16];
    size_t n = fread(page, 1, sizeof page - 1, f);
    page[n] = '\0';
    fclose(f);
    cr_assert_not_null(strstr(page, "<!DOCTYPE html>"));
    cr_assert_not_null(strstr(page, "id=\"callgraph\""));
    cr_assert_not_null(strstr(page, "</html>"));
    cleanup();
}

Test(prof_tool, diff_tells_what_got_slower_by_function)
{
    SKIP_UNDER_TSAN("forks a child while the clock thread runs");
    const char *old = profile("old.prof", 1);
    const char *new = profile("new.prof", 8);
    char args[256];
    int st;
    snprintf(args, sizeof args, "diff '%s' '%s'", old, new);
    char *out = tool(args, &st);
    cr_assert_eq(st, 0, "%s", out);
    /* The largest change comes first: tool_changed, 8 times slower. */
    char *first = strstr(out, "function\n");
    cr_assert_not_null(first, "%s", out);
    char *nl = strchr(first + 9, '\n');
    cr_assert_not_null(nl);
    *nl = '\0';
    cr_assert_not_null(strstr(first, "slower"), "%s", first);
    cr_assert_not_null(strstr(first, "tool_changed"), "%s", first);
    free(out);

    snprintf(args, sizeof args, "diff '%s' '%s'", new, old);
    out = tool(args, &st);
    cr_assert_eq(st, 0);
    cr_assert_not_null(strstr(out, "faster   tool_changed"), "%s", out);
    free(out);
    cleanup();
}

Test(prof_tool, bad_usage_exits_2_and_bad_files_exit_1)
{
    SKIP_UNDER_TSAN("forks a child while the clock thread runs");
    int st;
    char *out = tool("--help", &st);
    cr_assert_eq(st, 0);
    cr_assert_not_null(strstr(out, "usage: coro-prof"));
    free(out);
    static const char *const usage_errors[] = {
        "", "frobnicate x", "table", "diff onlyone", "table x --top -3",
        "table x --sort sideways", "table x --bogus"};
    for (size_t i = 0; i < sizeof usage_errors / sizeof *usage_errors;
         i++) {
        out = tool(usage_errors[i], &st);
        cr_assert_eq(st, 2, "coro-prof %s: %s", usage_errors[i], out);
        cr_assert_not_null(strstr(out, "usage: coro-prof"), "%s", out);
        free(out);
    }
    out = tool("table /nonexistent/p.prof", &st);
    cr_assert_eq(st, 1);
    cr_assert_not_null(strstr(out, "No such file"), "%s", out);
    free(out);

    /* A profile cut short, one of another version, and an empty file
     * are refused, naming the line. */
    const char *p = profile("c.prof", 1);
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    char *line12 = text;
    for (int i = 0; i < 12; i++)
        line12 = strchr(line12, '\n') + 1;
    char path[128], args[256];
    snprintf(path, sizeof path, "%s/cut.prof", dir);
    f = fopen(path, "w");
    fwrite(text, 1, (size_t)(line12 - text), f);
    fclose(f);
    snprintf(args, sizeof args, "table '%s'", path);
    out = tool(args, &st);
    cr_assert_eq(st, 1, "%s", out);
    cr_assert_not_null(strstr(out, "cut.prof:13: not a coro profile"), "%s",
                       out);
    free(out);
    text[strlen("coro-profile ")] = '9';
    snprintf(path, sizeof path, "%s/v9.prof", dir);
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    snprintf(args, sizeof args, "table '%s'", path);
    out = tool(args, &st);
    cr_assert_eq(st, 1, "%s", out);
    cr_assert_not_null(strstr(out, "v9.prof:1: not a coro profile"), "%s",
                       out);
    free(out);
    out = tool("table /dev/null", &st);
    cr_assert_eq(st, 1, "%s", out);
    free(out);
    cleanup();
}

static int empty_region(void *arg)
{
    (void)arg;
    coro_prof_region_begin("");
    tool_steady();
    coro_prof_region_end();
    return 0;
}

Test(prof_tool, empty_names_read_back)
{
    SKIP_UNDER_TSAN("forks a child while the clock thread runs");
    coro_prof_opts_t o = {.mode = CORO_PROF_INSTRUMENT};
    cr_assert_eq(coro_prof_start(&o), 0);
    cr_assert_not_null(coro_spawn(empty_region, NULL, "")); /* a row too */
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_prof_stop(), 0);
    const char *p = in_dir("empty.prof");
    cr_assert_eq(coro_prof_save(p), 0);
    cr_assert_eq(coro_prof_reset(), 0);
    char args[256];
    int st;
    snprintf(args, sizeof args, "table '%s'", p);
    char *out = tool(args, &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert_not_null(strstr(out, "  \"\"\n"), "the region: %s", out);
    cr_assert_not_null(strstr(out, "  \"\" (1 ended)"), "the row: %s", out);
    free(out);
    cleanup();
}

/* A profile of the header's lines then body, in dir; its path. */
static const char *hostile(const char *name, const char *mode, const char *hz,
                           const char *tps, const char *body)
{
    const char *p = in_dir(name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "coro-profile 1\nmode %s\nhz %s\nticks-per-sec %s\n"
            "duration-ticks 1000\nstart-usec 1\ndropped 0\nrusage 0\n%send\n",
            mode, hz, tps, body);
    cr_assert_eq(fclose(f), 0);
    return p;
}

Test(prof_tool, numbers_out_of_range_are_refused_with_their_line)
{
    SKIP_UNDER_TSAN("forks a child while the clock thread runs");
    static const struct {
        const char *mode, *hz, *tps, *body;
        int line;
    } bad[] = {
        /* negative weights and counters */
        {"sample", "1000", "1000", "fn 0 0 -100 -100 0 0 0 0 0 0 a\n", 9},
        {"sample", "1000", "1000",
         "fn 0 0 1 1 0 0 0 0 0 0 a\nstack -1 0\n", 10},
        {"sample", "1000", "1000",
         "fn 0 0 1 1 0 0 0 0 0 0 a\ncoro 1 -1 0 0 0 0 0 x\n", 10},
        {"sample", "1000", "1000",
         "fn 0 0 1 1 0 0 0 0 0 0 a\ncoro -5 0 0 0 0 0 0 x\n", 10},
        {"instrument", "0", "1000", "fn 0 0 1 1 -3 0 0 0 0 0 a\n", 9},
        {"sample", "1000", "1000", "fn 0 0 +1 1 0 0 0 0 0 0 a\n", 9},
        /* the header: a rate that divides, a tick rate */
        {"sample", "0", "1000", "", 3},
        {"instrument", "1000", "1000", "", 3},
        {"sample", "1000", "0", "", 4},
        {"sample", "1000", "-1", "", 4},
        /* sums the reports make */
        {"sample", "1000", "1000",
         "fn 0 0 1 9223372036854775807 0 0 0 0 0 0 a\n"
         "fn 1 0 1 1 0 0 0 0 0 0 b\n", 10},
        {"sample", "1000", "1000",
         "fn 0 0 1 1 0 0 0 0 0 0 a\nstack 9223372036854775807 0\n"
         "stack 1 0\n", 11},
        {"sample", "1000", "1000",
         "fn 0 0 1 1 0 0 0 0 0 0 a\nedge 0 0 18446744073709551615\n"
         "edge 0 0 1\n", 11},
        /* past the field's type */
        {"sample", "1000", "1000",
         "fn 0 0 9223372036854775808 1 0 0 0 0 0 0 a\n", 9},
        {"sample", "1000", "1000",
         "fn 0 0 1 1 0 0 0 0 0 0 a\ncoro 2147483648 0 0 0 0 0 0 x\n", 10},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char name[32], args[256], want[64];
        snprintf(name, sizeof name, "bad%zu.prof", i);
        hostile(name, bad[i].mode, bad[i].hz, bad[i].tps, bad[i].body);
        snprintf(args, sizeof args, "table '%s/%s'", dir, name);
        int st;
        char *out = tool(args, &st);
        snprintf(want, sizeof want, "%s:%d: not a coro profile", name,
                 bad[i].line);
        cr_assert_eq(st, 1, "case %zu: %s", i, out);
        cr_assert_not_null(strstr(out, want), "case %zu: %s", i, out);
        free(out);
    }
    /* Counters written unsigned read back in their whole range. */
    const char *p = hostile(
        "u64.prof", "sample", "1000", "1000",
        "fn 0 18446744073709551615 1 1 0 0 0 0 0 0 a\n"
        "coro 0 18446744073709551615 18446744073709551615 0 0 "
        "18446744073709551615 0 x\n");
    char args[256];
    snprintf(args, sizeof args, "table '%s'", p);
    int st;
    char *out = tool(args, &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert_not_null(strstr(out, "x (18446744073709551615 ended)"), "%s",
                       out);
    free(out);
    cleanup();
}

/* A profile of n functions, each with its stack and called by the
 * first: wide for the flame graph, long for the call graph. */
static const char *big_profile(const char *name, int n)
{
    const char *p = in_dir(name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs("coro-profile 1\nmode sample\nhz 1000\nticks-per-sec 1000000000\n"
          "duration-ticks 1000000000\nstart-usec 1\ndropped 0\nrusage 0\n",
          f);
    for (int i = 0; i < n; i++)
        fprintf(f, "fn %d 0 1 1 0 0 0 0 0 0 f%08d\n", i, i);
    for (int i = 1; i < n; i++)
        fprintf(f, "edge 0 %d 1\nstack 1 0;%d\n", i, i);
    fputs("stack 1 0\nend\n", f);
    cr_assert_eq(fclose(f), 0);
    return p;
}

Test(prof_tool, large_profiles_render_in_about_linear_time)
{
    SKIP_UNDER_TSAN("forks a child while the clock thread runs");
    /* Each took minutes when lookups were linear scans (diff by name,
     * the flame graph's children, the page's callers and callees). */
    const char *p = big_profile("big.prof", 100000);
    static const char *const cmds[] = {"diff '%s' '%s' --top 5",
                                       "svg '%s' -o /dev/null",
                                       "html '%s' -o /dev/null"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        char args[512];
        snprintf(args, sizeof args, cmds[i], p, p);
        double t = mono_sec();
        int st;
        char *out = tool(args, &st);
        t = mono_sec() - t;
        cr_assert_eq(st, 0, "%s: %s", args, out);
        cr_assert_lt(t, 15.0, "%s: %.1f s", args, t);
        free(out);
    }
    cleanup();
}
