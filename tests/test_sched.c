/*
 * The scheduler through the public API: spawning, ids, names, yielding,
 * exit and join, the event loop, introspection, hooks and bad input.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(sched, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);

/* ------------------------------------------------------------------ */

static char trace[64];
static size_t trace_len;

static int yield_thrice(void *arg)
{
    for (int i = 0; i < 3; i++) {
        trace[trace_len++] = *(char *)arg;
        cr_assert_eq(coro_yield(), 0);
    }
    return 0;
}

Test(sched, yielding_coroutines_take_turns_in_spawn_order)
{
    cr_assert_not_null(coro_spawn(yield_thrice, "a", "a"));
    cr_assert_not_null(coro_spawn(yield_thrice, "b", "b"));
    cr_assert_not_null(coro_spawn(yield_thrice, "c", "c"));
    cr_assert_eq(coro_event_loop(), 0);
    trace[trace_len] = '\0';
    cr_assert_str_eq(trace, "abcabcabc");
}

static int ret_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

Test(sched, ids_count_up_from_one)
{
    coro_t *a = coro_spawn(ret_arg, 0, "a");
    coro_t *b = coro_spawn(ret_arg, 0, "b");
    cr_assert_eq(coro_id(a), 1);
    cr_assert_eq(coro_id(b), 2);
    cr_assert_eq(coro_by_id(2), b);
    cr_assert_str_eq(coro_name(a), "a");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_null(coro_by_id(1));
    cr_assert_eq(errno, ESRCH);
    coro_t *c = coro_spawn(ret_arg, 0, NULL);
    cr_assert_eq(coro_id(c), 3, "ids keep counting, not reused at once");
    cr_assert_str_eq(coro_name(c), "");
    cr_assert_eq(coro_event_loop(), 0);
}

static int self_check(void *arg)
{
    coro_t **slot = arg;
    *slot = coro_current();
    cr_assert_eq(coro_state(*slot), CORO_RUNNING);
    return 0;
}

Test(sched, current_is_the_running_coroutine_and_null_outside)
{
    coro_t *seen = NULL;
    cr_assert_null(coro_current());
    coro_t *co = coro_spawn(self_check, &seen, "me");
    cr_assert_eq(coro_state(co), CORO_RUNNABLE);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(seen, co);
    cr_assert_null(coro_current());
}

static int long_name(void *arg)
{
    (void)arg;
    coro_set_name(coro_current(), "renamed");
    cr_assert_str_eq(coro_name(coro_current()), "renamed");
    return 0;
}

Test(sched, names_are_copied_truncated_and_renamable)
{
    char name[64];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    coro_t *co = coro_spawn(long_name, NULL, name);
    name[0] = 'y';
    cr_assert_eq(strlen(coro_name(co)), CORO_NAME_MAX);
    cr_assert_eq(coro_name(co)[0], 'x');
    name[CORO_NAME_MAX] = '\0'; /* exactly the limit: kept whole */
    coro_t *exact = coro_spawn(long_name, NULL, name);
    cr_assert_str_eq(coro_name(exact), name);
    coro_t *unnamed = coro_spawn(long_name, NULL, NULL);
    cr_assert_str_eq(coro_name(unnamed), "");
    cr_assert_eq(coro_event_loop(), 0);
}

/* ------------------------------------------------------------------ */

static int fail_with_eio(void *arg)
{
    (void)arg;
    errno = EIO;
    return -1;
}

static int exit_early(void *arg)
{
    (void)arg;
    coro_exit(42);
    return 1; /* not reached */
}

struct joiner {
    coro_t *target;
    int rc, status, err, errno_;
};

static int join_it(void *arg)
{
    struct joiner *j = arg;
    j->rc = coro_join(j->target, &j->status, &j->err);
    j->errno_ = errno;
    return 0;
}

static void quiet(coro_t *co, int status, int err)
{
    (void)co, (void)status, (void)err;
}

Test(sched, join_returns_the_status_and_errno_of_the_coroutine)
{
    /* The joiners wait before the targets run: no need to be joinable. */
    struct joiner j1 = {0}, j2 = {0};
    coro_spawn(join_it, &j1, "j1");
    coro_spawn(join_it, &j2, "j2");
    j1.target = coro_spawn(exit_early, NULL, "early");
    j2.target = coro_spawn(fail_with_eio, NULL, "eio");
    coro_set_exit_notifier(quiet);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(j1.rc, 0);
    cr_assert_eq(j1.status, 42);
    cr_assert_eq(j1.err, 0);
    cr_assert_eq(j2.rc, 0);
    cr_assert_eq(j2.status, -1);
    cr_assert_eq(j2.err, EIO);
}

