/*
 * The "profile" command: drives the profiler (<coro/profiler.h>) from the
 * console.  Reports are rendered into memory (the profiler renders from a
 * snapshot and never switches) and then sent, which may block this
 * session only; files go through coro_backdoor_open_output(), so only
 * into the directory the application named.
 */
#include "backdoor_internal.h"
#include "parse_internal.h"

#include <coro/profiler.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPORT_TOP_DEFAULT 20

/* Render fmt into memory and send it; 0, or -1 with errno. */
static int send_report(coro_backdoor_session_t *s, coro_prof_format_t fmt,
                       int top)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return -1;
    int rc = coro_prof_write(f, fmt, top);
    int saved = errno;
    if (fclose(f) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc == 0 && coro_backdoor_write(s, text, len) < 0) {
        rc = -1;
        saved = errno;
    }
    free(text);
    errno = saved;
    return rc;
}

/* Write fmt into the output directory's new file name. */
static int write_file(coro_backdoor_session_t *s, coro_prof_format_t fmt,
                      const char *name)
{
    int fd = coro_backdoor_open_output(s, name);
    if (fd < 0)
        return 0; /* the error line is written */
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    int rc = coro_prof_write(f, fmt, 0);
    int saved = errno;
    long size = ftell(f);
    if (fclose(f) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        char b[48];
        coro__bd_error(s, "writing '%s': %s",
                       coro__bd_shown(name, b, sizeof b), strerror(saved));
        return 0;
    }
    coro_backdoor_printf(s, "wrote %s (%ld bytes) in the output directory\n",
                         name, size);
    return 0;
}

/* profile start [sample [HZ] | instrument] */
static int start(coro_backdoor_session_t *s, int argc, char **argv)
{
    coro_prof_opts_t o = {0};
    char b[48];
    if (argc > 4)
        return coro__bd_usage(s, argv[0]);
    if (argc >= 3 && strcmp(argv[2], "instrument") == 0) {
        if (argc > 3)
            return coro__bd_usage(s, argv[0]);
        o.mode = CORO_PROF_INSTRUMENT;
    } else if (argc >= 3 && strcmp(argv[2], "sample") == 0) {
        o.mode = CORO_PROF_SAMPLE;
        int64_t hz;
        if (argc == 4) {
            if (coro__bd_parse_i64(argv[3], &hz) != 0 || hz < 1 ||
                hz > 10000) {
                coro__bd_error(s, "not a rate: '%s' (1..10000 Hz)",
                               coro__bd_shown(argv[3], b, sizeof b));
                return 0;
            }
            o.hz = (int)hz;
        }
    } else if (argc >= 3) {
        coro__bd_error(s, "no profiling mode '%s' (sample or instrument)",
                       coro__bd_shown(argv[2], b, sizeof b));
        return 0;
    }
    if (coro_prof_start(&o) != 0) {
        if (errno == EBUSY)
            coro__bd_error(s, "the profiler is running already");
        else
            coro__bd_error(s, "profile start: %s", strerror(errno));
        return 0;
    }
    if (o.mode == CORO_PROF_INSTRUMENT)
        coro_backdoor_printf(s, "profiling: instrumented functions (code "
                                "built with -finstrument-functions, and "
                                "regions)\n");
    else
        coro_backdoor_printf(s, "profiling: sampling at %d Hz of CPU time\n",
                             o.hz ? o.hz : 1000);
    return 0;
}

int coro__bd_cmd_profile(coro_backdoor_session_t *s, int argc, char **argv,
                         void *ud)
{
    (void)ud;
    const char *sub = argc >= 2 ? argv[1] : NULL;
    if (sub == NULL) {
        coro_backdoor_printf(s, "profiler: %s\n",
                             coro_prof_running() ? "running" : "stopped");
        return 0;
    }
    if (strcmp(sub, "start") == 0)
        return start(s, argc, argv);
    if (strcmp(sub, "stop") == 0 || strcmp(sub, "reset") == 0) {
        if (argc != 2)
            return coro__bd_usage(s, argv[0]);
        bool stop = sub[0] == 's';
        if ((stop ? coro_prof_stop() : coro_prof_reset()) != 0) {
            coro__bd_error(s, "profile %s: %s", sub,
                           errno == EINVAL && stop
                               ? "the profiler is not running"
                               : strerror(errno));
            return 0;
        }
        coro_backdoor_printf(s, stop ? "profiler stopped; the data is "
                                       "kept for reports\n"
                                     : "profile data dropped\n");
        return 0;
    }
    if (strcmp(sub, "report") == 0) {
        int64_t top = REPORT_TOP_DEFAULT;
        char b[48];
        if (argc > 3)
            return coro__bd_usage(s, argv[0]);
        if (argc == 3 &&
            (coro__bd_parse_i64(argv[2], &top) != 0 || top < 0 ||
             top > 100000)) {
            coro__bd_error(s, "not a count: '%s' (0 = all)",
                           coro__bd_shown(argv[2], b, sizeof b));
            return 0;
        }
        return send_report(s, CORO_PROF_TABLE, (int)top);
    }
    if (strcmp(sub, "folded") == 0) {
        if (argc != 2)
            return coro__bd_usage(s, argv[0]);
        return send_report(s, CORO_PROF_FOLDED, 0);
    }
    if (strcmp(sub, "flamegraph") == 0 || strcmp(sub, "html") == 0 ||
        strcmp(sub, "save") == 0) {
        if (argc != 3)
            return coro__bd_usage(s, argv[0]);
        coro_prof_format_t fmt = sub[0] == 'f'   ? CORO_PROF_SVG
                                 : sub[0] == 'h' ? CORO_PROF_HTML
                                                 : CORO_PROF_RAW;
        return write_file(s, fmt, argv[2]);
    }
    return coro__bd_usage(s, argv[0]);
}
