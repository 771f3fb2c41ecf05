/*
 * The backdoor console through real sessions: clients are coroutines of
 * the same loop that dial the unix socket or loopback TCP, send lines and
 * read until the prompt.  Every command's output, the token and its rate
 * limit, over-long lines, garbage and telnet negotiation, the session
 * cap, the idle timeout, clients that vanish or stop reading, application
 * commands and variables, the output directory, the unix socket's
 * placement and removal, and bad input to every public function.
 *
 * Every client wait is bounded (IO_SEC) so a console that stops answering
 * fails the test instead of hanging it; nothing sleeps to synchronize.
 */
#include "helpers.h"

#include <coro/backdoor.h>
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

TestSuite(backdoor, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 120);

/* Bound of every client wait, in seconds: generous for sanitizers. */
#define IO_SEC 30.0

/* ------------------------------------------------------------------ */
/* A client                                                            */

struct cl {
    int fd;
    size_t len;        /* bytes in buf */
    char buf[1 << 18]; /* what arrived and was not consumed, '\r' dropped */
};

static struct cl cls[12];
static char got[1 << 18]; /* what the last cl_until() consumed */

static void cl_dial(struct cl *c, const char *addr)
{
    c->len = 0;
    c->fd = coro_dial(addr);
    cr_assert_geq(c->fd, 0, "dial %s: %s", addr, strerror(errno));
    cr_assert_eq(coro_fd_set_timeout(c->fd, IO_SEC, IO_SEC), 0);
}

/* Read what comes; 0 at the end of the stream. */
static ssize_t cl_fill(struct cl *c)
{
    char tmp[8192];
    size_t room = sizeof c->buf - 1 - c->len;
    cr_assert_gt(room, 0, "client buffer full");
    ssize_t n = coro_read(c->fd, tmp, room < sizeof tmp ? room : sizeof tmp);
    if (n < 0 && errno == ECONNRESET)
        n = 0;
    cr_assert_geq(n, 0, "read: %s; so far: %.*s", strerror(errno), (int)c->len,
                  c->buf);
    for (ssize_t i = 0; i < n; i++)
        if (tmp[i] != '\r')
            c->buf[c->len++] = tmp[i];
    c->buf[c->len] = '\0';
    return n;
}

/* Wait for want; consume up to its end into got[] and return got. */
static const char *cl_until(struct cl *c, const char *want)
{
    char *at;
    while ((at = memmem(c->buf, c->len, want, strlen(want))) == NULL)
        cr_assert_gt(cl_fill(c), 0, "EOF before '%s'; got: %s", want, c->buf);
    size_t n = (size_t)(at - c->buf) + strlen(want);
    memcpy(got, c->buf, n);
    got[n] = '\0';
    memmove(c->buf, c->buf + n, c->len - n + 1);
    c->len -= n;
    return got;
}

static void cl_send(struct cl *c, const char *s, size_t n)
{
    cr_assert_eq(coro_send_all(c->fd, s, n), (ssize_t)n, "send: %s",
                 strerror(errno));
}

/* Send line and return its output, without the next prompt. */
static const char *cl_cmd(struct cl *c, const char *line)
{
    cl_send(c, line, strlen(line));
    cl_send(c, "\n", 1);
    cl_until(c, "coro> ");
    got[strlen(got) - strlen("coro> ")] = '\0';
    return got;
}

/* Read to the end of the stream; returns all that came. */
static const char *cl_eof(struct cl *c)
{
    while (cl_fill(c) > 0)
        ;
    memcpy(got, c->buf, c->len + 1);
    c->len = 0;
    return got;
}

static void cl_close(struct cl *c)
{
    cr_assert_eq(coro_close(c->fd), 0);
}

static bool has(const char *text, const char *want)
{
    return strstr(text, want) != NULL;
}

#define assert_has(text, want)                                                 \
    cr_assert(has((text), (want)), "expected '%s' in:\n%s", (want), (text))

/* ------------------------------------------------------------------ */
/* Setup                                                               */

static char dir[64], path[128], unix_addr[140];
static coro_backdoor_t *bd;

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/coro_bd_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/bd.sock", dir);
    snprintf(unix_addr, sizeof unix_addr, "unix:%s", path);
}

static void remove_dir(void)
{
    unlink(path);
    cr_assert_eq(rmdir(dir), 0, "left in %s: %s", dir, strerror(errno));
}

/* A backdoor on a fresh unix path with these options (path filled in). */
static coro_backdoor_t *start_unix(coro_backdoor_opts_t o)
{
    make_dir();
    o.unix_path = path;
    bd = coro_backdoor_start(&o);
    cr_assert_not_null(bd, "start: %s", strerror(errno));
    return bd;
}

/* A session over the unix socket, past the banner and first prompt. */
static struct cl *session(int i)
{
    struct cl *c = &cls[i];
    cl_dial(c, unix_addr);
    cl_until(c, "coro> ");
    return c;
}

/* Run body in a coroutine, then stop the backdoor and let it wind down. */
static int run_body(void *arg)
{
    ((void (*)(void))arg)();
    if (bd != NULL)
        cr_assert_eq(coro_backdoor_stop(bd), 0);
    bd = NULL;
    return 0;
}

static void run(void (*body)(void))
{
    cr_assert_eq(run_in_coro(run_body, (void *)body), 0);
}

/* The common case: a default console on a unix socket around body. */
static void on_unix(void (*body)(void))
{
    start_unix((coro_backdoor_opts_t){0});
    run(body);
    remove_dir();
}

/* Sessions the console reports open, from another session's "stats". */
static int sessions_open(struct cl *c)
{
    const char *out = cl_cmd(c, "stats");
    const char *p = strstr(out, "up ");
    p = p != NULL ? strstr(p, ", ") : NULL;
    cr_assert_not_null(p, "%s", out);
    return atoi(p + 2);
}

