/*
 * What the example servers share: a listener whose real address is known
 * (port 0 picks one), a backdoor console, and a clean stop after the
 * event loop returned.
 */
#ifndef CORO_EXAMPLES_SERVER_H
#define CORO_EXAMPLES_SERVER_H

#include <stdbool.h>
#include <stddef.h>

/* Listen on addr (any string coro_listen() takes) and write the address
 * it really listens on into name (addr itself if that cannot be read).
 * The fd, or -1 with errno. */
int server_listen(const char *addr, int backlog, char *name, size_t len);

/* Accept the next client on lfd for an accept loop.  Out of fds or
 * memory, it waits 0.1 s and tries again (the client stays queued).
 * Returns the client's fd; -1 when the loop should end quietly (*stopping
 * set, the acceptor interrupted with ECANCELED, lfd closed); -2 on any
 * other error, printed with coro_print_stderr(). */
int server_accept(int lfd, const bool *stopping);

typedef struct coro_backdoor coro_backdoor_t;

/* Start a backdoor console on addr ("unix:PATH", or "tcp:127.0.0.1:PORT"
 * with a generated token) and print on stderr how to connect to it
 * (stdout's first line stays the listening address, for scripts).
 * output_dir (may be NULL) is where its commands may write files.  The
 * handle, or NULL with errno (see coro_backdoor_start()). */
coro_backdoor_t *server_backdoor(const char *addr, const char *output_dir);

/* Interrupt every coroutine left with ECANCELED and run the loop until
 * all have ended (each closes and frees what it holds), a few rounds at
 * most, then coro_fini().  0, or -1 when coroutines were left. */
int server_stop_all(void);

#endif
