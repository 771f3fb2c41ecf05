/* Built against the installed headers and libraries by tests/install. */
#include <coro/coro.h>
#include <stdio.h>
#include <tsc_time/tsc_time.h>

static int hello(void *arg)
{
    (void)arg;
    if (coro_sleep(0.001) != 0)
        return -1;
    printf("hello from coroutine %d after %s ticks\n",
           coro_id(coro_current()), tsc_source_name());
    coro_set_exit(7);
    return 0;
}

int main(void)
{
    if (coro_spawn(hello, NULL, "hello") == NULL)
        return 1;
    return coro_event_loop() == 7 ? 0 : 1;
}