/* Ask until the console reports n sessions; false after IO_SEC. */
static bool wait_sessions(struct cl *c, int n)
{
    double end = mono_sec() + IO_SEC;
    while (sessions_open(c) != n) {
        if (mono_sec() > end)
            return false;
        coro_sleep(0.01);
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Coroutines to look at.  Not static and not inlined: "where" must name
 * them (the test is linked with -rdynamic). */

static int nap_line;

__attribute__((noinline)) int bd_test_nap(void)
{
    nap_line = __LINE__, coro_sleep(3600);
    return errno;
}

__attribute__((noinline)) int bd_test_napper(void *arg)
{
    int *err = arg;
    *err = bd_test_nap();
    return 0;
}

/* ------------------------------------------------------------------ */

static void greets_body(void)
{
    struct cl *c = &cls[0];
    cl_dial(c, unix_addr);
    const char *out = cl_until(c, "coro> ");
    char want[64];
    snprintf(want, sizeof want, "coro backdoor, pid %ld;", (long)getpid());
    assert_has(out, want);
    cr_assert_str_eq(cl_cmd(c, ""), ""); /* an empty line: a prompt */
    cr_assert_str_eq(cl_cmd(c, "# a comment"), "");
    cl_send(c, "quit\n", 5);
    assert_has(cl_eof(c), "bye\n");
    cl_close(c);
}

Test(backdoor, a_unix_session_greets_prompts_and_ends_on_quit)
{
    on_unix(greets_body);
}

static int app_echo(coro_backdoor_session_t *s, int argc, char **argv, void *ud)
{
    coro_backdoor_printf(s, "%s %d:", (const char *)ud, argc);
    for (int i = 1; i < argc; i++)
        coro_backdoor_printf(s, " [%s]", argv[i]);
    coro_backdoor_printf(s, "\n");
    return 0;
}

static int app_fail(coro_backdoor_session_t *s, int argc, char **argv, void *ud)
{
    (void)s, (void)argc, (void)argv, (void)ud;
    errno = EIO;
    return -1;
}

static void help_body(void)
{
    struct cl *c = session(0);
    const char *out = cl_cmd(c, "help");
    static const char *const names[] = {
        "help", "ps",  "where", "interrupt", "stats", "latency",
        "selfish", "profile", "log", "vars", "get", "set", "quit", "echo2",
        "fail"};
    int lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 15, "one line per command:\n%s", out);
    static char text[8192];
    snprintf(text, sizeof text, "\n%s", out);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char want[32];
        snprintf(want, sizeof want, "\n%s ", names[i]);
        assert_has(text, want);
    }
    assert_has(cl_cmd(c, "help where"), "usage: where ID|all\n  the call");
    assert_has(cl_cmd(c, "help echo2"), "usage: echo2 [WORDS]\n  say");
    assert_has(cl_cmd(c, "help nope"), "error: no command 'nope'");
    assert_has(cl_cmd(c, "help a b"), "error: usage: help [COMMAND]");
    assert_has(cl_cmd(c, "frobnicate"),
               "error: unknown command 'frobnicate' (help lists them)");
    /* Application commands get their words, quotes removed. */
    cr_assert_str_eq(cl_cmd(c, "echo2 a \"b c\" 'd e' f\\ g \"q\\\"\""),
                     "ud 6: [a] [b c] [d e] [f g] [q\"]\n");
    assert_has(cl_cmd(c, "echo2 \"open"), "error: unterminated \"");
    assert_has(cl_cmd(c, "fail"), "error: fail: Input/output error");
    cl_close(c);
}

Test(backdoor, help_lists_every_command_on_one_line_and_shows_usage)
{
    start_unix((coro_backdoor_opts_t){0});
    cr_assert_eq(coro_backdoor_add_command(bd, "echo2", "echo2 [WORDS]",
                                           "say the words back", app_echo,
                                           "ud"),
                 0);
    cr_assert_eq(
        coro_backdoor_add_command(bd, "fail", "fail", "fail", app_fail, NULL),
        0);
    run(help_body);
    remove_dir();
}

static int nap_err[4];

static void ps_body(void)
{
    coro_t *a = coro_spawn(bd_test_napper, &nap_err[0], "napper-a");
    coro_yield(); /* let it park in its sleep */
    struct cl *c = session(0);
    const char *out = cl_cmd(c, "ps");
    assert_has(out, "    ID STATE        RUN_MS  SWITCHES   MAX_MS NAME");
    char want[256];
    snprintf(want, sizeof want, "%6d waiting ", coro_id(a));
    assert_has(out, want);
    snprintf(want, sizeof want,
             "napper-a             sleep at %s:%d in "
             "bd_test_nap()\n",
             __FILE__, nap_line);
    assert_has(out, want);
    assert_has(out, "backdoor unix");
    assert_has(out, " running  ");
    assert_has(out, "backdoor session     - (this session)\n");
    snprintf(want, sizeof want, "\n%zu coroutines\n", coro_count());
    assert_has(out, want);
    cr_assert_eq(coro_interrupt(a, ECANCELED), 0);
    cl_close(c);
}

Test(backdoor, ps_lists_every_coroutine_with_its_state_and_wait)
{
    start_unix((coro_backdoor_opts_t){0});
    run(ps_body);
    cr_assert_eq(nap_err[0], ECANCELED);
    remove_dir();
}

static int ret0(void *arg)
{
    (void)arg;
    return 0;
}

static void where_body(void)
{
    coro_t *a = coro_spawn(bd_test_napper, &nap_err[0], "napper-a");
    coro_t *fresh = coro_new(ret0, NULL, &(coro_opts_t){.name = "fresh"});
    coro_yield();
    struct cl *c = session(0);
    char cmd[64], want[128];
    snprintf(cmd, sizeof cmd, "where %d", coro_id(a));
    const char *out = cl_cmd(c, cmd);
    snprintf(want, sizeof want, "#%d 'napper-a' waiting: sleep at ",
             coro_id(a));
    assert_has(out, want);
    assert_has(out, "\n  #0  0x");
    if (!CORO_TEST_TSAN) /* TSan's frames may hide the caller */
        assert_has(out, " bd_test_nap+0x");
    assert_has(out, " bd_test_napper+0x");
    snprintf(cmd, sizeof cmd, "where %d", coro_id(fresh));
    assert_has(cl_cmd(c, cmd), "'fresh' new: -\n  (not started");
    out = cl_cmd(c, "where all");
    assert_has(out, "'napper-a' waiting");
    assert_has(out, "'backdoor session' running (this session)");
    assert_has(out, "'backdoor unix' waiting: accept at ");
    assert_has(cl_cmd(c, "where 999999"), "error: no coroutine #999999");
    assert_has(cl_cmd(c, "where x1"), "error: not a coroutine id: 'x1'");
    assert_has(cl_cmd(c, "where"), "error: usage: where ID|all");
    coro_interrupt(a, ECANCELED);
    coro_start(fresh);
    cl_close(c);
}

Test(backdoor, where_shows_the_symbolized_stack_of_a_coroutine)
{
    on_unix(where_body);
}

