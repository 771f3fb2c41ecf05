/*
 * Blocking offload: jobs run on pool threads while the loop keeps running
 * coroutines, results and errno come back, more jobs than threads queue in
 * order, deadlines and interrupts end the wait at once while the job runs
 * on, getaddrinfo and file I/O through the pool, pool size and shutdown
 * (no thread left), bad input, ENOMEM through the seam, and fork().
 *
 * Jobs that must outlive their caller wait on a gate the test opens, so no
 * test depends on timing: a job that blocked the loop, or a call that
 * waited for its job after a deadline, would hang until Criterion's
 * timeout instead.
 */
#include "helpers.h"
#include "coro_internal.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(offload, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 60);
TestSuite(offload_deadline, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 60);
TestSuite(offload_wrappers, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 60);
TestSuite(offload_pool, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 60);

/* Threads of this process, from /proc/self/task. */
static int thread_count(void);

/* The count with this thread's scheduler (and so the clock thread)
 * made: the base the pool's threads add to. */
static int base_threads(void)
{
    cr_assert_eq(coro_set_hooks(NULL), 0); /* makes the scheduler */
    return thread_count();
}

static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The thread count once it is n, or whatever it is after a long while: a
 * joined thread may still be listed for a moment (the kernel wakes the
 * joiner a little before it removes the thread). */
static int threads_settle_at(int n)
{
    int c = thread_count();
    for (long i = 0; i < 1000000 && c != n; i++) {
        sched_yield();
        c = thread_count();
    }
    return c;
}

/* A gate a job waits at until the test opens it (from any thread). */
static atomic_int gate_open;
static atomic_int gate_waiting; /* jobs at the gate */
static atomic_int gate_passed;  /* jobs that went through */

static intptr_t gated(void *arg)
{
    atomic_fetch_add(&gate_waiting, 1);
    while (!atomic_load(&gate_open))
        sched_yield();
    atomic_fetch_add(&gate_passed, 1);
    return (intptr_t)arg;
}

/* ---- running jobs -------------------------------------------------- */

struct ticks {
    atomic_int ticks;   /* the ticker's progress */
    atomic_int done;    /* the offloading coroutine has its result */
    intptr_t result;
};

/* CPU work that ends only once the ticker has ticked 100 times: it can
 * finish only if the loop runs coroutines while the job runs. */
static intptr_t spin_until_ticked(void *arg)
{
    struct ticks *t = arg;
    uint64_t x = 1;
    while (atomic_load(&t->ticks) < 100)
        for (int i = 0; i < 1000; i++)
            x = x * 6364136223846793005u + 1442695040888963407u;
    return (intptr_t)(x | 1) != 0 ? 7 : 0;
}

static int offloader(void *arg)
{
    struct ticks *t = arg;
    int rc = coro_offload(spin_until_ticked, t, &t->result);
    atomic_store(&t->done, 1);
    return rc;
}

static int ticker(void *arg)
{
    struct ticks *t = arg;
    while (!atomic_load(&t->done)) {
        atomic_fetch_add(&t->ticks, 1);
        coro_yield();
    }
    return 0;
}

Test(offload, a_cpu_heavy_job_runs_while_other_coroutines_keep_running)
{
    struct ticks t = {0};
    coro_t *o = coro_spawn_opts(offloader, &t, &(coro_opts_t){.joinable = 1});
    cr_assert_not_null(coro_spawn(ticker, &t, "ticker"));
    cr_assert_eq(coro_event_loop(), 0);
    int st;
    cr_assert_eq(coro_join(o, &st, NULL), 0);
    cr_assert_eq(st, 0);
    cr_assert_eq(t.result, 7);
    cr_assert_geq(atomic_load(&t.ticks), 100);
}

static intptr_t fails_with_enoent(void *arg)
{
    (void)arg;
    errno = ENOENT;
    return -42;
}

static intptr_t doubles(void *arg)
{
    return 2 * (intptr_t)arg;
}

