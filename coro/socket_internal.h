/*
 * Between socket.c and addr.c.  Never installed.
 */
#ifndef CORO_SOCKET_INTERNAL_H
#define CORO_SOCKET_INTERNAL_H

#include "io_internal.h"

/* One socket address with the socket type to use it with. */
struct coro__addr {
    struct sockaddr_storage ss; /* the address */
    socklen_t len;              /* bytes of ss in use */
    int type;                   /* SOCK_STREAM or SOCK_DGRAM */
};

/*
 * Turn an address string (coro.h, "Sockets") into up to max addresses in
 * out[], looking host names up.  passive: an empty host is the any address
 * (to listen on), else the loopback address (to dial).  Returns how many
 * (>= 1), or -1 with errno EINVAL (malformed), ENOTSUP (a name that cannot
 * be looked up yet), or the lookup's errno.
 */
int coro__addr_resolve(const char *addr, bool passive,
                       struct coro__addr *out, int max);

#endif /* CORO_SOCKET_INTERNAL_H */
