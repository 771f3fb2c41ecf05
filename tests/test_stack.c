/*
 * Stacks: sizes, the cache, overflow reports (guard page and canary) and
 * coroutine counts far beyond what guard pages alone would allow.
 */
#include "helpers.h"
#include "coro_internal.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(stack, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 120);

/* Recurse until the stack runs out; the volatile buffer keeps every
 * frame real and the volatile limit hides the endlessness from gcc. */
static volatile int limit = 1 << 30;

static int recurse(int depth)
{
    volatile char pad[512];
    pad[0] = (char)depth;
    if (depth >= limit)
        return 0;
    return recurse(depth + 1) + pad[0];
}

static int overflow(void *arg)
{
    (void)arg;
    return recurse(0);
}

/* Recurse `bytes` deep, then yield from the bottom (the canary check). */
static int recurse_then_yield(size_t bytes)
{
    volatile char pad[1024];
    memset((char *)pad, 0x41, sizeof pad);
    if (bytes > sizeof pad)
        return recurse_then_yield(bytes - sizeof pad) + pad[0];
    coro_yield();
    return pad[0];
}

static int overflow_a_little(void *arg)
{
    return recurse_then_yield((size_t)(intptr_t)arg);
}

static int sleep_forever(void *arg)
{
    (void)arg;
    return coro_sleep(3600) == -1 && errno == ECANCELED ? 0 : -1;
}

/* Run body in a child process with stderr captured; returns the wait
 * status, and what the child wrote in out. */