static int results_and_errno(void *arg)
{
    (void)arg;
    intptr_t r = 0;
    errno = EBADF;
    cr_expect_eq(coro_offload(doubles, (void *)21, &r), 0);
    cr_expect_eq(r, 42);
    cr_expect_eq(errno, 0, "errno %d: the thread's, cleared before fn", errno);
    cr_expect_eq(coro_offload(fails_with_enoent, NULL, &r), 0);
    cr_expect_eq(r, -42);
    cr_expect_eq(errno, ENOENT);
    cr_expect_eq(coro_offload(doubles, (void *)1, NULL), 0); /* no result */
    return 0;
}

Test(offload, the_result_and_the_threads_errno_come_back)
{
    cr_assert_eq(run_in_coro(results_and_errno, NULL), 0);
}

static int waits_where(void *arg)
{
    (void)arg;
    return coro_offload(gated, NULL, NULL);
}

static int shows_offload_then_opens(void *arg)
{
    coro_t *w = arg;
    coro_info_t info;
    cr_assert_eq(coro_info(w, &info), 0);
    cr_expect_str_eq(info.wait_what, "offload");
    cr_expect_not_null(strstr(info.wait_site.file, "test_offload.c"));
    /* A job out holds the loop: with this coroutine gone, the loop waits
     * for the job instead of reporting EDEADLK. */
    atomic_store(&gate_open, 1);
    return 0;
}

Test(offload, a_waiting_coroutine_shows_offload_and_holds_the_loop)
{
    coro_t *w = coro_spawn(waits_where, NULL, "waiter");
    cr_assert_not_null(w);
    cr_assert_not_null(coro_spawn(shows_offload_then_opens, w, "looker"));
    cr_assert_eq(coro_event_loop(), 0, "loop: %s", strerror(errno));
    cr_assert_eq(atomic_load(&gate_passed), 1);
}

/* ---- many jobs ----------------------------------------------------- */

#define JOBS 24

struct many {
    atomic_int started;  /* start order counter */
    atomic_int running;  /* jobs running now */
    atomic_int max_running;
    int start_order[JOBS];
    intptr_t results[JOBS];
    int rcs[JOBS];
};

struct one {
    struct many *m;
    int i;
};

static intptr_t counted(void *arg)
{
    struct one *o = arg;
    struct many *m = o->m;
    m->start_order[o->i] = atomic_fetch_add(&m->started, 1);
    int now = atomic_fetch_add(&m->running, 1) + 1;
    int max = atomic_load(&m->max_running);
    while (now > max && !atomic_compare_exchange_weak(&m->max_running, &max,
                                                      now))
        ;
    for (int k = 0; k < 100; k++)
        sched_yield(); /* give the others a chance to overlap */
    atomic_fetch_sub(&m->running, 1);
    return o->i * 10;
}

static int submit_one(void *arg)
{
    struct one *o = arg;
    o->m->rcs[o->i] = coro_offload(counted, o, &o->m->results[o->i]);
    return 0;
}

Test(offload_pool, more_jobs_than_threads_all_finish_within_the_limit)
{
    static struct many m;
    struct one ones[JOBS];
    int base = base_threads();
    cr_assert_eq(coro_offload_set_threads(3), 4); /* the default was 4 */
    for (int i = 0; i < JOBS; i++) {
        ones[i] = (struct one){&m, i};
        cr_assert_not_null(coro_spawn(submit_one, &ones[i], "submit"));
    }
    cr_assert_eq(coro_event_loop(), 0);
    for (int i = 0; i < JOBS; i++) {
        cr_expect_eq(m.rcs[i], 0, "job %d", i);
        cr_expect_eq(m.results[i], i * 10, "job %d", i);
    }
    cr_assert_leq(atomic_load(&m.max_running), 3);
    cr_assert_leq(thread_count(), base + 3);
    cr_assert_eq(coro_offload_shutdown(), 0);
    cr_assert_eq(threads_settle_at(base), base);
}

