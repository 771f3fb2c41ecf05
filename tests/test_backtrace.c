/*
 * Stacks and symbols: coro_backtrace() of a parked and of the running
 * coroutine, coro_backtrace_signal() from a real signal that interrupts a
 * busy coroutine, coro_symbolize(), and their errors.  The functions to be
 * found are never inlined; most are exported (-rdynamic), parked_fn is
 * static (named from the program's own symbol table).
 */
#include "helpers.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

TestSuite(backtrace, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 60);

#define MAXF 64

/* Index of the first frame whose name starts with fn, or -1. */
static int find_frame(void **pcs, int n, const char *fn)
{
    for (int i = 0; i < n; i++) {
        char name[256];
        coro_symbolize(pcs[i], i > 0, name, sizeof name);
        if (strncmp(name, fn, strlen(fn)) == 0 && name[strlen(fn)] == '+')
            return i;
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* A parked coroutine                                                  */

static coro_event_t parked_ev = CORO_EVENT_INIT;

__attribute__((noinline)) int bt_parked_leaf(void)
{
    int rc = coro_event_wait(&parked_ev, NULL);
    __asm__ volatile("" ::: "memory"); /* not a tail call */
    return rc;
}

__attribute__((noinline)) int bt_parked_mid(void)
{
    int rc = bt_parked_leaf();
    __asm__ volatile("" ::: "memory");
    return rc + 1;
}

static int parked_fn(void *arg)
{
    (void)arg;
    return bt_parked_mid() - 1;
}

static int look_at_parked(void *arg)
{
    (void)arg;
    coro_t *co = coro_spawn(parked_fn, NULL, "parked");
    cr_assert_not_null(co);
    coro_yield(); /* it runs and parks */
    cr_assert_eq(coro_state(co), CORO_WAITING);
    void *pcs[MAXF];
    int n = coro_backtrace(co, pcs, MAXF);
    cr_assert_gt(n, 2);
    int leaf = find_frame(pcs, n, "bt_parked_leaf");
    int mid = find_frame(pcs, n, "bt_parked_mid");
    cr_expect_geq(leaf, 0, "bt_parked_leaf not in the backtrace");
    cr_expect_gt(mid, leaf, "callers come after callees");
    /* A static function is named from the program's own symbol table. */
    cr_expect_gt(find_frame(pcs, n, "parked_fn"), mid);
    /* A short array keeps the innermost frames. */
    void *two[2];
    cr_expect_eq(coro_backtrace(co, two, 2), 2);
    cr_expect_eq(two[0], pcs[0]);
    cr_expect_eq(two[1], pcs[1]);
    cr_expect_eq(coro_backtrace(co, NULL, 0), 0);
    coro_event_set(&parked_ev, NULL);
    int status = -1;
    cr_assert_eq(coro_join(co, &status, NULL), 0);
    cr_expect_eq(status, 0);
    return 0;
}

Test(backtrace, parked_coroutine_shows_its_callers)
{
    cr_assert_eq(run_in_coro(look_at_parked, NULL), 0);
}

/* ------------------------------------------------------------------ */
/* The running coroutine                                               */

static int self_n = -1, self_at = -1;

__attribute__((noinline)) void bt_self(void)
{
    void *pcs[MAXF];
    self_n = coro_backtrace(coro_current(), pcs, MAXF);
    self_at = find_frame(pcs, self_n > 0 ? self_n : 0, "bt_self");
    __asm__ volatile("" ::: "memory");
}

static int self_fn(void *arg)
{
    (void)arg;
    bt_self();
    return 0;
}

Test(backtrace, running_coroutine_starts_at_the_caller)
{
    cr_assert_eq(run_in_coro(self_fn, NULL), 0);
    cr_expect_gt(self_n, 0);
    cr_expect_eq(self_at, 0, "the first frame is the caller (%d)", self_at);
}

/* ------------------------------------------------------------------ */
/* From a signal handler                                               */

/* Several samples: one may land in a prologue, where the frame record
 * is not made yet and the walk skips a caller. */
#define SPIN_SAMPLES 16
static _Atomic int sig_samples;  /* samples taken in a coroutine */
static _Atomic bool spin_done;
static coro_t *sig_co[SPIN_SAMPLES];
static void *sig_pcs[SPIN_SAMPLES][MAXF];
static int sig_n[SPIN_SAMPLES];

static void on_sample(int sig, siginfo_t *si, void *uctx)
{
    (void)sig, (void)si;
    int i = atomic_load(&sig_samples);
    if (i >= SPIN_SAMPLES)
        return;
    coro_t *co = NULL;
    int n = coro_backtrace_signal(uctx, &co, sig_pcs[i], MAXF);
    if (n > 0) {
        sig_co[i] = co;
        sig_n[i] = n;
        atomic_store(&sig_samples, i + 1);
    }
}

__attribute__((noinline)) void bt_pause(void)
{
    __asm__ volatile("" ::: "memory");
}

/* Not a leaf: a leaf may run without a frame record (GCC 12 ignores
 * -mno-omit-leaf-frame-pointer), and a sample taken there misses its
 * caller.  bt_spin_caller is seen whether the signal lands here or in
 * bt_pause. */
__attribute__((noinline)) void bt_spin(void)
{
    while (atomic_load(&sig_samples) < SPIN_SAMPLES &&
           !atomic_load(&spin_done))
        bt_pause();
}

__attribute__((noinline)) void bt_spin_caller(void)
{
    bt_spin();
    __asm__ volatile("" ::: "memory");
}

static int spin_fn(void *arg)
{
    (void)arg;
    bt_spin_caller();
    return 0;
}

struct kicker {
    pthread_t target;
    _Atomic bool stop;
};

static void *kick(void *arg)
{
    struct kicker *k = arg;
    for (int i = 0; i < 20000 && !atomic_load(&k->stop); i++) {
        pthread_kill(k->target, SIGUSR2);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&spin_done, true); /* gave up: let the test fail */
    return NULL;
}

Test(backtrace, signal_sample_names_the_interrupted_coroutine)
{
    /* TSan holds asynchronous signals back until its own safe points and
     * then runs the handler with the saved context of a stack that has
     * moved on since. */
    SKIP_UNDER_TSAN("it delays signals: the sampled context is stale");
    struct sigaction sa = {0};
    sa.sa_sigaction = on_sample;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR2, &sa, NULL), 0);

    /* Outside any coroutine there is nothing to sample. */
    void *pcs[4];
    coro_t *none = (coro_t *)&pcs;
    ucontext_t uc;
    memset(&uc, 0, sizeof uc);
    cr_expect_eq(coro_backtrace_signal(&uc, &none, pcs, 4), 0);
    cr_expect_null(none);
    cr_expect_eq(coro_backtrace_signal(NULL, NULL, pcs, 4), 0);

    coro_t *co = coro_spawn(spin_fn, NULL, "spinner");
    cr_assert_not_null(co);
    int id = coro_id(co);
    struct kicker k = {.target = pthread_self()};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, kick, &k), 0);
    cr_assert_eq(coro_event_loop(), 0);
    atomic_store(&k.stop, true);
    pthread_join(t, NULL);
    signal(SIGUSR2, SIG_IGN);

    cr_assert_eq(atomic_load(&sig_samples), SPIN_SAMPLES,
                 "not enough samples in 20 s");
    int found = 0;
    for (int i = 0; i < SPIN_SAMPLES; i++) {
        cr_expect_eq(sig_co[i], co,
                     "the sample names the spinning coroutine #%d", id);
        found += find_frame(sig_pcs[i], sig_n[i], "bt_spin_caller") >= 1;
    }
    cr_expect_geq(found * 2, SPIN_SAMPLES,
                  "bt_spin_caller is a caller in %d of %d samples", found,
                  SPIN_SAMPLES);
}

