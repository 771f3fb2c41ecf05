/* Shared by the example servers; see server.h. */
#include "server.h"

#include <coro/backdoor.h>
#include <coro/coro.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
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

int server_accept(int lfd, const bool *stopping)
{
    for (;;) {
        int fd = coro_accept(lfd, NULL, NULL);
        if (fd >= 0)
            return fd;
        if (*stopping || errno == ECANCELED || errno == EBADF)
            return -1;
        if (errno != EMFILE && errno != ENFILE && errno != ENOBUFS &&
            errno != ENOMEM) {
            coro_print_stderr("accept: %s", strerror(errno));
            return -2;
        }
        coro_sleep(0.1);
    }
}

coro_backdoor_t *server_backdoor(const char *addr, const char *output_dir)
{
    coro_backdoor_opts_t o = {.output_dir = output_dir};
    bool is_unix = strncmp(addr, "unix:", 5) == 0;
    if (is_unix)
        o.unix_path = addr + 5;
    else
        o.tcp_addr = addr;
    coro_backdoor_t *bd = coro_backdoor_start(&o);
    if (bd == NULL)
        return NULL;
    if (is_unix) {
        const char *p = coro_backdoor_unix_path(bd);
        fprintf(stderr,
               "backdoor on unix:%s\n"
               "  connect: nc -N -U %s\n"
               "  with line editing and history: rlwrap nc -N -U %s\n",
               p, p, p);
    } else {
        /* No token was given, so coro_backdoor_start() made one and has
         * printed it already ("backdoor: tcp:ADDR token TOKEN"). */
        const char *a = coro_backdoor_tcp_addr(bd);
        const char *port = strrchr(a, ':');
        int hlen = (int)(port - a);
        fprintf(stderr,
               "backdoor on tcp:%s\n"
               "  connect: nc -N %.*s %s (or telnet %.*s %s), then type "
               "the token printed above\n",
               a, hlen, a, port + 1, hlen, a, port + 1);
    }
    return bd;
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