static int in_child(void (*body)(void), char *out, size_t len)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        body();
        _exit(0);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t n;
    while (got < len - 1 && (n = read(fds[0], out + got, len - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return status;
}

static void guarded_overflow(void)
{
    coro_opts_t o = {.name = "deep", .stack_size = 64 * 1024};
    coro_spawn_opts(overflow, NULL, &o);
    coro_event_loop();
}

Test(stack, an_overflow_into_the_guard_page_names_the_coroutine)
{
    char out[2048];
    int st = in_child(guarded_overflow, out, sizeof out);
    cr_assert(WIFSIGNALED(st), "child exited normally: %s", out);
    cr_assert_eq(WTERMSIG(st), SIGSEGV);
    cr_assert(strstr(out, "coro: stack overflow in coroutine #1 'deep' "
                          "(stack size 65536 bytes)") != NULL,
              "%s", out);
    cr_assert(strstr(out, "guard page") != NULL, "%s", out);
}

/* One frame larger than the whole stack, written at its far end only:
 * without probes it would step over the guard page into the stack below.
 * Programs that link coro are built with -fstack-clash-protection, so the
 * frame is probed page by page and the guard page is hit. */
__attribute__((noinline)) static int big_frame(void)
{
    char big[96 * 1024];
    memset(big, 'X', 4096); /* the lowest addresses: past the guard */
    __asm__ volatile("" : : "r"(big) : "memory");
    return big[4095];
}

static int neighbour(void *arg)
{
    (void)arg;
    coro_sleep(3600);
    return 0;
}

static int jumper(void *arg)
{
    (void)arg;
    _exit(big_frame() == 'X' ? 0 : 1); /* not caught: the test fails */
}

static void big_frame_overflow(void)
{
    coro_opts_t o = {.stack_size = 64 * 1024};
    for (int i = 0; i < 4; i++) /* stacks below the jumper's */
        coro_spawn_opts(neighbour, NULL, &o);
    o.name = "jumper";
    coro_spawn_opts(jumper, NULL, &o);
    coro_event_loop();
}

Test(stack, a_frame_larger_than_the_guard_page_still_hits_it)
{
    char out[2048];
    int st = in_child(big_frame_overflow, out, sizeof out);
    cr_assert(WIFSIGNALED(st), "child exited normally: %s", out);
    cr_assert(strstr(out, "coro: stack overflow in coroutine #5 'jumper'") !=
                  NULL,
              "%s", out);
}

/* Spawn sleepers until the guard budget is spent (exit 3 if the count of
 * guarded stacks disagrees). */
static void spend_guard_budget(void)
{
    coro_stats_t st;
    size_t budget = (size_t)coro__sys_max_map_count() / 4;
    coro_opts_t small = {.stack_size = CORO_STACK_MIN};
    for (size_t i = 0; i < budget; i++)
        coro_spawn_opts(sleep_forever, NULL, &small);
    coro_stats(&st);
    if (st.stacks_guarded != budget) {
        fprintf(stderr, "guarded %zu != budget %zu\n", st.stacks_guarded,
                budget);
        _exit(3);
    }
}

/* Spawn fn under name with the smallest stack; exit 4 unless its stack
 * is guarded as expected; print its id; run the loop. */
static void spawn_small_and_run(coro_fn fn, void *arg, const char *name,
                                bool guarded)
{
    coro_opts_t o = {.name = name, .stack_size = CORO_STACK_MIN};
    coro_t *co = coro_spawn_opts(fn, arg, &o);
    coro_info_t info;
    coro_info(co, &info);
    if (info.stack_guarded != guarded)
        _exit(4);
    fprintf(stderr, "spawned #%d\n", info.id);
    coro_event_loop();
}

/* Past the budget, the first stack of an unguarded slab is guarded by the
 * slab's spare page. */
static void lead_overflow(void)
{
    spend_guard_budget();
    spawn_small_and_run(overflow, NULL, "lead", true);
}

/* Past the budget and the first unguarded stack, overflow one a little. */
static void canary_overflow(void)
{
    spend_guard_budget();
    coro_opts_t small = {.stack_size = CORO_STACK_MIN};
    coro_spawn_opts(sleep_forever, NULL, &small); /* the lead stack */
    spawn_small_and_run(overflow_a_little,
                        (void *)(intptr_t)(CORO_STACK_MIN + 1024), "canary",
                        false);
}

/* The message the overflow of coroutine `name` printed in out, ending in
 * how unless how is "". */
static void expect_overflow_report(const char *out, const char *name,
                                   const char *how)
{
    char want[128];
    int id = 0;
    const char *sp = strstr(out, "spawned #");
    cr_assert_not_null(sp, "%s", out);
    sscanf(sp, "spawned #%d", &id);
    snprintf(want, sizeof want,
             "coro: stack overflow in coroutine #%d '%s' (stack size "
             "16384 bytes): %s",
             id, name, how);
    cr_assert(strstr(out, want) != NULL, "want '%s' in: %s", want, out);
}

Test(stack, the_first_unguarded_stack_of_a_slab_has_a_guard_page)
{
    SKIP_UNDER_TSAN("spends the guard budget: 16k coroutines");
    char out[4096];
    int st = in_child(lead_overflow, out, sizeof out);
    cr_assert(WIFSIGNALED(st), "child exited with %d: %s",
              WEXITSTATUS(st), out);
    cr_assert_eq(WTERMSIG(st), SIGSEGV);
    expect_overflow_report(out, "lead", "guard page hit");
}

Test(stack, an_overflow_of_an_unguarded_stack_is_caught_by_its_canary)
{
    SKIP_UNDER_TSAN("spends the guard budget: 16k coroutines");
    char out[4096];
    int st = in_child(canary_overflow, out, sizeof out);
    cr_assert(WIFSIGNALED(st), "child exited with %d: %s",
              WEXITSTATUS(st), out);
    /* Caught at switch-out by the canary; under ASan, whose frames are
     * larger, the overflow may run on to the slab's guard page first. */
    expect_overflow_report(out, "canary", "");
}

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

struct many {
    coro_t **all;
    size_t n;
    int maps;
    coro_stats_t st;
};

static int stop_all(void *arg)
{
    struct many *m = arg;
    m->maps = count_maps();
    coro_stats(&m->st);
    for (size_t i = 0; i < m->n; i++)
        coro_interrupt(m->all[i], ECANCELED);
    return 0;
}

Test(stack, two_hundred_thousand_parked_coroutines_fit_the_default_map_limit)
{
    SKIP_UNDER_TSAN("200k coroutines");
    struct many m = {.n = 200000};
    m.all = malloc(m.n * sizeof *m.all);
    for (size_t i = 0; i < m.n; i++) {
        m.all[i] = coro_spawn(sleep_forever, NULL, NULL);
        cr_assert_not_null(m.all[i], "spawn %zu: %s", i, strerror(errno));
    }
    coro_spawn(stop_all, &m, "stop");
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(m.st.timers, m.n, "all parked at once");
    cr_assert_lt(m.maps, coro__sys_max_map_count() - 10000,
                 "mappings: %d", m.maps);
    cr_assert_gt(m.st.stacks_guarded, 0);
    free(m.all);
}

static int use_big_frame(void *arg)
{
    size_t n = (size_t)(intptr_t)arg;
    volatile char *buf = __builtin_alloca(n);
    memset((char *)buf, 1, n);
    return buf[n - 1];
}

static int reap_one(void *arg)
{
    int status = 0;
    cr_assert_eq(coro_join(arg, &status, NULL), 0);
    cr_assert_eq(status, 1);
    return 0;
}

Test(stack, a_coroutine_can_use_the_stack_size_it_asked_for)
{
    coro_opts_t o = {.stack_size = 1 << 20, .joinable = true};
    coro_t *co = coro_spawn_opts(use_big_frame, (void *)(intptr_t)(900 << 10),
                                 &o);
    coro_info_t info;
    cr_assert_eq(coro_info(co, &info), 0);
    cr_assert_geq(info.stack_size, (1 << 20) - 4096);
    cr_assert(info.stack_guarded);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(coro_state(co), CORO_DEAD);
    coro_spawn(reap_one, co, "reaper");
    cr_assert_eq(coro_event_loop(), 0);
}

static int noop(void *arg)
{
    (void)arg;
    return 0;
}

/* Fill all but 4 KiB of the usable stack coro_info() reports. */
static int fill_own_stack(void *arg)
{
    (void)arg;
    coro_info_t info;
    cr_assert_eq(coro_info(coro_current(), &info), 0);
    /* The record, its canary slot and at most 31 lines of colour. */
    cr_assert_geq(info.stack_size, 64 * 1024 - 2368, "usable %zu",
                  info.stack_size);
    cr_assert_lt(info.stack_size, 64 * 1024);
    return use_big_frame((void *)(intptr_t)(info.stack_size - 4096));
}

/* Spawn n joinable coroutines that fill their stacks, then join them. */
static int fill_many(void *arg)
{
    size_t n = (size_t)(intptr_t)arg;
    coro_opts_t o = {.stack_size = 64 * 1024, .joinable = true};
    coro_t **kids = malloc(n * sizeof *kids);
    cr_assert_not_null(kids);
    for (size_t i = 0; i < n; i++)
        cr_assert_not_null(kids[i] = coro_spawn_opts(fill_own_stack, NULL, &o));
    for (size_t i = 0; i < n; i++) {
        int status = 0;
        cr_assert_eq(coro_join(kids[i], &status, NULL), 0, "join %zu", i);
        cr_assert_eq(status, 1);
    }
    free(kids);
    return 0;
}

Test(stack, neighbouring_coroutines_can_each_use_their_whole_stack)
{
    /* Neighbours in a slab have records at different offsets (cache
     * colours): none may reach into the next one's record. */
    coro_spawn(fill_many, (void *)(intptr_t)256, "filler");
    cr_assert_eq(coro_event_loop(), 0);
}

Test(stack, the_default_size_is_settable_and_checked)
{
    size_t old = coro_set_default_stack_size(128 * 1024);
    cr_assert_geq(old, 64 * 1024);
    coro_t *co = coro_spawn(noop, NULL, NULL);
    coro_info_t info;
    coro_info(co, &info);
    cr_assert_gt(info.stack_size, 64 * 1024);
    cr_assert_leq(info.stack_size, 128 * 1024);
    cr_assert_eq(coro_set_default_stack_size(100), 0);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_event_loop(), 0);
}

Test(stack, freed_stacks_are_cached_and_reused)
{
    for (int i = 0; i < 10; i++)
        coro_spawn(noop, NULL, NULL);
    cr_assert_eq(coro_event_loop(), 0);
    coro_stats_t st;
    coro_stats(&st);
    cr_assert_eq(st.stacks_cached, 10);
    cr_assert_eq(st.stacks_in_use, 0);
    size_t guarded = st.stacks_guarded;
    for (int i = 0; i < 10; i++)
        coro_spawn(noop, NULL, NULL);
    coro_stats(&st);
    cr_assert_eq(st.stacks_cached, 0, "reused from the cache");
    cr_assert_eq(st.stacks_guarded, guarded, "no new stacks mapped");
    cr_assert_eq(coro_event_loop(), 0);
}

Test(stack, a_failed_mapping_fails_the_spawn_and_changes_nothing)
{
    coro__sys_fail(CORO__SYS_MMAP, 1, ENOMEM);
    cr_assert_null(coro_spawn(noop, NULL, "x"));
    cr_assert_eq(errno, ENOMEM);
    cr_assert_eq(coro_count(), 0);
    coro__sys_fail(CORO__SYS_MPROTECT, 2, ENOMEM);
    cr_assert_null(coro_spawn(noop, NULL, "x"));
    cr_assert_eq(errno, ENOMEM);
    coro__sys_fail(CORO__SYS_MALLOC, 1, ENOMEM);
    cr_assert_null(coro_spawn(noop, NULL, "x"));
    cr_assert_eq(errno, ENOMEM);
    coro_t *co = coro_spawn(noop, NULL, "x");
    cr_assert_not_null(co);
    cr_assert_eq(coro_id(co), 1, "no id was used up");
    cr_assert_eq(coro_event_loop(), 0);
}