static int join_later(void *arg)
{
    struct joiner *j = arg;
    coro_sleep(0.01); /* the target ends before we join */
    cr_assert_eq(coro_state(j->target), CORO_DEAD);
    j->rc = coro_join(j->target, &j->status, &j->err);
    /* The coroutine was reaped: a second join is a clear error. */
    cr_assert_eq(coro_join(j->target, NULL, NULL), -1);
    j->errno_ = errno;
    return 0;
}

Test(sched, a_joinable_coroutine_keeps_its_status_until_joined_once)
{
    coro_opts_t o = {.name = "joinable", .joinable = true};
    struct joiner j = {.target = coro_spawn_opts(ret_arg, (void *)7, &o)};
    coro_spawn(join_later, &j, "late");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(j.rc, 0);
    cr_assert_eq(j.status, 7);
    cr_assert_eq(j.errno_, ESRCH);
}

static int join_self(void *arg)
{
    (void)arg;
    cr_assert_eq(coro_join(coro_current(), NULL, NULL), -1);
    cr_assert_eq(errno, EDEADLK);
    return 0;
}

Test(sched, joining_yourself_fails_with_edeadlk)
{
    coro_spawn(join_self, NULL, "self");
    cr_assert_eq(coro_event_loop(), 0);
}

static int many_joiners_target(void *arg)
{
    (void)arg;
    coro_sleep(0.01);
    return 5;
}

Test(sched, every_waiting_joiner_gets_the_status)
{
    struct joiner j[3];
    coro_t *t = coro_spawn(many_joiners_target, NULL, "t");
    for (int i = 0; i < 3; i++) {
        j[i] = (struct joiner){.target = t, .rc = -2};
        coro_spawn(join_it, &j[i], "j");
    }
    cr_assert_eq(coro_event_loop(), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(j[i].rc, 0);
        cr_assert_eq(j[i].status, 5);
    }
}

Test(sched, a_new_coroutine_runs_only_once_started)
{
    int ran = 0;
    coro_t *co = coro_new(yield_thrice, "n", NULL);
    cr_assert_not_null(co);
    cr_assert_eq(coro_state(co), CORO_NEW);
    cr_assert_eq(coro_event_loop(), 0, "a new coroutine keeps nobody busy");
    cr_assert_eq(trace_len, 0);
    cr_assert_eq(coro_start(co), 0);
    cr_assert_eq(coro_start(co), -1);
    cr_assert_eq(errno, EALREADY);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(trace_len, 3);
    (void)ran;
}

/* ------------------------------------------------------------------ */

static int exit_with_code(void *arg)
{
    coro_set_exit((int)(intptr_t)arg);
    coro_sleep(3600); /* parked until the next run of the loop */
    return 0;
}

static int wake_and_end(void *arg)
{
    coro_interrupt(arg, ECANCELED);
    return 0;
}

Test(sched, the_event_loop_returns_the_exit_code_and_can_run_again)
{
    coro_set_exit_notifier(NULL);
    coro_t *a = coro_spawn(exit_with_code, (void *)3, "a");
    cr_assert_eq(coro_event_loop(), 3);
    cr_assert_not(coro_is_running());
    cr_assert_eq(coro_state(a), CORO_WAITING);
    coro_t *b = coro_spawn(exit_with_code, (void *)4, "b");
    cr_assert_eq(coro_event_loop(), 4);
    coro_spawn(wake_and_end, a, "wa");
    coro_spawn(wake_and_end, b, "wb");
    cr_assert_eq(coro_event_loop(), 0);
}

static int check_running(void *arg)
{
    *(bool *)arg = coro_is_running();
    cr_assert_eq(coro_event_loop(), -1, "no nested loops");
    cr_assert_eq(errno, EPERM);
    return 0;
}

Test(sched, is_running_is_true_only_inside_the_loop)
{
    bool inside = false;
    cr_assert_not(coro_is_running());
    coro_spawn(check_running, &inside, "r");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert(inside);
}

Test(sched, blocking_calls_outside_a_coroutine_fail_with_eperm)
{
    cr_assert_eq(coro_yield(), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_sleep(0.001), -1);
    cr_assert_eq(errno, EPERM);
    coro_opts_t o = {.joinable = true};
    coro_t *co = coro_spawn_opts(ret_arg, 0, &o);
    cr_assert_eq(coro_join(co, NULL, NULL), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_in_parallel(NULL, 0), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_count(), 1, "dead but unjoined");
    coro_spawn(join_it, &(struct joiner){.target = co}, "reaper");
    cr_assert_eq(coro_event_loop(), 0);
}