Test(offload_pool, jobs_start_in_the_order_they_were_submitted)
{
    /* One thread: the queue's order is the start order, exactly (with
     * more, threads race between taking a job and counting it). */
    static struct many m;
    struct one ones[JOBS];
    cr_assert_eq(coro_offload_set_threads(1), 4);
    for (int i = 0; i < JOBS; i++) {
        ones[i] = (struct one){&m, i};
        cr_assert_not_null(coro_spawn(submit_one, &ones[i], "submit"));
    }
    cr_assert_eq(coro_event_loop(), 0);
    for (int i = 0; i < JOBS; i++) {
        cr_expect_eq(m.rcs[i], 0, "job %d", i);
        cr_expect_eq(m.start_order[i], i, "job %d started %d", i,
                     m.start_order[i]);
    }
    cr_assert_eq(atomic_load(&m.max_running), 1);
}

/* ---- deadlines and interrupts -------------------------------------- */

static int offload_gated(void *arg)
{
    intptr_t r;
    return coro_offload(gated, arg, &r) == 0 ? (int)r : -1;
}

struct timed {
    int rc, err;
};

static intptr_t nothing(void *arg)
{
    return (intptr_t)arg;
}

static int times_out(void *arg)
{
    struct timed *t = arg;
    /* Start a pool thread first, so the gated job is picked up (and runs
     * into the gate) well before its deadline, even under a sanitizer
     * that makes starting a thread slow. */
    intptr_t r;
    if (coro_offload(nothing, NULL, &r) != 0)
        return -1;
    t->rc = coro_with_timeout(0.2, offload_gated, (void *)5);
    t->err = errno;
    return 0;
}

/* Keeps the loop busy after the caller left, on stacks that reuse the
 * caller's: a late completion writing there would show under ASan. */
static int reuse_stacks(void *arg)
{
    (void)arg;
    char buf[4096];
    memset(buf, 0x5a, sizeof buf);
    coro_yield();
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != 0x5a)
            return -1;
    return 0;
}

