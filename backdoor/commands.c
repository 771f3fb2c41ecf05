/*
 * The built-in commands: the table, the dispatcher and the handlers that
 * only read or set the runtime's state through coro's public API.
 *
 * None of them reads or writes memory the user names: coroutines are
 * named by id and looked up with coro_by_id(), settings go through their
 * setters (which check ranges), variables through vars.c.
 *
 * Commands that walk every coroutine (ps, where all) take a snapshot of
 * the ids first: writing to the client may block, other coroutines then
 * run and end, and coro_foreach() must not see that happen.
 */
#include "backdoor_internal.h"

#include <tsc_time/tsc_time.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Frames "where" shows at most. */
#define WHERE_FRAMES 64

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

const char *coro__bd_shown(const char *w, char *buf, size_t len)
{
    size_t n = 0;
    for (; *w != '\0' && n + 4 < len && n < 40; w++)
        buf[n++] = *w >= ' ' && *w <= '~' ? *w : '?';
    if (*w != '\0')
        buf[n++] = '.', buf[n++] = '.', buf[n++] = '.';
    buf[n] = '\0';
    return buf;
}

static double ms_of(int64_t ticks)
{
    return (double)tsc_ticks_to_usec(ticks) / 1000.0;
}

/* "what at file:line in func()", "what at sym+0x1c (module)", or "-". */
static void format_wait(const coro_info_t *in, char *buf, size_t len)
{
    if (in->wait_what == NULL) {
        snprintf(buf, len, "-");
    } else if (in->wait_site.file != NULL) {
        snprintf(buf, len, "%s at %s:%d in %s()", in->wait_what,
                 in->wait_site.file, in->wait_site.line,
                 in->wait_site.func ? in->wait_site.func : "?");
    } else if (in->wait_addr != NULL) {
        char sym[256];
        coro_symbolize(in->wait_addr, true, sym, sizeof sym);
        snprintf(buf, len, "%s at %s", in->wait_what, sym);
    } else {
        snprintf(buf, len, "%s", in->wait_what);
    }
}

struct ids {
    int *v;
    size_t n, cap;
    bool nomem;
};