static int wait_forever(void *arg)
{
    struct joiner *j = arg;
    return coro_join(j->target, NULL, NULL);
}

Test(sched, a_loop_where_nothing_can_wake_anyone_reports_edeadlk)
{
    coro_t *n = coro_new(ret_arg, 0, NULL);
    struct joiner j = {.target = n};
    coro_spawn(wait_forever, &j, "stuck");
    cr_assert_eq(coro_event_loop(), -1);
    cr_assert_eq(errno, EDEADLK);
    coro_start(n); /* unblock and clean up */
    cr_assert_eq(coro_event_loop(), 0);
}

/* ------------------------------------------------------------------ */

static int sleeper(void *arg)
{
    (void)arg;
    return coro_sleep(3600) == -1 && errno == ECANCELED ? 0 : -1;
}

static int count_one(coro_t *co, void *arg)
{
    (void)co;
    ++*(int *)arg;
    return 0;
}

static int stop_at_two(coro_t *co, void *arg)
{
    (void)arg;
    return coro_id(co) == 2 ? 99 : 0;
}

static int inspect(void *arg)
{
    coro_t **all = arg;
    int n = 0;
    cr_assert_eq(coro_foreach(count_one, &n), 0);
    cr_assert_eq(n, 4);
    cr_assert_eq(coro_foreach(stop_at_two, NULL), 99);
    char buf[256];
    int len = coro_where(all[0], buf, sizeof buf);
    cr_assert_gt(len, 0);
    cr_assert(strstr(buf, "sleep at ") == buf, "%s", buf);
    cr_assert(strstr(buf, "test_sched.c:") != NULL, "%s", buf);
    cr_assert(strstr(buf, "in sleeper()") != NULL, "%s", buf);
    cr_assert(strstr(buf, "(waiting)") != NULL, "%s", buf);
    coro_info_t info;
    cr_assert_eq(coro_info(all[0], &info), 0);
    cr_assert_eq(info.state, CORO_WAITING);
    cr_assert_str_eq(info.wait_what, "sleep");
    cr_assert_str_eq(info.wait_site.func, "sleeper");
    cr_assert_geq(info.switches, 1);
    /* where_all writes one line per coroutine. */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(coro_where_all(fds[1]), 4);
    close(fds[1]);
    char out[4096];
    ssize_t got = read(fds[0], out, sizeof out - 1);
    close(fds[0]);
    cr_assert_gt(got, 0);
    out[got] = '\0';
    cr_assert(strstr(out, "#1 's1': sleep at ") != NULL, "%s", out);
    cr_assert(strstr(out, "#4 'inspector': (running)") != NULL, "%s", out);
    for (int i = 0; i < 3; i++)
        coro_interrupt(all[i], ECANCELED);
    return 0;
}

Test(sched, foreach_where_and_info_describe_every_coroutine)
{
    coro_t *all[3];
    all[0] = coro_spawn(sleeper, NULL, "s1");
    all[1] = coro_spawn(sleeper, NULL, "s2");
    all[2] = coro_spawn(sleeper, NULL, "s3");
    coro_spawn(inspect, all, "inspector");
    cr_assert_eq(coro_event_loop(), 0);
}

/* ------------------------------------------------------------------ */

static int notified_status, notified_err, notified_id;

static void notifier(coro_t *co, int status, int err)
{
    notified_id = coro_id(co);
    notified_status = status;
    notified_err = err;
}

Test(sched, the_exit_notifier_hears_of_a_coroutine_that_fails)
{
    cr_assert_null(coro_set_exit_notifier(notifier));
    coro_spawn(ret_arg, (void *)1, "ok");
    coro_t *bad = coro_spawn(fail_with_eio, NULL, "bad");
    int bad_id = coro_id(bad);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(notified_id, bad_id);
    cr_assert_eq(notified_status, -1);
    cr_assert_eq(notified_err, EIO);
    cr_assert_eq(coro_set_exit_notifier(NULL), notifier);
}

/* Capture what fn writes to stderr. */
static void capture_stderr(void (*fn)(void), char *out, size_t len)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    int saved = dup(2);
    dup2(fds[1], 2);
    close(fds[1]);
    fn();
    dup2(saved, 2);
    close(saved);
    ssize_t n = read(fds[0], out, len - 1);
    close(fds[0]);
    out[n > 0 ? n : 0] = '\0';
}