Test(offload_deadline, a_deadline_ends_the_wait_at_once_and_the_job_ends_later)
{
    struct timed t = {0};
    cr_assert_not_null(coro_spawn(times_out, &t, "times_out"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(t.rc, -1);
    cr_assert_eq(t.err, ETIMEDOUT);
    /* The call returned while its job still waits at the gate. */
    cr_assert_eq(atomic_load(&gate_passed), 0);
    /* Its coroutine is gone; new ones take its stack; then the job ends. */
    for (int i = 0; i < 8; i++)
        cr_assert_not_null(coro_spawn(reuse_stacks, NULL, "reuse"));
    atomic_store(&gate_open, 1);
    cr_assert_eq(coro_event_loop(), 0);
    /* Shutdown waits for the abandoned job, which its thread frees. */
    cr_assert_eq(coro_offload_shutdown(), 0);
    cr_assert_eq(atomic_load(&gate_passed), 1);
}

static atomic_int never_ran;

static intptr_t must_not_run(void *arg)
{
    (void)arg;
    atomic_store(&never_ran, 1);
    return 0;
}

static int queued_then_times_out(void *arg)
{
    (void)arg;
    intptr_t r;
    return coro_offload(must_not_run, NULL, &r);
}

static int block_the_only_thread(void *arg)
{
    (void)arg;
    return coro_offload(gated, NULL, NULL);
}

static int open_gate_when_timed_out(void *arg)
{
    int *rc = arg;
    *rc = coro_with_timeout(0.02, queued_then_times_out, NULL);
    cr_expect_eq(errno, ETIMEDOUT);
    atomic_store(&gate_open, 1);
    return 0;
}

Test(offload_deadline, a_job_given_up_before_it_started_never_runs)
{
    int rc = 0;
    cr_assert_eq(coro_offload_set_threads(1), 4);
    cr_assert_not_null(coro_spawn(block_the_only_thread, NULL, "blocker"));
    cr_assert_not_null(coro_spawn(open_gate_when_timed_out, &rc, "late"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(rc, -1);
    cr_assert_eq(coro_offload_shutdown(), 0);
    cr_assert_eq(atomic_load(&never_ran), 0);
    cr_assert_eq(atomic_load(&gate_passed), 1);
}

static int deadline_passed(void *arg)
{
    (void)arg;
    coro_sleep(0.01); /* let the deadline pass */
    int rc = coro_offload(must_not_run, NULL, NULL);
    int err = errno;
    cr_expect_eq(rc, -1);
    cr_expect_eq(err, ETIMEDOUT);
    errno = err;
    return rc;
}

static int passed_inner(void *arg)
{
    (void)arg;
    return coro_with_timeout(0.001, deadline_passed, NULL);
}

Test(offload_deadline, a_passed_deadline_fails_with_etimedout_and_runs_nothing)
{
    cr_assert_eq(run_in_coro(passed_inner, NULL), -1);
    cr_assert_eq(test_errno, ETIMEDOUT);
    cr_assert_eq(coro_offload_shutdown(), 0);
    cr_assert_eq(atomic_load(&never_ran), 0);
}

struct victim {
    coro_t *co;
    int rc, err;
};

static int interrupted(void *arg)
{
    struct victim *v = arg;
    v->rc = coro_offload(gated, NULL, NULL);
    v->err = errno;
    return 0;
}

static int interrupt_it(void *arg)
{
    struct victim *v = arg;
    while (atomic_load(&gate_waiting) == 0)
        coro_yield(); /* until its job runs */
    cr_assert_eq(coro_interrupt(v->co, ECANCELED), 0);
    coro_yield();
    atomic_store(&gate_open, 1);
    return 0;
}

Test(offload_deadline, an_interrupt_ends_the_wait_with_its_errno)
{
    struct victim v = {0};
    v.co = coro_spawn(interrupted, &v, "victim");
    cr_assert_not_null(v.co);
    cr_assert_not_null(coro_spawn(interrupt_it, &v, "interrupter"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(v.rc, -1);
    cr_assert_eq(v.err, ECANCELED);
    cr_assert_eq(coro_offload_shutdown(), 0);
    cr_assert_eq(atomic_load(&gate_passed), 1);
}

struct late {
    coro_t *co;
    int rc, next_rc, next_err;
    intptr_t result;
};

static int gets_result_then_interrupt(void *arg)
{
    struct late *l = arg;
    l->rc = coro_offload(doubles, (void *)4, &l->result);
    l->next_rc = coro_yield();
    l->next_err = errno;
    return 0;
}

static int interrupt_once_delivered(void *arg)
{
    struct late *l = arg;
    /* The delivery makes the waiter runnable behind us; interrupt it
     * before it runs. */
    while (coro_state(l->co) != CORO_RUNNABLE)
        coro_yield();
    return coro_interrupt(l->co, EINTR);
}

Test(offload_deadline, an_interrupt_after_the_result_came_fails_the_next_call)
{
    struct late l = {0};
    l.co = coro_spawn(gets_result_then_interrupt, &l, "late");
    cr_assert_not_null(l.co);
    cr_assert_not_null(coro_spawn(interrupt_once_delivered, &l, "intr"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(l.rc, 0);
    cr_assert_eq(l.result, 8);
    cr_assert_eq(l.next_rc, -1);
    cr_assert_eq(l.next_err, EINTR);
}

/* ---- getaddrinfo --------------------------------------------------- */

static int lookup_localhost(void *arg)
{
    (void)arg;
    struct addrinfo hints = {.ai_family = AF_INET,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = coro_getaddrinfo("localhost", "80", &hints, &res);
    cr_assert_eq(rc, 0, "getaddrinfo: %s", gai_strerror(rc));
    cr_assert_not_null(res);
    cr_assert_eq(res->ai_family, AF_INET);
    struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
    cr_expect_eq(ntohs(sin->sin_port), 80);
    cr_expect_eq(ntohl(sin->sin_addr.s_addr) >> 24, 127);
    freeaddrinfo(res);
    return 0;
}

Test(offload_wrappers, getaddrinfo_resolves_localhost)
{
    cr_assert_eq(run_in_coro(lookup_localhost, NULL), 0);
}

static int lookup_errors(void *arg)
{
    (void)arg;
    struct addrinfo *res = (struct addrinfo *)&res;
    struct addrinfo numeric = {.ai_flags = AI_NUMERICHOST};
    cr_expect_eq(coro_getaddrinfo("not an address", NULL, &numeric, &res),
                 EAI_NONAME);
    cr_expect_eq(coro_getaddrinfo(NULL, NULL, NULL, &res), EAI_NONAME);
    cr_expect_eq(coro_getaddrinfo("localhost", "80", NULL, NULL),
                 EAI_SYSTEM);
    cr_expect_eq(errno, EINVAL);
    return 0;
}

Test(offload_wrappers, getaddrinfo_reports_eai_codes)
{
    cr_assert_eq(run_in_coro(lookup_errors, NULL), 0);
}

/* ---- pread and pwrite ---------------------------------------------- */

static int file_io(void *arg)
{
    (void)arg;
    char path[] = "/tmp/coro-offload-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    int ro = open(path, O_RDONLY);
    cr_assert_geq(ro, 0);
    unlink(path);
    cr_expect_eq(coro_pwrite(fd, "hello world", 11, 0), 11);
    char buf[16] = {0};
    cr_expect_eq(coro_pread(fd, buf, 5, 6), 5);
    cr_expect_eq(memcmp(buf, "world", 5), 0);
    cr_expect_eq(coro_pread(fd, buf, sizeof buf, 100), 0); /* past EOF */
    cr_expect_eq(coro_pwrite(fd, NULL, 0, 0), 0);
    cr_expect_eq(coro_pread(fd, NULL, 0, 0), 0);
    /* Bad input. */
    cr_expect_eq(coro_pread(-1, buf, 1, 0), -1);
    cr_expect_eq(errno, EBADF);
    cr_expect_eq(coro_pread(fd, NULL, 1, 0), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(coro_pwrite(fd, NULL, 1, 0), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(coro_pread(fd, buf, 1, -1), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(coro_pread(fd, buf, (size_t)-1, 0), -1);
    cr_expect_eq(errno, EINVAL);
    close(fd);
    cr_expect_eq(coro_pread(fd, buf, 1, 0), -1); /* no longer open */
    cr_expect_eq(errno, EBADF);
    /* Errors of the system call come back. */
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_expect_eq(coro_pread(p[0], buf, 1, 0), -1);
    cr_expect_eq(errno, ESPIPE);
    close(p[0]);
    close(p[1]);
    int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
    cr_assert_geq(dir, 0);
    cr_expect_eq(coro_pread(dir, buf, 1, 0), -1);
    cr_expect_eq(errno, EISDIR);
    close(dir);
    cr_expect_eq(coro_pwrite(ro, "x", 1, 0), -1);
    cr_expect_eq(errno, EBADF);
    close(ro);
    return 0;
}

Test(offload_wrappers, pread_and_pwrite_move_data_and_report_errors)
{
    cr_assert_eq(run_in_coro(file_io, NULL), 0);
}

/* ---- the pool ------------------------------------------------------ */

Test(offload_pool, bad_sizes_fail_with_einval_and_change_nothing)
{
    cr_assert_eq(coro_offload_set_threads(0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_offload_set_threads(-3), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_offload_set_threads(CORO_OFFLOAD_THREADS_MAX + 1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_offload_set_threads(2), 4);
    cr_assert_eq(coro_offload_set_threads(CORO_OFFLOAD_THREADS_MAX), 2);
    cr_assert_eq(coro_offload_shutdown(), 0); /* no threads: nothing */
}

/* Each of n jobs waits until all n run at once: needs n threads. */
static atomic_int together;

static intptr_t meet(void *arg)
{
    int n = (int)(intptr_t)arg;
    atomic_fetch_add(&together, 1);
    while (atomic_load(&together) < n)
        sched_yield();
    return 0;
}

static int meet4(void *arg)
{
    (void)arg;
    return coro_offload(meet, (void *)4, NULL);
}

static int meet1(void *arg)
{
    (void)arg;
    return coro_offload(meet, (void *)1, NULL);
}

Test(offload_pool, shutdown_and_fini_join_every_thread)
{
    int base = base_threads();
    for (int i = 0; i < 4; i++)
        cr_assert_not_null(coro_spawn(meet4, NULL, "meet"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(thread_count(), base + 4); /* idle, kept for later */
    cr_assert_eq(coro_offload_shutdown(), 0);
    cr_assert_eq(threads_settle_at(base), base);
    /* They start again on demand; coro_fini() joins them too. */
    atomic_store(&together, 0);
    cr_assert_eq(run_in_coro(meet1, NULL), 0);
    cr_assert_eq(thread_count(), base + 1);
    cr_assert_eq(coro_fini(), 0);
    cr_assert_eq(threads_settle_at(base), base);
}

Test(offload_pool, shrinking_lets_idle_threads_go)
{
    int base = base_threads();
    for (int i = 0; i < 4; i++)
        cr_assert_not_null(coro_spawn(meet4, NULL, "meet"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(thread_count(), base + 4);
    cr_assert_eq(coro_offload_set_threads(1), 4);
    /* They leave on their own, soon. */
    cr_assert_eq(threads_settle_at(base + 1), base + 1);
    cr_assert_eq(run_in_coro(results_and_errno, NULL), 0);
    cr_assert_eq(coro_offload_shutdown(), 0);
    cr_assert_eq(threads_settle_at(base), base);
}

/* Jobs of a pool shrunk while its queue is full: once the jobs running at
 * the shrink have ended, one runs at a time. */
static atomic_int shrink_running, shrink_max_after;
static atomic_bool shrink_done;

static intptr_t counted_nap(void *arg)
{
    (void)arg;
    int now = atomic_fetch_add(&shrink_running, 1) + 1;
    if (atomic_load(&shrink_done)) {
        int m = atomic_load(&shrink_max_after);
        while (now > m && !atomic_compare_exchange_weak(&shrink_max_after, &m,
                                                        now))
            ;
    }
    usleep(5000);
    atomic_fetch_sub(&shrink_running, 1);
    return 0;
}

static int one_nap(void *arg)
{
    (void)arg;
    return coro_offload(counted_nap, NULL, NULL);
}

static int shrink_mid_queue(void *arg)
{
    (void)arg;
    cr_assert_geq(coro_offload_set_threads(4), 1);
    coro_t *jobs[120];
    for (int i = 0; i < 120; i++)
        cr_assert_not_null(jobs[i] = coro_spawn_opts(
                               one_nap, NULL, &(coro_opts_t){.joinable = true}));
    coro_sleep(0.02); /* four busy threads, the queue full */
    cr_assert_eq(coro_offload_set_threads(1), 4);
    /* The jobs running at the shrink end; each thread over the limit
     * leaves after its job, so one job at a time from then on. */
    double end = mono_sec() + 10;
    while (atomic_load(&shrink_running) > 1) {
        cr_assert_lt(mono_sec(), end, "%d jobs at once 10 s after the shrink",
                     atomic_load(&shrink_running));
        coro_sleep(0.001);
    }
    atomic_store(&shrink_done, true);
    for (int i = 0; i < 120; i++)
        cr_assert_eq(coro_join(jobs[i], NULL, NULL), 0);
    return 0;
}

Test(offload_pool, shrinking_with_a_queue_of_work_leaves_one_thread_running)
{
    cr_assert_eq(run_in_coro(shrink_mid_queue, NULL), 0);
    cr_assert_eq(atomic_load(&shrink_max_after), 1,
                 "jobs ran %d at a time after the shrink",
                 atomic_load(&shrink_max_after));
}

static int busy_shutdown(void *arg)
{
    (void)arg;
    while (atomic_load(&gate_waiting) == 0)
        coro_yield();
    cr_expect_eq(coro_offload_shutdown(), -1);
    cr_expect_eq(errno, EBUSY);
    atomic_store(&gate_open, 1);
    return 0;
}

Test(offload_pool, shutdown_while_a_coroutine_waits_fails_with_ebusy)
{
    cr_assert_not_null(coro_spawn(block_the_only_thread, NULL, "waiter"));
    cr_assert_not_null(coro_spawn(busy_shutdown, NULL, "shutdown"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(atomic_load(&gate_passed), 1);
}

Test(offload_pool, calls_outside_a_coroutine_fail_with_eperm)
{
    intptr_t r = 99;
    cr_assert_eq(coro_offload(doubles, NULL, &r), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(r, 99);
    char buf[4];
    cr_assert_eq(coro_pread(0, buf, 1, 0), -1);
    cr_assert_eq(errno, EPERM);
    struct addrinfo *res = NULL;
    cr_assert_eq(coro_getaddrinfo("localhost", NULL, NULL, &res), EAI_SYSTEM);
    cr_assert_eq(errno, EPERM);
    cr_assert_null(res);
    cr_assert_eq(coro_offload(NULL, NULL, &r), -1);
    cr_assert_eq(errno, EINVAL);
}

static int enomem(void *arg)
{
    (void)arg;
    cr_assert_eq(coro_offload(doubles, NULL, NULL), 0); /* pool made */
    coro__sys_fail(CORO__SYS_MALLOC, 1, ENOMEM);
    cr_expect_eq(coro_offload(must_not_run, NULL, NULL), -1);
    cr_expect_eq(errno, ENOMEM);
    coro__sys_fail(CORO__SYS_MALLOC, 1, ENOMEM);
    struct addrinfo *res = NULL;
    cr_expect_eq(coro_getaddrinfo("localhost", NULL, NULL, &res),
                 EAI_SYSTEM);
    cr_expect_eq(errno, ENOMEM);
    return 0;
}

Test(offload_pool, a_job_record_that_cannot_be_allocated_fails_with_enomem)
{
    cr_assert_eq(run_in_coro(enomem, NULL), 0);
    cr_assert_eq(atomic_load(&never_ran), 0);
}

/* ---- fork ---------------------------------------------------------- */

struct forked {
    coro_t *waiter;  /* waits for a gated job across the fork */
    pid_t pid;
};

static int fork_with_a_job_out(void *arg)
{
    struct forked *f = arg;
    while (atomic_load(&gate_waiting) == 0)
        coro_yield(); /* the waiter's job runs on a pool thread */
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* The child: the job in flight is the parent's, its waiter here
         * fails; the pool starts afresh for new jobs. */
        int st = 0, err = 0;
        if (coro_join(f->waiter, &st, &err) != 0 || st != -1 ||
            err != ECANCELED)
            _exit(1);
        intptr_t r = 0;
        if (coro_offload(doubles, (void *)50, &r) != 0 || r != 100)
            _exit(2);
        char buf[8] = {0};
        int fd = open("/proc/self/stat", O_RDONLY);
        if (coro_pread(fd, buf, 4, 0) <= 0)
            _exit(3);
        close(fd);
        _exit(0);
    }
    f->pid = pid;
    atomic_store(&gate_open, 1);
    int st = 0;
    if (coro_join(f->waiter, &st, NULL) != 0 || st != 9)
        return -1;
    return 0;
}

static int waits_for_nine(void *arg)
{
    (void)arg;
    intptr_t r = 0;
    if (coro_offload(gated, (void *)9, &r) != 0)
        return -1;
    return (int)r;
}

Test(offload_pool, after_fork_the_child_starts_a_pool_of_its_own)
{
    SKIP_UNDER_TSAN("coroutines serve in a forked child");
    struct forked f = {0};
    f.waiter = coro_spawn_opts(waits_for_nine, NULL,
                               &(coro_opts_t){.joinable = 1});
    cr_assert_not_null(f.waiter);
    cr_assert_eq(run_in_coro(fork_with_a_job_out, &f), 0);
    int st;
    cr_assert_eq(waitpid(f.pid, &st, 0), f.pid);
    cr_assert(WIFEXITED(st), "child status %#x", st);
    cr_assert_eq(WEXITSTATUS(st), 0, "child failed at step %d",
                 WEXITSTATUS(st));
}