static void interrupt_body(void)
{
    coro_t *a = coro_spawn(bd_test_napper, &nap_err[0], "a");
    coro_t *b = coro_spawn(bd_test_napper, &nap_err[1], "b");
    coro_t *d = coro_spawn(bd_test_napper, &nap_err[2], "d");
    coro_yield();
    struct cl *c = session(0);
    char cmd[64], want[128];
    snprintf(cmd, sizeof cmd, "interrupt %d ETIMEDOUT", coro_id(a));
    snprintf(want, sizeof want, "interrupted #%d 'a' with ETIMEDOUT (%d)",
             coro_id(a), ETIMEDOUT);
    assert_has(cl_cmd(c, cmd), want);
    snprintf(cmd, sizeof cmd, "interrupt %d", coro_id(b));
    assert_has(cl_cmd(c, cmd), "with EINTR");
    snprintf(cmd, sizeof cmd, "interrupt %d %d", coro_id(d), ECONNRESET);
    assert_has(cl_cmd(c, cmd), "with ECONNRESET");
    assert_has(cl_cmd(c, "interrupt 1 EWHATEVER"), "error: not an errno");
    assert_has(cl_cmd(c, "interrupt 1 0"), "error: not an errno");
    /* The console's own coroutines are off limits. */
    const char *ps = cl_cmd(c, "ps");
    const char *me = strstr(ps, "(this session)");
    cr_assert_not_null(me);
    while (me > ps && me[-1] != '\n')
        me--;
    snprintf(cmd, sizeof cmd, "interrupt %d", atoi(me));
    assert_has(cl_cmd(c, cmd), "is the backdoor's own coroutine");
    cl_close(c);
}

Test(backdoor, interrupt_fails_a_coroutines_wait_with_the_errno_given)
{
    start_unix((coro_backdoor_opts_t){0});
    run(interrupt_body);
    cr_assert_eq(nap_err[0], ETIMEDOUT);
    cr_assert_eq(nap_err[1], EINTR);
    cr_assert_eq(nap_err[2], ECONNRESET);
    remove_dir();
}

static void stats_body(void)
{
    struct cl *c = session(0);
    const char *out = cl_cmd(c, "stats");
    static const char *const keys[] = {
        "uptime       ",
        "backdoor     up ",
        "1 of 3 sessions",
        "coroutines   ",
        "loop passes  ",
        "switches     ",
        "io events    ",
        "timers       ",
        "fds          ",
        "stacks       ",
        "rss          ",
        "selfishness  4 acts",
        "latency      latency warnings: factor 1 (slices over 200 ms)"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_has(out, keys[i]);
    char want[64];
    snprintf(want, sizeof want, "poller       %s\n", coro_poller_name());
    assert_has(out, want);
    cr_assert(!has(out, "rss          n/a"), "Linux has /proc: %s", out);
    assert_has(cl_cmd(c, "stats now"), "error: usage: stats");
    cl_close(c);
}

Test(backdoor, stats_reports_the_loops_counters_and_the_sessions)
{
    start_unix((coro_backdoor_opts_t){.max_sessions = 3});
    run(stats_body);
    remove_dir();
}

static void settings_body(void)
{
    struct cl *c = session(0);
    assert_has(cl_cmd(c, "latency"), "latency warnings: factor 1 (slices "
                                     "over 200 ms)");
    assert_has(cl_cmd(c, "latency 2.5"), "factor 2.5 (slices over 500 "
                                         "ms); was 1");
    cr_assert_eq(coro_latency_warning(), 2.5);
    assert_has(cl_cmd(c, "latency 0"), "latency warnings: off; was 2.5");
    assert_has(cl_cmd(c, "latency -1"), "error: not a factor: '-1'");
    assert_has(cl_cmd(c, "latency nan"), "error: not a factor");
    cr_assert_eq(coro_latency_warning(), 0);
    assert_has(cl_cmd(c, "selfish"), "selfishness: 4 acts in a row");
    assert_has(cl_cmd(c, "selfish 16"), "selfishness: 16 acts (new "
                                        "coroutines); was 4");
    cr_assert_eq(coro_selfishness(), 16);
    assert_has(cl_cmd(c, "selfish 0"), "error: not a count: '0'");
    assert_has(cl_cmd(c, "selfish 40000"), "error: not a count");
    cr_assert_eq(coro_selfishness(), 16);
    cl_close(c);
}

Test(backdoor, latency_and_selfish_show_and_change_the_settings)
{
    on_unix(settings_body);
}

static void log_body(void)
{
    struct cl *c = session(0);
    cl_send(c, "log\n", 4);
    cl_until(c, "press Enter to stop\n");
    coro_print_stderr("bd-test marker %d", 42);
    assert_has(cl_until(c, "bd-test marker 42\n"), ": bd-test marker 42\n");
    cl_send(c, "\n", 1);
    assert_has(cl_until(c, "coro> "), "log: stopped\n");
    coro_print_stderr("bd-test after the log");
    cr_assert(!has(cl_cmd(c, "help"), "bd-test after"));

    /* A client that lags: the oldest lines go, with a note. */
    cl_send(c, "log\n", 4);
    cl_until(c, "press Enter to stop\n");
    int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2); /* the test's own stderr stays readable */
    for (int i = 0; i < 5000; i++)
        coro_print_stderr("bd-test flood %04d of a long line of the log", i);
    dup2(saved, 2);
    close(saved);
    close(devnull);
    const char *out = cl_until(c, "bd-test flood 4999");
    assert_has(out, " lines dropped]\n");
    cr_assert(!has(out, "flood 0000"), "the oldest went first");
    cl_send(c, "x", 1); /* any key */
    assert_has(cl_until(c, "coro> "), "log: stopped\n");
    assert_has(cl_cmd(c, "log now"), "error: usage: log");
    cl_close(c);
}

Test(backdoor, log_streams_printed_lines_until_a_key_is_pressed)
{
    on_unix(log_body);
}

/* ------------------------------------------------------------------ */
/* Variables                                                           */

static int v_int = 5;
static unsigned v_uint = 7;
static int64_t v_i64 = -3;
static double v_dbl = 1.5;
static bool v_bool = true;
static char v_str[8] = "abc";
static int v_ro = 99;