/* ------------------------------------------------------------------ */
/* A sample inside a system call wrapper                               */

/* Some of glibc's cancellable wrappers (send, in a process with threads)
 * use rbp as a scratch register around the system call, which breaks the
 * frame-pointer chain right at the interrupted code; the walk finds the
 * frame record above the stack pointer and goes on. */

#define WSAMPLES 64
static void *w_pcs[WSAMPLES][16];
static int w_n[WSAMPLES];
static _Atomic int w_count;
static int w_fd = -1;

static void on_write_sample(int sig, siginfo_t *si, void *uctx)
{
    (void)sig, (void)si;
    int i = atomic_load(&w_count);
    if (i >= WSAMPLES)
        return;
    int n = coro_backtrace_signal(uctx, NULL, w_pcs[i], 16);
    if (n > 0) {
        w_n[i] = n;
        atomic_store(&w_count, i + 1);
    }
}

__attribute__((noinline)) void bt_writer(void)
{
    char c = 'x';
    /* Nobody reads the other end: once it is full, each call fails with
     * EAGAIN, through the same system call path. */
    while (atomic_load(&w_count) < WSAMPLES && !atomic_load(&spin_done))
        (void)send(w_fd, &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

__attribute__((noinline)) void bt_writer_caller(void)
{
    bt_writer();
    __asm__ volatile("" ::: "memory");
}

static int writer_fn(void *arg)
{
    (void)arg;
    bt_writer_caller();
    return 0;
}

Test(backtrace, a_sample_in_a_system_call_wrapper_still_finds_the_callers)
{
    SKIP_UNDER_TSAN("it delays signals: the sampled context is stale");
#if defined(__SANITIZE_ADDRESS__)
    cr_skip_test("ASan's write interceptor has no frame records");
#endif
    struct sigaction sa = {0};
    sa.sa_sigaction = on_write_sample;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    w_fd = sv[0];
    cr_assert_not_null(coro_spawn(writer_fn, NULL, "writer"));
    struct kicker k = {.target = pthread_self()};
    pthread_t t; /* a second thread: glibc takes the cancellable path */
    cr_assert_eq(pthread_create(&t, NULL, kick, &k), 0);
    cr_assert_eq(coro_event_loop(), 0);
    atomic_store(&k.stop, true);
    pthread_join(t, NULL);
    signal(SIGUSR2, SIG_IGN);
    close(sv[0]);
    close(sv[1]);

    int in_write = 0, found = 0;
    for (int i = 0; i < atomic_load(&w_count); i++) {
        char name[256];
        coro_symbolize(w_pcs[i][0], false, name, sizeof name);
        if (strstr(name, "send") == NULL || strstr(name, "libc") == NULL)
            continue; /* not inside libc's send */
        in_write++;
        found += find_frame(w_pcs[i], w_n[i], "bt_writer_caller") > 0;
    }
    cr_assert_gt(in_write, 0, "no sample landed in send() in %d",
                 atomic_load(&w_count));
    cr_expect_geq(found * 2, in_write,
                  "%d of %d samples in send() reach bt_writer_caller",
                  found, in_write);
}

/* ------------------------------------------------------------------ */
/* Errors and symbols                                                  */

static int dead_fn(void *arg)
{
    (void)arg;
    return 7;
}

static int errors_fn(void *arg)
{
    (void)arg;
    void *pcs[4];
    errno = 0;
    cr_expect_eq(coro_backtrace(NULL, pcs, 4), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(coro_backtrace(coro_current(), pcs, -1), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(coro_backtrace(coro_current(), NULL, 4), -1);
    cr_expect_eq(errno, EINVAL);

    coro_t *fresh = coro_new(dead_fn, NULL, NULL);
    cr_assert_not_null(fresh);
    cr_expect_eq(coro_backtrace(fresh, pcs, 4), 0, "not started: empty");
    cr_assert_eq(coro_start(fresh), 0);

    coro_opts_t o = {.joinable = true};
    coro_t *dead = coro_new(dead_fn, NULL, &o);
    cr_assert_not_null(dead);
    cr_assert_eq(coro_start(dead), 0);
    while (coro_state(dead) != CORO_DEAD)
        coro_yield();
    errno = 0;
    cr_expect_eq(coro_backtrace(dead, pcs, 4), -1);
    cr_expect_eq(errno, ESRCH);
    cr_assert_eq(coro_join(dead, NULL, NULL), 0);
    return 0;
}

Test(backtrace, bad_arguments_fail_cleanly)
{
    cr_assert_eq(run_in_coro(errors_fn, NULL), 0);
}

Test(backtrace, symbolize_names_exported_functions)
{
    char buf[256];
    int n = coro_symbolize((const void *)bt_self, false, buf, sizeof buf);
    cr_assert_gt(n, 0);
    cr_expect_eq(strncmp(buf, "bt_self+0x0", 11), 0, "got %s", buf);
    /* Measuring, and truncating like snprintf(). */
    cr_expect_eq(coro_symbolize((const void *)bt_self, false, NULL, 0), n);
    char small[4];
    cr_expect_eq(coro_symbolize((const void *)bt_self, false, small,
                                sizeof small), n);
    cr_expect_str_eq(small, "bt_");
    errno = 0;
    cr_expect_eq(coro_symbolize((const void *)bt_self, false, NULL, 8), -1);
    cr_expect_eq(errno, EINVAL);
    /* An address nowhere still gives text. */
    cr_expect_gt(coro_symbolize((const void *)8, false, buf, sizeof buf), 0);
}
