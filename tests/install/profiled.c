/* Built against the installed profiler by tests/install, instrumented
 * with coro_profile_instrument() (CMake) or plain (pkg-config). */
#include <coro/coro.h>
#include <coro/profiler.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void consumer_work(void);

void consumer_work(void)
{
    volatile unsigned long x = 0;
    for (int i = 0; i < 100000; i++)
        x += (unsigned long)i;
}

static int run(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        consumer_work();
        coro_yield();
    }
    return 0;
}

int main(int argc, char **argv)
{
    /* With an argument: instrumenting, and consumer_work must show. */
    coro_prof_opts_t o = {.mode = argc > 1 ? CORO_PROF_INSTRUMENT
                                           : CORO_PROF_SAMPLE};
    if (coro_prof_start(&o) != 0 || coro_spawn(run, NULL, "run") == NULL ||
        coro_event_loop() != 0 || coro_prof_stop() != 0)
        return 1;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL || coro_prof_write(f, CORO_PROF_FOLDED, 0) != 0)
        return 1;
    fclose(f);
    int ok = argc < 2 || strstr(buf, "consumer_work") != NULL;
    printf("profiled (%s): %s\n", argc > 1 ? "instrumenting" : "sampling",
           ok ? "ok" : "consumer_work missing");
    free(buf);
    coro_prof_reset();
    return ok ? 0 : 1;
}