static void vars_body(void)
{
    struct cl *c = session(0);
    const char *out = cl_cmd(c, "vars");
    assert_has(out, "level            int    rw  5                    a "
                    "level\n");
    assert_has(out, "served           int    ro  99");
    assert_has(out, "name             string rw  \"abc\"");
    assert_has(cl_cmd(c, "get ratio"), "ratio = 1.5\n");
    assert_has(cl_cmd(c, "get on"), "on = true\n");
    assert_has(cl_cmd(c, "set level 42"), "level = 42 (was 5)\n");
    cr_assert_eq(v_int, 42);
    assert_has(cl_cmd(c, "set level 101"),
               "error: level wants an integer in 0..100");
    assert_has(cl_cmd(c, "set level 4x"), "error: level wants an integer");
    cr_assert_eq(v_int, 42);
    assert_has(cl_cmd(c, "set count -1"),
               "error: count wants an integer in 0..4294967295");
    assert_has(cl_cmd(c, "set count 0x10"), "count = 16 (was 7)");
    assert_has(cl_cmd(c, "set big -9223372036854775808"),
               "big = -9223372036854775808 (was -3)");
    assert_has(cl_cmd(c, "set big 9223372036854775808"), "error: big wants");
    assert_has(cl_cmd(c, "set ratio 0.25"), "ratio = 0.25 (was 1.5)");
    assert_has(cl_cmd(c, "set ratio 3"), "error: ratio wants a number in "
                                         "0..2");
    assert_has(cl_cmd(c, "set ratio inf"), "error: ratio wants");
    assert_has(cl_cmd(c, "set on off"), "on = false (was true)");
    assert_has(cl_cmd(c, "set on maybe"), "error: on wants true or false");
    assert_has(cl_cmd(c, "set name \"x y\""), "name = \"x y\" (was \"abc\")");
    assert_has(cl_cmd(c, "set name 12345678"),
               "error: name holds at most 7 bytes");
    cr_assert_str_eq(v_str, "x y");
    assert_has(cl_cmd(c, "set served 0"), "error: served is read-only");
    cr_assert_eq(v_ro, 99);
    assert_has(cl_cmd(c, "get nothing"), "error: no variable 'nothing'");
    assert_has(cl_cmd(c, "set level"), "error: usage: set NAME VALUE");
    cr_assert_eq(coro_backdoor_remove(bd, "level"), 0);
    assert_has(cl_cmd(c, "get level"), "error: no variable 'level'");
    cl_close(c);
}

Test(backdoor, vars_get_and_set_check_type_range_and_read_only)
{
    start_unix((coro_backdoor_opts_t){0});
    coro_backdoor_var_t vars[] = {
        {"level", "a level", CORO_BACKDOOR_INT, &v_int, 0, 0, 0, 100, 0, 0},
        {"count", NULL, CORO_BACKDOOR_UINT, &v_uint, 0, 0, 0, 0, 0, 0},
        {"big", NULL, CORO_BACKDOOR_INT64, &v_i64, 0, 0, 0, 0, 0, 0},
        {"ratio", NULL, CORO_BACKDOOR_DOUBLE, &v_dbl, 0, 0, 0, 0, 0, 2},
        {"on", NULL, CORO_BACKDOOR_BOOL, &v_bool, 0, 0, 0, 0, 0, 0},
        {"name", NULL, CORO_BACKDOOR_STRING, v_str, sizeof v_str, 0, 0, 0, 0,
         0},
        {"served", "requests", CORO_BACKDOOR_INT, &v_ro, 0,
         CORO_BACKDOOR_READONLY, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        cr_assert_eq(coro_backdoor_add_var(bd, &vars[i]), 0, "%s: %s",
                     vars[i].name, strerror(errno));
    run(vars_body);
    remove_dir();
}

/* ------------------------------------------------------------------ */
/* Files                                                               */

static int app_dump(coro_backdoor_session_t *s, int argc, char **argv, void *ud)
{
    (void)ud;
    int fd = coro_backdoor_open_output(s, argc > 1 ? argv[1] : "");
    if (fd < 0)
        return 0; /* the error line is written */
    cr_assert_eq(write(fd, "data\n", 5), 5);
    close(fd);
    coro_backdoor_printf(s, "wrote %s\n", argv[1]);
    return 0;
}

static char outdir[64];

static void files_body(void)
{
    struct cl *c = session(0);
    assert_has(cl_cmd(c, "dump report.txt"), "wrote report.txt");
    char p[160];
    snprintf(p, sizeof p, "%s/report.txt", outdir);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    assert_has(cl_cmd(c, "dump report.txt"), "error: report.txt: File exists");
    static const char *const bad[] = {"../escape", "/etc/passwd", ".hidden",
                                      "a/b",       "..",          ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "dump '%s'", bad[i]);
        assert_has(cl_cmd(c, cmd), "is not a plain file name");
    }
    /* A link planted in the directory is never followed. */
    snprintf(p, sizeof p, "%s/link", outdir);
    cr_assert_eq(symlink("/tmp/coro_bd_should_not_exist", p), 0);
    assert_has(cl_cmd(c, "dump link"), "error: link: File exists");
    cr_assert_eq(access("/tmp/coro_bd_should_not_exist", F_OK), -1);
    unlink(p);
    snprintf(p, sizeof p, "%s/report.txt", outdir);
    unlink(p);
    cl_close(c);
}

Test(backdoor, files_go_only_to_new_plain_names_in_the_output_directory)
{
    snprintf(outdir, sizeof outdir, "/tmp/coro_bd_out_XXXXXX");
    cr_assert_not_null(mkdtemp(outdir));
    start_unix((coro_backdoor_opts_t){.output_dir = outdir});
    cr_assert_eq(coro_backdoor_add_command(bd, "dump", "dump NAME", "write",
                                           app_dump, NULL),
                 0);
    run(files_body);
    cr_assert_eq(rmdir(outdir), 0, "the directory is left empty");
    remove_dir();
}

static void no_files_body(void)
{
    struct cl *c = session(0);
    assert_has(cl_cmd(c, "dump x"),
               "error: this program lets no command write files");
    cl_close(c);
}

Test(backdoor, without_an_output_directory_no_file_is_written)
{
    start_unix((coro_backdoor_opts_t){0});
    cr_assert_eq(coro_backdoor_add_command(bd, "dump", "dump NAME", "write",
                                           app_dump, NULL),
                 0);
    run(no_files_body);
    remove_dir();
    cr_assert_eq(access("x", F_OK), -1);
}

/* ------------------------------------------------------------------ */
/* The profiler                                                        */

/* CPU seconds this thread has used. */
static double cpu_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Burn sec of CPU in this coroutine, yielding now and then so the console
 * serves meanwhile.  Exported: the report must name it. */
__attribute__((noinline)) void bd_test_burn(double sec)
{
    double end = cpu_sec() + sec;
    volatile unsigned long x = 0;
    while (cpu_sec() < end) {
        for (int i = 0; i < 100000; i++)
            x = x * 31 + (unsigned long)i;
        coro_yield();
    }
}

/* The text of the file name in outdir, NUL-terminated, in buf. */
static void read_out(const char *name, char *buf, size_t len)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s", outdir, name);
    int fd = open(p, O_RDONLY);
    cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
    ssize_t n = read(fd, buf, len - 1);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    close(fd);
    unlink(p);
}