static int collect(coro_t *co, void *arg)
{
    struct ids *ids = arg;
    if (ids->n == ids->cap) {
        size_t cap = ids->cap * 2 + 64;
        int *v = realloc(ids->v, cap * sizeof *v);
        if (v == NULL) {
            ids->nomem = true;
            return 1;
        }
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = coro_id(co);
    return 0;
}

/* The ids of every coroutine now; 0, or -1 with errno ENOMEM. */
static int snapshot(struct ids *ids)
{
    *ids = (struct ids){.v = NULL};
    coro_foreach(collect, ids);
    if (ids->nomem) {
        free(ids->v);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* A coroutine id argument; NULL (with an error line) if there is none. */
static coro_t *coroutine_arg(coro_backdoor_session_t *s, const char *w)
{
    int64_t id;
    char b[48];
    if (coro__bd_parse_i64(w, &id) != 0 || id < 1 || id > INT32_MAX) {
        coro__bd_error(s, "not a coroutine id: '%s'",
                       coro__bd_shown(w, b, sizeof b));
        return NULL;
    }
    coro_t *co = coro_by_id((int)id);
    if (co == NULL)
        coro__bd_error(s, "no coroutine #%" PRId64, id);
    return co;
}

int coro__bd_usage(coro_backdoor_session_t *s, const char *name)
{
    const struct coro__bd_cmd *c = coro__bd_find_cmd(s->bd, name);
    coro__bd_error(s, "usage: %s", c != NULL ? c->usage : name);
    return 0;
}

/* ------------------------------------------------------------------ */
/* help, quit                                                          */

static int cmd_help(coro_backdoor_session_t *s, int argc, char **argv, void *ud)
{
    (void)ud;
    if (argc > 2)
        return coro__bd_usage(s, argv[0]);
    if (argc == 2) {
        char b[48];
        const struct coro__bd_cmd *c = coro__bd_find_cmd(s->bd, argv[1]);
        if (c == NULL)
            coro__bd_error(s, "no command '%s'",
                           coro__bd_shown(argv[1], b, sizeof b));
        else
            coro_backdoor_printf(s, "usage: %s\n  %s\n", c->usage, c->help);
        return 0;
    }
    for (size_t i = 0; i < coro__bd_builtin_count; i++)
        coro_backdoor_printf(s, "%-10s %s\n", coro__bd_builtins[i].name,
                             coro__bd_builtins[i].help);
    for (size_t i = 0; i < s->bd->ncmds; i++)
        coro_backdoor_printf(s, "%-10s %s\n", s->bd->cmds[i].name,
                             s->bd->cmds[i].help);
    return 0;
}

static int cmd_quit(coro_backdoor_session_t *s, int argc, char **argv, void *ud)
{
    (void)ud;
    if (argc != 1)
        return coro__bd_usage(s, argv[0]);
    coro_backdoor_printf(s, "bye\n");
    s->closing = true;
    return 0;
}

/* ------------------------------------------------------------------ */
/* ps, where                                                           */

static int cmd_ps(coro_backdoor_session_t *s, int argc, char **argv, void *ud)
{
    (void)ud;
    if (argc != 1)
        return coro__bd_usage(s, argv[0]);
    struct ids ids;
    if (snapshot(&ids) != 0)
        return -1;
    coro_backdoor_printf(s, "%6s %-8s %10s %9s %8s %-20s %s\n", "ID", "STATE",
                         "RUN_MS", "SWITCHES", "MAX_MS", "NAME", "WAITS IN");
    size_t shown_n = 0;
    for (size_t i = 0; i < ids.n && !s->broken; i++) {
        coro_t *co = coro_by_id(ids.v[i]);
        coro_info_t in;
        if (co == NULL || coro_info(co, &in) != 0)
            continue; /* ended while we were writing */
        char wait[512];
        format_wait(&in, wait, sizeof wait);
        coro_backdoor_printf(s,
                             "%6d %-8s %10.3f %9" PRIu64 " %8.3f %-20s %s%s\n",
                             in.id, coro_state_name(in.state), ms_of(in.run_ticks),
                             in.switches, ms_of(in.max_slice_ticks), in.name,
                             wait, co == s->co ? " (this session)" : "");
        shown_n++;
    }
    coro_backdoor_printf(s, "%zu coroutines\n", shown_n);
    free(ids.v);
    return 0;
}

/* The header and call stack of one coroutine. */
static void where_one(coro_backdoor_session_t *s, coro_t *co)
{
    coro_info_t in;
    if (coro_info(co, &in) != 0)
        return;
    char wait[512];
    format_wait(&in, wait, sizeof wait);
    coro_backdoor_printf(s, "#%d '%s' %s%s: %s\n", in.id, in.name,
                         coro_state_name(in.state),
                         co == s->co ? " (this session)" : "", wait);
    if (in.state == CORO_NEW || in.switches == 0) {
        coro_backdoor_printf(s, "  (not started: nothing on its stack)\n");
        return;
    }
    if (in.state == CORO_DEAD) {
        coro_backdoor_printf(s, "  (ended)\n");
        return;
    }
    void *pcs[WHERE_FRAMES];
    int n = coro_backtrace(co, pcs, WHERE_FRAMES);
    if (n < 0) {
        coro__bd_error(s, "backtrace: %s", strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        char sym[256];
        coro_symbolize(pcs[i], true, sym, sizeof sym);
        coro_backdoor_printf(s, "  #%-2d %p %s\n", i, pcs[i], sym);
    }
}

static int cmd_where(coro_backdoor_session_t *s, int argc, char **argv,
                     void *ud)
{
    (void)ud;
    if (argc != 2)
        return coro__bd_usage(s, argv[0]);
    if (strcmp(argv[1], "all") != 0) {
        coro_t *co = coroutine_arg(s, argv[1]);
        if (co != NULL)
            where_one(s, co);
        return 0;
    }
    struct ids ids;
    if (snapshot(&ids) != 0)
        return -1;
    for (size_t i = 0; i < ids.n && !s->broken; i++) {
        coro_t *co = coro_by_id(ids.v[i]);
        if (co == NULL)
            continue;
        if (i > 0)
            coro_backdoor_printf(s, "\n");
        where_one(s, co);
    }
    free(ids.v);
    return 0;
}

/* ------------------------------------------------------------------ */
/* interrupt                                                           */

static int cmd_interrupt(coro_backdoor_session_t *s, int argc, char **argv,
                         void *ud)
{
    (void)ud;
    if (argc != 2 && argc != 3)
        return coro__bd_usage(s, argv[0]);
    coro_t *co = coroutine_arg(s, argv[1]);
    if (co == NULL)
        return 0;
    int err = EINTR; /* Shrapnel's interrupt() raises Interrupted */
    char b[48];
    if (argc == 3 && (err = coro__bd_errno_of(argv[2])) < 0) {
        coro__bd_error(s,
                       "not an errno: '%s' (a name like ECANCELED, or "
                       "1..4095)",
                       coro__bd_shown(argv[2], b, sizeof b));
        return 0;
    }
    if (coro__bd_owns(s->bd, co)) {
        coro__bd_error(s,
                       "#%s is the backdoor's own coroutine (quit ends a "
                       "session)",
                       argv[1]);
        return 0;
    }
    if (coro_state(co) == CORO_DEAD) {
        coro__bd_error(s, "#%s has ended", argv[1]);
        return 0;
    }
    if (coro_interrupt(co, err) != 0)
        return -1;
    const char *name = coro__bd_errno_name(err);
    coro_backdoor_printf(s, "interrupted #%d '%s' with %s%s(%d)\n", coro_id(co),
                         coro_name(co), name ? name : "", name ? " " : "", err);
    return 0;
}

/* ------------------------------------------------------------------ */
/* stats, latency, selfish                                             */

/* When the process started, as near as a library can tell: at load. */
static struct timespec load_time;

__attribute__((constructor)) static void note_load_time(void)
{
    clock_gettime(CLOCK_MONOTONIC, &load_time);
}

static double since_load_sec(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - load_time.tv_sec) +
           (double)(now.tv_nsec - load_time.tv_nsec) / 1e9;
}

/* Resident set size in bytes from /proc (a read of a few bytes that
 * never blocks), or -1 where there is none. */
static long long rss_bytes(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    long long size, resident;
    if (sscanf(buf, "%lld %lld", &size, &resident) != 2)
        return -1;
    return resident * sysconf(_SC_PAGESIZE);
}

static void print_latency(coro_backdoor_session_t *s, double f)
{
    if (f == 0)
        coro_backdoor_printf(s, "latency warnings: off");
    else
        coro_backdoor_printf(s,
                             "latency warnings: factor %g (slices over "
                             "%g ms)",
                             f, f * 200);
}

static int cmd_stats(coro_backdoor_session_t *s, int argc, char **argv,
                     void *ud)
{
    (void)ud;
    if (argc != 1)
        return coro__bd_usage(s, argv[0]);
    coro_stats_t st;
    if (coro_stats(&st) != 0)
        return -1;
    coro_backdoor_t *bd = s->bd;
    coro_backdoor_printf(s, "uptime       %.1f s\n", since_load_sec());
    coro_backdoor_printf(s, "backdoor     up %.1f s, %d of %d sessions",
                         tsc_ticks_to_sec(coro_now() - bd->start_ticks),
                         bd->nsessions, bd->max_sessions);
    if (bd->npending > 0)
        coro_backdoor_printf(s, ", %d logging in", bd->npending);
    coro_backdoor_printf(s, "\n");
    coro_backdoor_printf(s, "coroutines   %zu (%zu runnable)\n", st.coroutines,
                         st.runnable);
    coro_backdoor_printf(s, "loop passes  %" PRIu64 "\n", st.loop_passes);
    coro_backdoor_printf(s, "switches     %" PRIu64 "\n", st.switches);
    coro_backdoor_printf(s, "io events    %" PRIu64 "\n", st.io_events);
    coro_backdoor_printf(s, "timers       %zu pending\n", st.timers);
    coro_backdoor_printf(s, "fds          %zu watched, %zu waiters\n",
                         st.fds_watched, st.fd_waiters);
    coro_backdoor_printf(s,
                         "stacks       %zu in use, %zu cached, %zu "
                         "guard pages\n",
                         st.stacks_in_use, st.stacks_cached, st.stacks_guarded);
    long long rss = rss_bytes();
    if (rss < 0)
        coro_backdoor_printf(s, "rss          n/a\n");
    else
        coro_backdoor_printf(s, "rss          %.1f MiB\n",
                             (double)rss / (1024 * 1024));
    coro_backdoor_printf(s, "poller       %s\n", coro_poller_name());
    coro_backdoor_printf(s, "latency      ");
    print_latency(s, coro_latency_warning());
    coro_backdoor_printf(s, "\nselfishness  %d acts\n", coro_selfishness());
    return 0;
}

static int cmd_latency(coro_backdoor_session_t *s, int argc, char **argv,
                       void *ud)
{
    (void)ud;
    if (argc > 2)
        return coro__bd_usage(s, argv[0]);
    if (argc == 1) {
        print_latency(s, coro_latency_warning());
        coro_backdoor_printf(s, "\n");
        return 0;
    }
    double f, prev;
    char b[48];
    if (coro__bd_parse_double(argv[1], &f) != 0 ||
        (prev = coro_set_latency_warning(f)) < 0) {
        coro__bd_error(s,
                       "not a factor: '%s' (0 turns warnings off, 1 is "
                       "200 ms, at most 1e6)",
                       coro__bd_shown(argv[1], b, sizeof b));
        return 0;
    }
    print_latency(s, f);
    coro_backdoor_printf(s, "; was %g\n", prev);
    return 0;
}

static int cmd_selfish(coro_backdoor_session_t *s, int argc, char **argv,
                       void *ud)
{
    (void)ud;
    if (argc > 2)
        return coro__bd_usage(s, argv[0]);
    if (argc == 1) {
        coro_backdoor_printf(s,
                             "selfishness: %d acts in a row before a "
                             "forced yield (new coroutines)\n",
                             coro_selfishness());
        return 0;
    }
    int64_t n;
    int prev;
    char b[48];
    if (coro__bd_parse_i64(argv[1], &n) != 0 || n < 1 || n > 32768 ||
        (prev = coro_set_selfishness((int)n)) < 0) {
        coro__bd_error(s, "not a count: '%s' (1..32768)",
                       coro__bd_shown(argv[1], b, sizeof b));
        return 0;
    }
    coro_backdoor_printf(s, "selfishness: %d acts (new coroutines); was %d\n",
                         (int)n, prev);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The table and the dispatcher                                        */

/* One entry per built-in command, in the order "help" lists them. */
const struct coro__bd_cmd coro__bd_builtins[] = {
    {"help", "help [COMMAND]", "list the commands, or show one's usage",
     cmd_help, NULL},
    {"ps", "ps",
     "every coroutine: id, state, run time, switches, longest slice, "
     "where it waits",
     cmd_ps, NULL},
    {"where", "where ID|all",
     "the call stack of coroutine ID (or of each), symbolized", cmd_where,
     NULL},
    {"interrupt", "interrupt ID [ERRNO]",
     "make coroutine ID's blocking call fail with ERRNO (default EINTR)",
     cmd_interrupt, NULL},
    {"stats", "stats",
     "uptime, loop passes, events, switches, timers, fds, RSS, stacks",
     cmd_stats, NULL},
    {"latency", "latency [FACTOR]",
     "show or set the latency warning factor (1 = 200 ms, 0 = off)",
     cmd_latency, NULL},
    {"selfish", "selfish [N]",
     "show or set the selfish acts new coroutines get before a yield",
     cmd_selfish, NULL},
    {"profile",
     "profile [start [sample [HZ]|instrument]|stop|reset|report [N]|folded|"
     "flamegraph FILE|html FILE|save FILE]",
     "the profiler: start, stop, a report of the top N functions, folded "
     "stacks, or a flame graph, HTML page or profile saved as FILE",
     coro__bd_cmd_profile, NULL},
    {"log", "log", "stream the program's log lines here until a key is pressed",
     coro__bd_cmd_log, NULL},
    {"vars", "vars", "the application's variables, with type and value",
     coro__bd_cmd_vars, NULL},
    {"get", "get NAME", "show one variable", coro__bd_cmd_get, NULL},
    {"set", "set NAME VALUE", "change a writable variable (range-checked)",
     coro__bd_cmd_set, NULL},
    {"quit", "quit", "end this session (so do ^D and EOF)", cmd_quit, NULL},
};
const size_t coro__bd_builtin_count =
    sizeof coro__bd_builtins / sizeof coro__bd_builtins[0];

void coro__bd_run_line(coro_backdoor_session_t *s, char *line)
{
    char *argv[CORO__BD_ARGS_MAX + 1];
    const char *err;
    int argc = coro__bd_split(line, argv, CORO__BD_ARGS_MAX, &err);
    if (argc < 0) {
        coro__bd_error(s, "%s", err);
        return;
    }
    if (argc == 0)
        return;
    const struct coro__bd_cmd *found = coro__bd_find_cmd(s->bd, argv[0]);
    char b[48];
    if (found == NULL) {
        coro__bd_error(s, "unknown command '%s' (help lists them)",
                       coro__bd_shown(argv[0], b, sizeof b));
        return;
    }
    /* A copy: the handler may remove commands, moving the table. */
    struct coro__bd_cmd c = *found;
    errno = 0;
    if (c.fn(s, argc, argv, c.ud) != 0 && !s->broken)
        coro__bd_error(s, "%s: %s", coro__bd_shown(argv[0], b, sizeof b),
                       strerror(errno ? errno : EIO));
}
