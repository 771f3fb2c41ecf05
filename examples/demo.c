/*
 * demo: coroutines, sleeps and a timeout at work.
 *
 * A "ticker" prints a heartbeat, three "workers" do jobs of different
 * lengths at once, one job is too slow and runs into its deadline, and its
 * cleanup still gets a short grace period.  Half-way through, the demo
 * prints where every coroutine waits.  It exits by itself in about a
 * second; SIGQUIT (Ctrl-\) prints the coroutine dump at any time.
 */
#include "server.h"

#include <coro/coro.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct job {
    const char *name;
    double seconds; /* how long the work takes */
    double limit;   /* the deadline we give it */
};

static int do_work(void *arg)
{
    const struct job *j = arg;
    return coro_sleep(j->seconds); /* stands in for I/O */
}

static int say_goodbye(void *arg)
{
    const struct job *j = arg;
    coro_print_stderr("%s: cleaning up within %.2f s of grace", j->name,
                      coro_time_left());
    return coro_sleep(0.01); /* cleanup may block: it has its own deadline */
}

static int worker(void *arg)
{
    const struct job *j = arg;
    coro_print_stderr("%s: starting a %.2f s job with a %.2f s deadline",
                      j->name, j->seconds, j->limit);
    if (coro_with_timeout(j->limit, do_work, arg) == 0) {
        coro_print_stderr("%s: done", j->name);
        return 0;
    }
    int err = errno;
    coro_print_stderr("%s: %s", j->name, strerror(err));
    coro_with_grace(0.1, say_goodbye, arg);
    errno = err;
    return -1;
}

static int ticker(void *arg)
{
    (void)arg;
    for (int i = 1;; i++) {
        if (coro_sleep(0.2) != 0)
            return 0; /* interrupted: the demo is over */
        coro_print_stderr("tick %d", i);
    }
}

static int inspector(void *arg)
{
    (void)arg;
    coro_sleep(0.3);
    coro_print_stderr("where every coroutine waits:");
    coro_where_all(2);
    return 0;
}

static int demo(void *arg)
{
    (void)arg;
    static const struct job jobs[] = {
        {"fast", 0.10, 1.0},
        {"medium", 0.40, 1.0},
        {"slow", 5.00, 0.6},
    };
    coro_t *tick = coro_spawn(ticker, NULL, "ticker");
    coro_spawn(inspector, NULL, "inspector");
    coro_task_t tasks[3];
    for (int i = 0; i < 3; i++)
        tasks[i] = (coro_task_t){.fn = worker, .arg = (void *)&jobs[i]};
    int failed = coro_in_parallel(tasks, 3);
    coro_print_stderr("all jobs finished, %d failed", failed);
    coro_interrupt(tick, ECANCELED);
    return 0;
}

static void usage(const char *prog)
{
    printf("usage: %s\n"
           "Runs a few coroutines that sleep, time out and clean up, then\n"
           "exits (about one second).  SIGQUIT prints every coroutine.\n",
           prog);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        usage(argv[0]);
        return strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    coro_dump_on_signal(SIGQUIT);
    coro_set_exit_notifier(NULL);
    if (coro_spawn(demo, NULL, "demo") == NULL) {
        perror("coro_spawn");
        return 1;
    }
    int rc = coro_event_loop();
    if (rc == 128 + SIGINT || rc == 128 + SIGTERM) {
        /* Stopped early: end the coroutines left, then free everything. */
        printf("demo stopped by signal %d\n", rc - 128);
        return server_stop_all() == 0 ? 0 : 1;
    }
    printf("demo finished (event loop returned %d)\n", rc);
    return rc == 0 ? 0 : 1;
}