static void profile_body(void)
{
    struct cl *c = session(0);
    assert_has(cl_cmd(c, "profile"), "profiler: stopped");
    assert_has(cl_cmd(c, "profile stop"), "error: profile stop: the "
                                          "profiler is not running");
    assert_has(cl_cmd(c, "profile start sample 0"), "error: not a rate");
    assert_has(cl_cmd(c, "profile start hot"), "error: no profiling mode");
    assert_has(cl_cmd(c, "profile frob"), "error: usage: profile [start");
    assert_has(cl_cmd(c, "profile start"), "profiling: sampling at 1000 Hz");
    assert_has(cl_cmd(c, "profile"), "profiler: running");
    assert_has(cl_cmd(c, "profile start"), "error: the profiler is running");
    bd_test_burn(CORO_TEST_TSAN ? 0.2 : 1.0);
    /* A report while it runs, then stop. */
    assert_has(cl_cmd(c, "profile report 5"), "function");
    assert_has(cl_cmd(c, "profile stop"), "profiler stopped");
    const char *out = cl_cmd(c, "profile report 5");
    assert_has(out, "self ms");
    /* TSan holds the sampling signal back (the samples land late and
     * elsewhere); the commands work all the same. */
    if (!CORO_TEST_TSAN)
        assert_has(out, "bd_test_burn");
    out = cl_cmd(c, "profile folded");
    if (!CORO_TEST_TSAN)
        assert_has(out, ";bd_test_burn ");
    /* Every folded line is "frames count". */
    for (const char *l = out; *l != '\0';) {
        const char *nl = strchr(l, '\n');
        cr_assert_not_null(nl, "unterminated line: %s", l);
        const char *sp = nl;
        while (sp > l && sp[-1] != ' ')
            sp--;
        cr_assert_gt(sp, l + 1, "no frames: %.*s", (int)(nl - l), l);
        cr_assert_gt(atol(sp), 0, "no count: %.*s", (int)(nl - l), l);
        l = nl + 1;
    }
    assert_has(cl_cmd(c, "profile flamegraph fg.svg"), "wrote fg.svg");
    static char svg[1 << 20];
    read_out("fg.svg", svg, sizeof svg);
    cr_assert_eq(strncmp(svg, "<?xml", 5), 0);
    assert_has(svg, "<svg");
    assert_has(svg, "</svg>");
    assert_has(cl_cmd(c, "profile save p.prof"), "wrote p.prof");
    read_out("p.prof", svg, sizeof svg);
    assert_has(cl_cmd(c, "profile flamegraph ../fg.svg"),
               "is not a plain file name");
    assert_has(cl_cmd(c, "profile reset"), "profile data dropped");
    cl_close(c);
}

Test(backdoor, profile_starts_stops_reports_and_writes_a_flame_graph)
{
    snprintf(outdir, sizeof outdir, "/tmp/coro_bd_out_XXXXXX");
    cr_assert_not_null(mkdtemp(outdir));
    start_unix((coro_backdoor_opts_t){.output_dir = outdir});
    run(profile_body);
    cr_assert_eq(rmdir(outdir), 0, "the directory is left empty");
    remove_dir();
}

/* ------------------------------------------------------------------ */
/* TCP and the token                                                   */

static char tcp_addr[80];

static void token_body(void)
{
    struct cl *c = &cls[0];
    cl_dial(c, tcp_addr);
    cl_until(c, "token: ");
    cl_send(c, "wrong-token-123\n", 16);
    assert_has(cl_eof(c), "error: bad token\n");
    cl_close(c);
    cl_dial(c, tcp_addr);
    cl_until(c, "token: ");
    cl_send(c, "secret-token-1\r\n", 16);
    cl_until(c, "coro> ");
    assert_has(cl_cmd(c, "stats"), "1 of 8 sessions");
    cl_close(c);
}

Test(backdoor, a_tcp_session_must_give_the_token_first)
{
    coro_backdoor_opts_t o = {.tcp_addr = "127.0.0.1:0",
                              .token = "secret-token-1"};
    bd = coro_backdoor_start(&o);
    cr_assert_not_null(bd, "%s", strerror(errno));
    snprintf(tcp_addr, sizeof tcp_addr, "%s", coro_backdoor_tcp_addr(bd));
    cr_assert(strncmp(tcp_addr, "127.0.0.1:", 10) == 0, "%s", tcp_addr);
    cr_assert_str_eq(coro_backdoor_token(bd), "secret-token-1");
    cr_assert_null(coro_backdoor_unix_path(bd));
    cr_assert_eq(errno, ENOENT);
    run(token_body);
}

static int guess(void *arg)
{
    struct cl *c = arg;
    cl_dial(c, tcp_addr);
    cl_until(c, "token: ");
    cl_send(c, "guess-guess-guess\n", 18);
    assert_has(cl_eof(c), "error: bad token\n");
    cl_close(c);
    return 0;
}

static void rate_body(void)
{
    coro_t *g[5];
    for (int i = 0; i < 5; i++)
        g[i] =
            coro_spawn_opts(guess, &cls[i], &(coro_opts_t){.joinable = true});
    for (int i = 0; i < 5; i++)
        cr_assert_eq(coro_join(g[i], NULL, NULL), 0);
    /* Locked out now, even with the right token, without a prompt. */
    struct cl *c = &cls[5];
    cl_dial(c, tcp_addr);
    const char *out = cl_eof(c);
    assert_has(out, "error: too many bad tokens; try again in ");
    cr_assert(!has(out, "token: "), "%s", out);
    cl_close(c);
}

Test(backdoor, bad_tokens_are_delayed_logged_and_rate_limited)
{
    coro_backdoor_opts_t o = {.tcp_addr = "localhost:0"};
    bd = coro_backdoor_start(&o);
    cr_assert_not_null(bd, "%s", strerror(errno));
    const char *t = coro_backdoor_token(bd);
    cr_assert_eq(strlen(t), 32, "a generated token: %s", t);
    cr_assert_eq(strspn(t, "0123456789abcdef"), 32);
    snprintf(tcp_addr, sizeof tcp_addr, "%s", coro_backdoor_tcp_addr(bd));
    double t0 = mono_sec();
    run(rate_body);
    cr_assert_geq(mono_sec() - t0, 0.9, "each bad token costs a second");
}

/* A console on a unix socket and TCP (token "secret-token-1"). */
static void start_both(coro_backdoor_opts_t o)
{
    o.tcp_addr = "127.0.0.1:0";
    o.token = "secret-token-1";
    start_unix(o);
    snprintf(tcp_addr, sizeof tcp_addr, "%s", coro_backdoor_tcp_addr(bd));
}

/* A TCP client that logs in; returns it at the first prompt. */
static struct cl *tcp_login(int i)
{
    struct cl *c = &cls[i];
    cl_dial(c, tcp_addr);
    cl_until(c, "token: ");
    cl_send(c, "secret-token-1\n", 15);
    cl_until(c, "coro> ");
    return c;
}

