/*
 * coro-prof: render a profile saved by coro_prof_save(), or compare two.
 *
 *   coro-prof table|folded|svg|html FILE [--top N] [--sort self|total|calls]
 *                                        [--title TEXT] [-o OUT]
 *   coro-prof diff OLD NEW [--top N] [-o OUT]
 *
 * Exit status: 0 done, 1 a file could not be read or written, 2 usage.
 */
#include "prof_internal.h"
#include "profiler.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: coro-prof table|folded|svg|html FILE [options]\n"
    "       coro-prof diff OLD NEW [options]\n"
    "Render a profile saved by coro_prof_save() (or httpd --profile):\n"
    "  table   functions sorted by self time, then the coroutines\n"
    "  folded  one line per stack, frames separated by ';', then the count\n"
    "          (what flame-graph tools read)\n"
    "  svg     a flame graph, one self-contained SVG file\n"
    "  html    a page with the sortable table, call graph and flame graph\n"
    "  diff    self time by function, OLD against NEW, largest change "
    "first\n"
    "options:\n"
    "  --top N        table, html, diff: the first N functions (default "
    "all)\n"
    "  --sort KEY     table, html: self (default), total or calls\n"
    "  --title TEXT   svg, html: the heading\n"
    "  -o, --output OUT  write to OUT instead of standard output\n"
    "  -h, --help     show this\n";

static int usage_error(const char *fmt, const char *arg)
{
    fputs("coro-prof: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n", stderr);
    fputs(usage_text, stderr);
    return 2;
}

static int load(const char *path, struct prof_data *d)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "coro-prof: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int line = 0;
    int rc = prof_read(f, d, &line);
    int err = errno;
    if (f != stdin)
        fclose(f);
    if (rc != 0) {
        if (err == EINVAL)
            fprintf(stderr, "coro-prof: %s:%d: not a coro profile "
                            "(version %d) or a bad line\n",
                    path, line, PROF_FILE_VERSION);
        else
            fprintf(stderr, "coro-prof: %s: %s\n", path, strerror(err));
    }
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"top", required_argument, NULL, 't'},
        {"sort", required_argument, NULL, 's'},
        {"title", required_argument, NULL, 'T'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct prof_render r = {.top = 0, .sort = CORO_PROF_BY_SELF,
                            .title = "coro profile"};
    const char *output = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 't': {
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || end == optarg || errno != 0 || v < 0 ||
                v > 1000000000L)
                return usage_error("bad --top: %s", optarg);
            r.top = (int)v;
            break;
        }
        case 's':
            if (strcmp(optarg, "self") == 0)
                r.sort = CORO_PROF_BY_SELF;
            else if (strcmp(optarg, "total") == 0)
                r.sort = CORO_PROF_BY_TOTAL;
            else if (strcmp(optarg, "calls") == 0)
                r.sort = CORO_PROF_BY_CALLS;
            else
                return usage_error("bad --sort: %s", optarg);
            break;
        case 'T':
            r.title = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind >= argc)
        return usage_error("%s", "no command");
    const char *cmd = argv[optind++];
    bool diff = strcmp(cmd, "diff") == 0;
    if (!diff && strcmp(cmd, "table") != 0 && strcmp(cmd, "folded") != 0 &&
        strcmp(cmd, "svg") != 0 && strcmp(cmd, "html") != 0)
        return usage_error("unknown command: %s", cmd);
    if (argc - optind != (diff ? 2 : 1))
        return usage_error("%s: wrong number of files", cmd);

    struct prof_data a, b;
    if (load(argv[optind], &a) != 0)
        return 1;
    if (diff && load(argv[optind + 1], &b) != 0) {
        prof_data_free(&a);
        return 1;
    }
    FILE *out = output != NULL ? fopen(output, "w") : stdout;
    int rc = -1;
    if (out == NULL) {
        fprintf(stderr, "coro-prof: %s: %s\n", output, strerror(errno));
    } else {
        if (diff)
            rc = prof_write_diff(out, &a, &b, r.top);
        else if (strcmp(cmd, "table") == 0)
            rc = prof_write_table(out, &a, &r);
        else if (strcmp(cmd, "folded") == 0)
            rc = prof_write_folded(out, &a);
        else if (strcmp(cmd, "svg") == 0)
            rc = prof_write_svg(out, &a, &r);
        else
            rc = prof_write_html(out, &a, &r);
        if (rc != 0)
            fprintf(stderr, "coro-prof: writing %s: %s\n",
                    output != NULL ? output : "the output", strerror(errno));
        if (out != stdout && fclose(out) != 0 && rc == 0) {
            fprintf(stderr, "coro-prof: %s: %s\n", output, strerror(errno));
            rc = -1;
        }
    }
    prof_data_free(&a);
    if (diff)
        prof_data_free(&b);
    return rc == 0 ? 0 : 1;
}