static void run_failing(void)
{
    coro_spawn(fail_with_eio, NULL, "doomed");
    coro_event_loop();
}

Test(sched, the_default_notifier_prints_the_failure_with_id_and_name)
{
    char out[1024];
    capture_stderr(run_failing, out, sizeof out);
    cr_assert(strstr(out, "#1: coroutine #1 'doomed' failed: status -1") !=
                  NULL,
              "%s", out);
    cr_assert(strstr(out, strerror(EIO)) != NULL, "%s", out);
}

static int print_some(void *arg)
{
    (void)arg;
    coro_print_stderr("hello %d", 42);
    coro_write_stderr("verbatim\n", 9);
    return 0;
}

static void run_printer(void)
{
    coro_spawn(print_some, NULL, "p");
    coro_event_loop();
}

Test(sched, print_stderr_prefixes_a_timestamp_and_the_coroutine_id)
{
    char out[1024];
    capture_stderr(run_printer, out, sizeof out);
    /* "YYYY-MM-DD HH:MM:SS.uuuuuu #1: hello 42\n" then the verbatim line */
    cr_assert_eq(out[4], '-', "%s", out);
    cr_assert_eq(out[19], '.', "%s", out);
    cr_assert(strstr(out, " #1: hello 42\nverbatim\n") != NULL, "%s", out);
}

/* A sink that keeps what it is given, and how often it was called. */
struct sink_log {
    char text[2048];
    size_t len;
    int calls;
};

static void keep_text(const char *text, size_t len, void *ud)
{
    struct sink_log *l = ud;
    l->calls++;
    if (len > sizeof l->text - 1 - l->len)
        len = sizeof l->text - 1 - l->len;
    memcpy(l->text + l->len, text, len);
    l->len += len;
    l->text[l->len] = '\0';
    errno = EIO; /* the printer's errno must survive this */
}

static void print_then_check_errno(void)
{
    errno = ENOENT;
    coro_print_stderr("to the sinks %d", 7);
    cr_assert_eq(errno, ENOENT);
    coro_write_stderr("not to the sinks\n", 17);
}

Test(sched, log_sinks_receive_each_printed_line_with_its_prefix)
{
    struct sink_log a = {.len = 0}, b = {.len = 0};
    cr_assert_eq(coro_log_sink_add(keep_text, &a), 0);
    cr_assert_eq(coro_log_sink_add(keep_text, &b), 0);
    char out[1024];
    capture_stderr(print_then_check_errno, out, sizeof out);
    cr_assert(strstr(out, " #0: to the sinks 7\n") != NULL, "%s", out);
    for (struct sink_log *l = &a; l != NULL; l = l == &a ? &b : NULL) {
        cr_assert_eq(l->calls, 1);
        cr_assert(strstr(l->text, " #0: to the sinks 7\n") != NULL, "%s",
                  l->text);
        cr_assert_eq(l->text[l->len - 1], '\n');
        cr_assert_eq(strstr(l->text, "not to the sinks"), NULL);
    }
    cr_assert_eq(coro_log_sink_remove(keep_text, &a), 0);
    capture_stderr(print_then_check_errno, out, sizeof out);
    cr_assert_eq(a.calls, 1, "a removed sink is not called");
    cr_assert_eq(b.calls, 2);
    cr_assert_eq(coro_log_sink_remove(keep_text, &b), 0);
}

static void printing_sink(const char *text, size_t len, void *ud)
{
    (void)text;
    (void)len;
    int *calls = ud;
    ++*calls;
    coro_print_stderr("from inside a sink"); /* stderr only */
    cr_assert_eq(coro_log_sink_remove(printing_sink, ud), 0);
}

static void print_twice(void)
{
    coro_print_stderr("first");
    coro_print_stderr("second");
}

Test(sched, a_sink_that_prints_or_removes_itself_is_not_called_again)
{
    int calls = 0;
    cr_assert_eq(coro_log_sink_add(printing_sink, &calls), 0);
    char out[1024];
    capture_stderr(print_twice, out, sizeof out);
    cr_assert_eq(calls, 1, "called %d times", calls);
    cr_assert(strstr(out, "from inside a sink") != NULL, "%s", out);
    cr_assert(strstr(out, "second") != NULL, "%s", out);
}