static void pending_body(void)
{
    struct cl *watcher = session(0);
    /* Four clients that connect and never send the token. */
    for (int i = 1; i <= 4; i++) {
        cl_dial(&cls[i], tcp_addr);
        cl_until(&cls[i], "token: ");
    }
    assert_has(cl_cmd(watcher, "stats"), "1 of 4 sessions, 4 logging in");
    /* The operator still gets in: the client waiting longest makes room. */
    struct cl *op = tcp_login(5);
    assert_has(cl_eof(&cls[1]), "error: more clients are waiting to log in");
    assert_has(cl_cmd(op, "stats"), "2 of 4 sessions, 3 logging in");
    for (int i = 1; i <= 5; i++)
        cl_close(&cls[i]);
    cl_close(watcher);
}

Test(backdoor, clients_that_never_send_the_token_cannot_lock_the_operator_out)
{
    start_both((coro_backdoor_opts_t){.max_sessions = 4});
    run(pending_body);
    remove_dir();
}

static void scan_body(void)
{
    struct cl *watcher = session(0);
    /* More connect-and-close probes than the bad tokens that lock TCP. */
    for (int i = 1; i <= 7; i++) {
        cl_dial(&cls[i], tcp_addr);
        cl_close(&cls[i]);
    }
    double end = mono_sec() + IO_SEC;
    while (has(cl_cmd(watcher, "stats"), "logging in"))
        cr_assert_lt(mono_sec(), end, "the probes' sessions never ended");
    struct cl *op = tcp_login(8);
    assert_has(cl_cmd(op, "stats"), "2 of 8 sessions");
    cl_close(op);
    cl_close(watcher);
}

Test(backdoor, connections_closed_before_a_token_are_no_bad_tokens)
{
    start_both((coro_backdoor_opts_t){0});
    run(scan_body);
    remove_dir();
}

static void login_time_body(void)
{
    double t0 = mono_sec();
    struct cl *c = &cls[0];
    cl_dial(c, tcp_addr);
    assert_has(cl_eof(c), "token: \nno token in 0.3 s: closing\n");
    cr_assert_geq(mono_sec() - t0, 0.29);
    cl_close(c);
    cl_close(tcp_login(1)); /* no bad token was counted */
}

Test(backdoor, a_tcp_client_has_the_login_time_to_send_the_token)
{
    start_both((coro_backdoor_opts_t){.login_timeout_sec = 0.3});
    run(login_time_body);
    remove_dir();
}

Test(backdoor, a_non_loopback_tcp_address_is_refused_unless_allowed)
{
    static const char *const outside[] = {"0.0.0.0:0", ":0", "192.0.2.1:0",
                                          "tcp:10.1.2.3:0"};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        coro_backdoor_opts_t o = {.tcp_addr = outside[i]};
        cr_assert_null(coro_backdoor_start(&o), "%s", outside[i]);
        cr_assert_eq(errno, EADDRNOTAVAIL, "%s: %s", outside[i],
                     strerror(errno));
    }
    static const char *const malformed[] = {"udp:127.0.0.1:0", "unix:/tmp/x",
                                            "example.com:1", "127.0.0.1"};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        coro_backdoor_opts_t o = {.tcp_addr = malformed[i]};
        cr_assert_null(coro_backdoor_start(&o), "%s", malformed[i]);
        cr_assert_eq(errno, EINVAL, "%s: %s", malformed[i], strerror(errno));
    }
    coro_backdoor_opts_t o = {.tcp_addr = "0.0.0.0:0",
                              .allow_non_loopback = true,
                              .token = "0123456789"};
    bd = coro_backdoor_start(&o);
    cr_assert_not_null(bd, "%s", strerror(errno));
    cr_assert(strncmp(coro_backdoor_tcp_addr(bd), "0.0.0.0:", 8) == 0);
    cr_assert_eq(coro_backdoor_stop(bd), 0);
    bd = NULL;
    cr_assert_eq(coro_event_loop(), 0);
}

/* ------------------------------------------------------------------ */
/* Bad input from clients                                              */

static void long_line_body(void)
{
    struct cl *c = session(0);
    static char line[5000 + 16];
    memset(line, 'a', 5000);
    memcpy(line + 5000, "\nstats\n", 8);
    cl_send(c, line, strlen(line));
    const char *out = cl_until(c, "coro> ");
    assert_has(out, "error: line longer than 4096 bytes: ignored\n");
    assert_has(cl_until(c, "coro> "), "loop passes");
    /* 4096 bytes is still a line. */
    memset(line, 'b', 4096);
    line[4096] = '\0';
    assert_has(cl_cmd(c, line), "error: unknown command 'bbbbbbbb");
    cl_close(c);
}

Test(backdoor, an_oversized_line_gets_an_error_and_the_session_goes_on)
{
    on_unix(long_line_body);
}

static void telnet_body(void)
{
    struct cl *c = session(0);
    /* DO ECHO, WILL NAWS, a NAWS subnegotiation, then "help" with a NOP
     * inside, ended by CR LF. */
    static const unsigned char neg[] = {255, 253, 1,   255, 251, 31,   255, 250,
                                        31,  0,   80,  0,   24,  255,  240, 'h',
                                        'e', 255, 241, 'l', 'p', '\r', '\n'};
    cl_send(c, (const char *)neg, sizeof neg);
    const char *out = cl_until(c, "coro> ");
    assert_has(out, "\xff\xfc\x01"); /* WONT ECHO */
    assert_has(out, "\xff\xfe\x1f"); /* DONT NAWS */
    assert_has(out, "\nwhere ");
    /* ^C drops the partial line; IAC IAC is a byte 255. */
    assert_has(cl_cmd(c, "ps\x03stats"), "^C\n");
    assert_has(cl_until(c, "coro> "), "loop passes");
    assert_has(cl_cmd(c, "get \xff\xffx"), "error: no variable '?x'");
    /* Garbage: every byte but IAC, in lines; the session survives. */
    uint32_t x = 12345;
    static char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        junk[i] = (char)(x % 255);
        if (junk[i] == 3 || junk[i] == 4)
            junk[i] = '\n'; /* ^C and ^D have their own meaning */
    }
    cl_send(c, junk, sizeof junk);
    cl_send(c, "\nhelp stats\n", 12);
    cl_until(c, "usage: stats");
    cl_until(c, "coro> ");
    /* ^D on an empty line ends the session like EOF. */
    cl_send(c, "\x04", 1);
    cl_eof(c);
    cl_close(c);
}

Test(backdoor, telnet_negotiation_and_garbage_leave_the_session_usable)
{
    on_unix(telnet_body);
}

/* ------------------------------------------------------------------ */
/* Limits                                                              */

