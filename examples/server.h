/*
 * What the example servers share: a listener whose real address is known
 * (port 0 picks one), and a clean stop after the event loop returned.
 */
#ifndef CORO_EXAMPLES_SERVER_H
#define CORO_EXAMPLES_SERVER_H

#include <stddef.h>

/* Listen on addr (any string coro_listen() takes) and write the address
 * it really listens on into name (addr itself if that cannot be read).
 * The fd, or -1 with errno. */
int server_listen(const char *addr, int backlog, char *name, size_t len);

/* Interrupt every coroutine left with ECANCELED and run the loop until
 * all have ended (each closes and frees what it holds), a few rounds at
 * most, then coro_fini().  0, or -1 when coroutines were left. */
int server_stop_all(void);

#endif