Test(sched, log_sink_calls_check_their_arguments_and_the_limit)
{
    static int uds[CORO_LOG_SINKS_MAX + 1];
    cr_assert_eq(coro_log_sink_add(NULL, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_log_sink_remove(keep_text, NULL), -1);
    cr_assert_eq(errno, ENOENT);
    cr_assert_eq(coro_log_sink_remove(NULL, NULL), -1);
    cr_assert_eq(errno, ENOENT);
    for (int i = 0; i < CORO_LOG_SINKS_MAX; i++)
        cr_assert_eq(coro_log_sink_add(keep_text, &uds[i]), 0);
    cr_assert_eq(coro_log_sink_add(keep_text, &uds[0]), -1);
    cr_assert_eq(errno, EEXIST);
    cr_assert_eq(coro_log_sink_add(keep_text, &uds[CORO_LOG_SINKS_MAX]), -1);
    cr_assert_eq(errno, EAGAIN);
    for (int i = 0; i < CORO_LOG_SINKS_MAX; i++)
        cr_assert_eq(coro_log_sink_remove(keep_text, &uds[i]), 0);
    cr_assert_eq(coro_log_sink_add(keep_text, &uds[CORO_LOG_SINKS_MAX]), 0);
    cr_assert_eq(coro_log_sink_remove(keep_text, &uds[CORO_LOG_SINKS_MAX]),
                 0);
}

static void dump_now(void)
{
    cr_assert_eq(coro_dump_on_signal(SIGUSR1), 0);
    coro_spawn(sleeper, NULL, "dumped");
    coro_t *co = coro_spawn(ret_arg, 0, "short");
    (void)co;
    /* Run one pass so "dumped" parks in its sleep. */
    coro_spawn(exit_with_code, (void *)0, "exit");
    coro_event_loop();
    raise(SIGUSR1);
    cr_assert_eq(coro_dump_on_signal(0), 0);
    coro_interrupt(coro_by_id(1), ECANCELED);
    coro_interrupt(coro_by_id(3), ECANCELED);
    coro_event_loop();
}

Test(sched, the_dump_signal_prints_every_coroutine_and_where_it_waits)
{
    char out[4096];
    capture_stderr(dump_now, out, sizeof out);
    cr_assert(strstr(out, "coro: 2 coroutines; running: none") != NULL, "%s",
              out);
    cr_assert(strstr(out, "#1 'dumped': sleep at ") != NULL, "%s", out);
    cr_assert(strstr(out, "in sleeper()") != NULL, "%s", out);
    cr_assert(strstr(out, "#3 'exit': sleep at ") != NULL, "%s", out);
}

Test(sched, dump_on_signal_rejects_signals_it_cannot_use)
{
    cr_assert_eq(coro_dump_on_signal(SIGKILL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_dump_on_signal(SIGSEGV), -1);
    cr_assert_eq(coro_dump_on_signal(-1), -1);
    cr_assert_eq(coro_dump_on_signal(100000), -1);
}

/* ------------------------------------------------------------------ */

static int hook_in, hook_out, hook_spawn, hook_exit;

static void h_in(coro_t *co, void *ud)
{
    (void)co;
    cr_assert_eq(ud, &hook_in);
    hook_in++;
}
static void h_out(coro_t *co, void *ud)
{
    (void)co, (void)ud;
    hook_out++;
}
static void h_spawn(coro_t *co, void *ud)
{
    (void)co, (void)ud;
    hook_spawn++;
}
static void h_exit(coro_t *co, void *ud)
{
    (void)ud;
    cr_assert_eq(coro_state(co), CORO_RUNNING);
    hook_exit++;
}

Test(sched, hooks_see_every_spawn_switch_and_exit)
{
    coro_hooks_t h = {.switch_in = h_in, .switch_out = h_out,
                      .spawn = h_spawn, .exit = h_exit, .ud = &hook_in};
    cr_assert_eq(coro_set_hooks(&h), 0);
    coro_spawn(yield_thrice, "x", "x");
    coro_spawn(yield_thrice, "y", "y");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(hook_spawn, 2);
    cr_assert_eq(hook_exit, 2);
    cr_assert_eq(hook_in, 8, "4 slices each");
    cr_assert_eq(hook_out, 8);
    cr_assert_eq(coro_set_hooks(NULL), 0);
}

/* The poll hooks bracket every poller wait, in the loop's context. */
static int poll_depth, poll_waits, poll_blocking;

static void h_poll_begin(int64_t timeout_ticks, void *ud)
{
    cr_assert_eq(ud, &poll_depth);
    cr_assert_null(coro_current(), "the loop polls, no coroutine");
    cr_assert_eq(poll_depth, 0);
    poll_depth++;
    poll_waits++;
    if (timeout_ticks != 0)
        poll_blocking++;
}
static void h_poll_end(void *ud)
{
    (void)ud;
    cr_assert_eq(poll_depth, 1);
    poll_depth--;
}

static int sleep_twice(void *arg)
{
    (void)arg;
    coro_sleep(0.001);
    coro_sleep(0.001);
    return 0;
}

Test(sched, poll_hooks_bracket_each_wait_of_the_loop)
{
    coro_hooks_t h = {.poll_begin = h_poll_begin, .poll_end = h_poll_end,
                      .ud = &poll_depth};
    cr_assert_eq(coro_set_hooks(&h), 0);
    coro_spawn(sleep_twice, NULL, "s");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(poll_depth, 0);
    cr_assert_geq(poll_blocking, 2, "each sleep waits in the poller");
    cr_assert_geq(poll_waits, poll_blocking);
    cr_assert_eq(coro_set_hooks(NULL), 0);
}

Test(sched, get_hooks_returns_what_was_installed)
{
    coro_hooks_t got;
    cr_assert_eq(coro_get_hooks(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    coro_hooks_t h = {.switch_in = h_in, .poll_end = h_poll_end,
                      .ud = &hook_in};
    cr_assert_eq(coro_set_hooks(&h), 0);
    cr_assert_eq(coro_get_hooks(&got), 0);
    cr_assert_eq(got.switch_in, h_in);
    cr_assert_eq(got.poll_end, h_poll_end);
    cr_assert_null(got.switch_out);
    cr_assert_eq(got.ud, &hook_in);
    cr_assert_eq(coro_set_hooks(NULL), 0);
    cr_assert_eq(coro_get_hooks(&got), 0);
    cr_assert_null(got.switch_in);
    cr_assert_null(got.poll_end);
    cr_assert_null(got.ud);
}

/* ------------------------------------------------------------------ */

Test(sched, bad_arguments_fail_cleanly)
{
    cr_assert_null(coro_spawn(NULL, NULL, "x"));
    cr_assert_eq(errno, EINVAL);
    coro_opts_t small = {.stack_size = 1024};
    cr_assert_null(coro_spawn_opts(ret_arg, NULL, &small));
    cr_assert_eq(errno, EINVAL);
    coro_opts_t huge = {.stack_size = (size_t)4 << 30};
    cr_assert_null(coro_spawn_opts(ret_arg, NULL, &huge));
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_id(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(coro_name(NULL));
    cr_assert_eq(coro_state(NULL), -1);
    cr_assert_eq(coro_set_name(NULL, "x"), -1);
    cr_assert_eq(coro_start(NULL), -1);
    cr_assert_eq(coro_join(NULL, NULL, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_interrupt(NULL, EINTR), -1);
    cr_assert_eq(coro_info(NULL, NULL), -1);
    cr_assert_eq(coro_where(NULL, NULL, 0), -1);
    cr_assert_eq(coro_foreach(NULL, NULL), -1);
    cr_assert_eq(coro_stats(NULL), -1);
    cr_assert_null(coro_by_id(0));
    cr_assert_null(coro_by_id(-5));
    cr_assert_eq(coro_set_default_stack_size(1), 0);
    cr_assert_eq(errno, EINVAL);
    coro_t *co = coro_spawn(ret_arg, NULL, "x");
    cr_assert_eq(coro_interrupt(co, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_set_name(co, NULL), -1);
    coro_info_t info;
    cr_assert_eq(coro_info(co, NULL), -1);
    cr_assert_eq(coro_info(co, &info), 0);
    cr_assert_eq(coro_event_loop(), 0);
}

Test(sched, a_dead_coroutine_cannot_be_interrupted_or_started)
{
    coro_opts_t o = {.joinable = true};
    coro_t *co = coro_spawn_opts(ret_arg, 0, &o);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_interrupt(co, EINTR), -1);
    cr_assert_eq(errno, ESRCH);
    cr_assert_eq(coro_start(co), -1);
    cr_assert_eq(errno, ESRCH);
    coro_spawn(join_it, &(struct joiner){.target = co}, "reaper");
    cr_assert_eq(coro_event_loop(), 0);
}

/* What another thread gets from our coroutines. */
struct foreign {
    coro_t *fresh, *ended; /* not started; ended, joinable, not joined */
    int start_rc, start_err, intr_rc, intr_err, join_rc, join_err;
    int id_rc, id_err;
};

static void *use_from_another_thread(void *arg)
{
    struct foreign *f = arg;
    f->start_rc = coro_start(f->fresh);
    f->start_err = errno;
    f->intr_rc = coro_interrupt(f->fresh, ECANCELED);
    f->intr_err = errno;
    f->join_rc = coro_join(f->ended, NULL, NULL);
    f->join_err = errno;
    f->id_rc = coro_id(f->fresh);
    f->id_err = errno;
    coro_fini(); /* if a call made this thread a scheduler */
    return NULL;
}

/* A coro_t * belongs to the thread that made it: another thread's calls
 * are refused, not run against a scheduler it does not have (or worse,
 * its own), and the coroutines are intact for their own thread. */
Test(sched, another_threads_coroutine_is_refused_with_einval)
{
    coro_opts_t o = {.joinable = true};
    struct foreign f = {.ended = coro_spawn_opts(ret_arg, (void *)7, &o)};
    cr_assert_eq(coro_event_loop(), 0);
    f.fresh = coro_new(ret_arg, (void *)3, &o);
    cr_assert_not_null(f.fresh);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, use_from_another_thread, &f), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_expect_eq(f.start_rc, -1);
    cr_expect_eq(f.start_err, EINVAL);
    cr_expect_eq(f.intr_rc, -1);
    cr_expect_eq(f.intr_err, EINVAL);
    cr_expect_eq(f.join_rc, -1);
    cr_expect_eq(f.join_err, EINVAL);
    cr_expect_eq(f.id_rc, -1);
    cr_expect_eq(f.id_err, EINVAL);
    int st;
    cr_assert_eq(coro_join(f.ended, &st, NULL), 0);
    cr_assert_eq(st, 7);
    cr_assert_eq(coro_start(f.fresh), 0);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_join(f.fresh, &st, NULL), 0);
    cr_assert_eq(st, 3);
}

static int open_fd_count(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) != -1;
    return n;
}

/* Waits on a socket (so the thread's poller is made) and sleeps. */
static int wait_a_little(void *arg)
{
    int *sv = arg;
    if (write(sv[1], "x", 1) != 1 || coro_wait_readable(sv[0]) != 0)
        return -1;
    return coro_sleep(0.001);
}

/* Uses coro (a poller, a watched signal, the loop) and ends without
 * coro_fini(). */
static void *use_coro_and_end(void *arg)
{
    int *rc = arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        return NULL;
    coro_opts_t o = {.joinable = true};
    coro_t *co = NULL;
    int st = -1;
    if (coro_signal_watch(SIGUSR2) == 0 &&
        (co = coro_spawn_opts(wait_a_little, sv, &o)) != NULL &&
        coro_event_loop() == 0 && coro_join(co, &st, NULL) == 0)
        *rc = st;
    coro_close(sv[0]);
    coro_close(sv[1]);
    return NULL;
}

/* A thread that ends with an idle scheduler gives back what it held, as
 * coro_fini() would: its poller, its signal fd, its stacks. */
Test(sched, a_thread_that_ends_without_fini_leaves_no_fds_behind)
{
    int before = open_fd_count();
    int rc = -2;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, use_coro_and_end, &rc), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_eq(rc, 0);
    cr_assert_eq(open_fd_count(), before, "fds left open by the thread");
}

/* The fini hook: counts its calls, and checks what it may rely on. */
static int fini_calls;

static void h_fini(void *ud)
{
    cr_assert_eq(ud, &fini_calls);
    cr_assert_null(coro_current(), "outside any coroutine");
    coro_stats_t st;
    cr_assert_eq(coro_stats(&st), 0, "the scheduler is still whole");
    cr_assert_eq(st.coroutines, 0);
    cr_assert_eq(coro_fini(), -1, "not from the hook itself");
    cr_assert_eq(errno, EBUSY);
    fini_calls++;
}

static void *set_fini_hook_and_end(void *arg)
{
    (void)arg;
    coro_hooks_t h = {.fini = h_fini, .ud = &fini_calls};
    if (coro_set_hooks(&h) != 0 || run_in_coro(ret_arg, 0) != 0)
        return (void *)1;
    return NULL;
}

Test(sched, the_fini_hook_runs_once_as_the_scheduler_is_freed)
{
    coro_hooks_t h = {.fini = h_fini, .ud = &fini_calls};
    cr_assert_eq(coro_set_hooks(&h), 0);
    cr_assert_not_null(coro_spawn(ret_arg, 0, "x"));
    cr_assert_eq(coro_fini(), -1);
    cr_assert_eq(errno, EBUSY);
    cr_assert_eq(fini_calls, 0, "not while a coroutine exists");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_fini(), 0);
    cr_assert_eq(fini_calls, 1);
    coro_hooks_t got;
    cr_assert_eq(coro_get_hooks(&got), 0);
    cr_assert_null(got.fini, "the hooks went with the scheduler");
    cr_assert_eq(coro_fini(), 0, "no scheduler: nothing to do");
    cr_assert_eq(fini_calls, 1);
    /* A thread that ends without coro_fini() gets the call too. */
    pthread_t t;
    void *res;
    cr_assert_eq(pthread_create(&t, NULL, set_fini_hook_and_end, NULL), 0);
    cr_assert_eq(pthread_join(t, &res), 0);
    cr_assert_null(res);
    cr_assert_eq(fini_calls, 2);
}

Test(sched, fini_refuses_while_coroutines_exist)
{
    coro_t *co = coro_spawn(ret_arg, 0, "x");
    cr_assert_eq(coro_fini(), -1);
    cr_assert_eq(errno, EBUSY);
    cr_assert_not_null(co);
    cr_assert_eq(coro_event_loop(), 0);
}

static coro_t *joiner_co;

static int end_after_interrupting_joiner(void *arg)
{
    (void)arg;
    coro_interrupt(joiner_co, EINTR); /* the joiner is waiting on us */
    return 9;
}

static int join_then_block(void *arg)
{
    int *out = arg;
    joiner_co = coro_current();
    coro_t *t = coro_spawn(end_after_interrupting_joiner, NULL, "t");
    out[0] = coro_join(t, &out[1], NULL);
    out[2] = coro_yield(); /* the deferred interrupt arrives here */
    out[3] = errno;
    return 0;
}

Test(sched, a_join_whose_status_arrived_keeps_it_and_defers_the_interrupt)
{
    int out[4] = {0};
    coro_spawn(join_then_block, out, "j");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(out[0], 0);
    cr_assert_eq(out[1], 9);
    cr_assert_eq(out[2], -1);
    cr_assert_eq(out[3], EINTR);
}

Test(sched, set_exit_before_the_loop_makes_it_return_at_once)
{
    coro_t *co = coro_spawn(ret_arg, 0, "x");
    coro_set_exit(5);
    cr_assert_eq(coro_event_loop(), 5);
    cr_assert_eq(coro_state(co), CORO_RUNNABLE, "nothing ran");
    cr_assert_eq(coro_event_loop(), 0, "the exit was consumed");
}

Test(sched, an_ended_joinable_coroutine_can_be_joined_from_main)
{
    coro_opts_t o = {.joinable = true};
    coro_t *co = coro_spawn_opts(ret_arg, (void *)3, &o);
    cr_assert_eq(coro_event_loop(), 0);
    int st = 0;
    cr_assert_eq(coro_join(co, &st, NULL), 0);
    cr_assert_eq(st, 3);
}

static int usr2_seen;

static void on_usr2(int sig)
{
    (void)sig;
    usr2_seen++;
}

Test(sched, removing_the_dump_gives_the_signal_its_old_handler_back)
{
    signal(SIGUSR2, on_usr2);
    cr_assert_eq(coro_dump_on_signal(SIGUSR2), 0);
    cr_assert_eq(coro_dump_on_signal(0), 0);
    raise(SIGUSR2);
    cr_assert_eq(usr2_seen, 1);
}

static int sleep_briefly(void *arg)
{
    (void)arg;
    return coro_sleep(0.01);
}

Test(sched, a_forked_child_runs_its_own_loop)
{
    coro_spawn(sleep_briefly, NULL, "before");
    cr_assert_eq(coro_event_loop(), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        coro_spawn(sleep_briefly, NULL, "child");
        _exit(coro_event_loop() == 0 ? 0 : 1);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

Test(sched, state_names_match_the_states)
{
    cr_expect_str_eq(coro_state_name(CORO_NEW), "new");
    cr_expect_str_eq(coro_state_name(CORO_RUNNABLE), "runnable");
    cr_expect_str_eq(coro_state_name(CORO_RUNNING), "running");
    cr_expect_str_eq(coro_state_name(CORO_WAITING), "waiting");
    cr_expect_str_eq(coro_state_name(CORO_DEAD), "dead");
    cr_expect_str_eq(coro_state_name(0), "?");
    cr_expect_str_eq(coro_state_name(-1), "?");
    cr_expect_str_eq(coro_state_name(99), "?");
}