static void ninth_body(void)
{
    for (int i = 0; i < 8; i++)
        session(i);
    struct cl *c = &cls[8];
    cl_dial(c, unix_addr);
    assert_has(cl_eof(c), "error: too many sessions (8 open); try later\n");
    cl_close(c);
    cl_send(&cls[0], "quit\n", 5);
    cl_eof(&cls[0]);
    cl_close(&cls[0]);
    session(9);
    assert_has(cl_cmd(&cls[9], "stats"), "8 of 8 sessions");
    for (int i = 1; i < 10; i++)
        if (i != 8)
            cl_close(&cls[i]);
}

Test(backdoor, the_ninth_session_is_refused_until_one_ends)
{
    on_unix(ninth_body);
}

static void idle_body(void)
{
    double t0 = mono_sec();
    struct cl *c = session(0);
    assert_has(cl_eof(c), "idle for 0.3 s: closing\n");
    cr_assert_geq(mono_sec() - t0, 0.29);
    cl_close(c);
}

Test(backdoor, an_idle_session_is_closed_after_the_idle_timeout)
{
    start_unix((coro_backdoor_opts_t){.idle_timeout_sec = 0.3});
    run(idle_body);
    remove_dir();
}

static void vanish_body(void)
{
    /* Enough coroutines that "ps" fills the socket buffers. */
    static int errs[3000];
    static coro_t *many[3000];
    for (int i = 0; i < 3000; i++)
        many[i] = coro_spawn(bd_test_napper, &errs[i], "many");
    coro_yield();
    struct cl *watcher = session(0);
    struct cl *c = session(1);
    cl_send(c, "ps\n", 3);
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    cl_close(c); /* a reset, mid-output */
    cr_assert(wait_sessions(watcher, 1), "the vanished session ended");
    /* And one that vanishes while "log" streams. */
    c = session(2);
    cl_send(c, "log\n", 4);
    cl_until(c, "press Enter to stop\n");
    cl_close(c);
    coro_print_stderr("bd-test to nobody");
    cr_assert(wait_sessions(watcher, 1), "the logging session ended");
    cl_close(watcher);
    for (int i = 0; i < 3000; i++)
        coro_interrupt(many[i], ECANCELED);
}

Test(backdoor, a_client_that_vanishes_mid_command_ends_only_its_session)
{
    on_unix(vanish_body);
}

static int flood_rc, flood_errno;
static unsigned long ticks;

static int app_flood(coro_backdoor_session_t *s, int argc, char **argv,
                     void *ud)
{
    (void)argc, (void)argv, (void)ud;
    static char chunk[4096];
    memset(chunk, 'z', sizeof chunk - 1);
    chunk[sizeof chunk - 1] = '\n';
    flood_rc = 0;
    for (int i = 0; i < 4096 && flood_rc == 0; i++)
        if (coro_backdoor_write(s, chunk, sizeof chunk) < 0)
            flood_rc = -1, flood_errno = errno;
    return 0;
}

static int ticker(void *arg)
{
    (void)arg;
    while (coro_sleep(0.005) == 0)
        ticks++;
    return 0;
}

static void stall_body(void)
{
    coro_t *t = coro_spawn(ticker, NULL, "ticker");
    struct cl *watcher = session(0);
    struct cl *c = session(1);
    cl_send(c, "flood\n", 6); /* and never read */
    unsigned long before = ticks;
    cr_assert(wait_sessions(watcher, 1), "the stalled session was dropped");
    cr_assert_gt(ticks, before, "the program kept running meanwhile");
    cr_assert_eq(flood_rc, -1);
    cr_assert_eq(flood_errno, EPIPE);
    cl_close(c);
    cl_close(watcher);
    coro_interrupt(t, ECANCELED);
}

Test(backdoor, a_client_that_stops_reading_is_dropped_and_nothing_stalls)
{
    start_unix((coro_backdoor_opts_t){.send_timeout_sec = 0.3});
    cr_assert_eq(coro_backdoor_add_command(bd, "flood", "flood", "flood",
                                           app_flood, NULL),
                 0);
    run(stall_body);
    remove_dir();
}

/* ------------------------------------------------------------------ */
/* The unix socket                                                     */

Test(backdoor, the_socket_is_0600_and_removed_on_stop)
{
    start_unix((coro_backdoor_opts_t){0});
    cr_assert_str_eq(coro_backdoor_unix_path(bd), path);
    struct stat st;
    cr_assert_eq(lstat(path, &st), 0);
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    cr_assert_eq(coro_backdoor_stop(bd), 0);
    bd = NULL;
    cr_assert_eq(lstat(path, &st), -1, "removed by stop");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(rmdir(dir), 0, "no temporary directory left");
}

/* A socket file nobody listens on, as a crashed program leaves it. */
static void make_stale_socket(const char *p)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%.100s", p);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
}

Test(backdoor, a_stale_socket_is_replaced_a_live_one_and_a_file_refused)
{
    make_dir();
    make_stale_socket(path);
    coro_backdoor_opts_t o = {.unix_path = path};
    bd = coro_backdoor_start(&o);
    cr_assert_not_null(bd, "stale socket replaced: %s", strerror(errno));
    coro_backdoor_t *second = coro_backdoor_start(&o);
    cr_assert_null(second);
    cr_assert_eq(errno, EADDRINUSE);
    cr_assert_eq(coro_backdoor_stop(bd), 0);
    bd = NULL;
    cr_assert_eq(coro_event_loop(), 0);

    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "keep", 4), 4);
    close(fd);
    cr_assert_null(coro_backdoor_start(&o));
    cr_assert_eq(errno, EEXIST);
    char buf[8] = {0};
    fd = open(path, O_RDONLY);
    cr_assert_eq(read(fd, buf, sizeof buf), 4, "the file is untouched");
    close(fd);
    cr_assert_str_eq(buf, "keep");
    remove_dir();
}

Test(backdoor, the_socket_is_removed_when_the_program_exits)
{
    make_dir();
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        coro_backdoor_opts_t o = {.unix_path = path};
        if (coro_backdoor_start(&o) == NULL)
            _exit(1);
        exit(0); /* runs the exit handlers: no stop */
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_eq(access(path, F_OK), -1, "removed at exit");
    remove_dir();
}

/* ------------------------------------------------------------------ */
/* Stopping from inside                                                */

static int app_stop(coro_backdoor_session_t *s, int argc, char **argv, void *ud)
{
    (void)argc, (void)argv, (void)ud;
    coro_backdoor_printf(s, "stopping\n");
    return coro_backdoor_stop(bd);
}

static void stop_body(void)
{
    struct cl *other = session(0);
    struct cl *c = session(1);
    cl_send(c, "stop\n", 5);
    assert_has(cl_eof(c), "stopping\n");
    cl_eof(other);
    cl_close(c);
    cl_close(other);
    bd = NULL; /* stopped */
    cr_assert_eq(access(path, F_OK), -1);
}

