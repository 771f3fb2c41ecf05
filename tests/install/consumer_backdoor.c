/* Built against the installed headers and libraries by tests/install:
 * a program with a backdoor console, which a session of its own talks
 * to over the unix socket. */
#include <coro/backdoor.h>
#include <coro/coro.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int served = 3;

static int client(void *arg)
{
    int fd = coro_dial(arg);
    char buf[4096];
    size_t len = 0;
    ssize_t n;
    coro_fd_set_timeout(fd, 10, 10);
    coro_send_all(fd, "get served\nquit\n", 16);
    while (len < sizeof buf - 1 &&
           (n = coro_read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    coro_close(fd);
    printf("%s", strstr(buf, "served = 3") ? "backdoor answered\n" : buf);
    coro_set_exit(strstr(buf, "served = 3") ? 7 : 1);
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/coro_consumer_XXXXXX", path[64], addr[80];
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/bd.sock", dir);
    snprintf(addr, sizeof addr, "unix:%s", path);
    coro_backdoor_t *bd =
        coro_backdoor_start(&(coro_backdoor_opts_t){.unix_path = path});
    coro_backdoor_var_t v = {.name = "served",
                             .type = CORO_BACKDOOR_INT,
                             .ptr = &served,
                             .flags = CORO_BACKDOOR_READONLY};
    if (bd == NULL || coro_backdoor_add_var(bd, &v) != 0 ||
        coro_spawn(client, addr, "client") == NULL)
        return 1;
    int rc = coro_event_loop();
    coro_backdoor_stop(bd);
    coro_event_loop();
    rmdir(dir);
    return rc == 7 ? 0 : 1;
}
