/* Shared by the example servers; see server.h. */
#include "server.h"

#include <coro/coro.h>
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

int server_listen(const char *addr, int backlog, char *name, size_t len)
{
    int lfd = coro_listen(addr, backlog);
    if (lfd < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    if (getsockname(lfd, (struct sockaddr *)&ss, &sslen) != 0 ||
        coro_addr_format((struct sockaddr *)&ss, sslen, name, len) < 0)
        snprintf(name, len, "%s", addr);
    return lfd;
}

static int cancel(coro_t *co, void *arg)
{
    (void)arg;
    if (coro_state(co) != CORO_DEAD)
        coro_interrupt(co, ECANCELED);
    return 0;
}

int server_stop_all(void)
{
    /* A coroutine may block again on its way out (a goodbye write), so
     * interrupt once per round; a few rounds bound a stubborn one. */
    for (int round = 0; round < 10 && coro_count() > 0; round++) {
        coro_foreach(cancel, NULL);
        if (coro_event_loop() < 0 && errno != EDEADLK)
            break;
    }
    return coro_fini();
}