Test(backdoor, a_command_may_stop_the_backdoor_ending_every_session)
{
    start_unix((coro_backdoor_opts_t){0});
    cr_assert_eq(
        coro_backdoor_add_command(bd, "stop", "stop", "stop", app_stop, NULL),
        0);
    run(stop_body);
    remove_dir();
}

/* ------------------------------------------------------------------ */
/* Bad input to the API                                                */

static coro_backdoor_session_t *kept;

static int app_keep(coro_backdoor_session_t *s, int argc, char **argv, void *ud)
{
    (void)argc, (void)argv, (void)ud;
    kept = s;
    cr_assert_eq(coro_backdoor_printf(s, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_backdoor_write(s, NULL, 1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_backdoor_open_output(s, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_backdoor_printf(s, "%s\n", "kept"), 5);
    cr_assert_eq(coro_backdoor_flush(s), 0);
    return 0;
}

static void api_body(void)
{
    struct cl *c = session(0);
    assert_has(cl_cmd(c, "keep"), "kept\n");
    /* Only the session's own coroutine may write to it. */
    cr_assert_eq(coro_backdoor_printf(kept, "x"), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_backdoor_write(kept, "x", 1), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_backdoor_flush(kept), -1);
    cr_assert_eq(errno, EPERM);
    cl_close(c);
}

Test(backdoor, bad_arguments_fail_with_einval_and_change_nothing)
{
    coro_backdoor_opts_t bad[] = {
        {.unix_path = NULL, .tcp_addr = NULL},
        {.tcp_addr = "127.0.0.1:0", .token = "short"},
        {.tcp_addr = "127.0.0.1:0", .token = "has a space"},
        {.tcp_addr = "127.0.0.1:0", .max_sessions = -1},
        {.tcp_addr = "127.0.0.1:0", .max_sessions = 5000},
        {.tcp_addr = "127.0.0.1:0", .idle_timeout_sec = -1},
        {.tcp_addr = "127.0.0.1:0", .idle_timeout_sec = NAN},
        {.tcp_addr = "127.0.0.1:0", .send_timeout_sec = INFINITY},
        {.tcp_addr = "127.0.0.1:0", .login_timeout_sec = -1},
        {.tcp_addr = "127.0.0.1:0", .login_timeout_sec = NAN},
        {.unix_path = ""},
        {.unix_path = "/tmp/a/very/long/path/that/does/not/fit/in/sun/path/"
                      "because/it/goes/on/and/on/and/on/and/on/bd.sock"},
    };
    cr_assert_null(coro_backdoor_start(NULL));
    cr_assert_eq(errno, EINVAL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_null(coro_backdoor_start(&bad[i]), "case %zu", i);
        cr_assert_eq(errno, EINVAL, "case %zu: %s", i, strerror(errno));
    }
    coro_backdoor_opts_t nodir = {.tcp_addr = "127.0.0.1:0",
                                  .output_dir = "/nonexistent/dir"};
    cr_assert_null(coro_backdoor_start(&nodir));
    cr_assert_eq(errno, ENOENT);
    cr_assert_eq(coro_backdoor_stop(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(coro_backdoor_tcp_addr(NULL));
    cr_assert_null(coro_backdoor_unix_path(NULL));
    cr_assert_null(coro_backdoor_token(NULL));
    cr_assert_eq(coro_backdoor_flush(NULL), -1);
    cr_assert_eq(coro_backdoor_printf(NULL, "x"), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_backdoor_open_output(NULL, "x"), -1);
    cr_assert_eq(errno, EINVAL);

    start_unix((coro_backdoor_opts_t){0});
    cr_assert_null(coro_backdoor_token(bd));
    cr_assert_eq(errno, ENOENT);
    cr_assert_null(coro_backdoor_tcp_addr(bd));
    cr_assert_eq(errno, ENOENT);
    cr_assert_eq(coro_backdoor_add_command(NULL, "a", "a", "a", app_keep, NULL),
                 -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_backdoor_add_command(bd, "a", "a", "a", NULL, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    static const char *const names[] = {"",
                                        "Upper",
                                        "1st",
                                        "sp ace",
                                        "a/b",
                                        "waytoolongnameforacommandnamehere"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cr_assert_eq(
            coro_backdoor_add_command(bd, names[i], "u", "h", app_keep, NULL),
            -1, "%s", names[i]);
        cr_assert_eq(errno, EINVAL);
    }
    cr_assert_eq(coro_backdoor_add_command(bd, "ps", "ps", "h", app_keep, NULL),
                 -1);
    cr_assert_eq(errno, EEXIST);
    cr_assert_eq(
        coro_backdoor_add_command(bd, "keep", "keep", "keep", app_keep, NULL),
        0);
    cr_assert_eq(
        coro_backdoor_add_command(bd, "keep", "keep", "keep", app_keep, NULL),
        -1);
    cr_assert_eq(errno, EEXIST);
    static int x;
    coro_backdoor_var_t badv[] = {
        {"keep", NULL, CORO_BACKDOOR_INT, &x, 0, 0, 0, 0, 0, 0},
        {"v", NULL, CORO_BACKDOOR_INT, NULL, 0, 0, 0, 0, 0, 0},
        {"v", NULL, 99, &x, 0, 0, 0, 0, 0, 0},
        {"v", NULL, CORO_BACKDOOR_INT, &x, 0, 0x10, 0, 0, 0, 0},
        {"v", NULL, CORO_BACKDOOR_INT, &x, 0, 0, 5, 1, 0, 0},
        {"v", NULL, CORO_BACKDOOR_INT, &x, 0, 0, 0, INT64_MAX, 0, 0},
        {"v", NULL, CORO_BACKDOOR_UINT, &x, 0, 0, -1, 3, 0, 0},
        {"v", NULL, CORO_BACKDOOR_DOUBLE, &x, 0, 0, 0, 0, 0, INFINITY},
        {"v", NULL, CORO_BACKDOOR_STRING, &x, 0, 0, 0, 0, 0, 0},
        {NULL, NULL, CORO_BACKDOOR_INT, &x, 0, 0, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof badv / sizeof badv[0]; i++) {
        cr_assert_eq(coro_backdoor_add_var(bd, &badv[i]), -1, "var %zu", i);
        cr_assert_eq(errno, i == 0 ? EEXIST : EINVAL, "var %zu", i);
    }
    cr_assert_eq(coro_backdoor_add_var(bd, NULL), -1);
    cr_assert_eq(coro_backdoor_remove(bd, "help"), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_backdoor_remove(bd, "nothing"), -1);
    cr_assert_eq(errno, ENOENT);
    cr_assert_eq(coro_backdoor_remove(NULL, "x"), -1);
    cr_assert_eq(errno, EINVAL);
    run(api_body);
    remove_dir();
}
