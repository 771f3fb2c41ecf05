/*
 * Address strings: "host:port", "[v6]:port", "unix:/path", with an
 * optional "tcp:" or "udp:" prefix, parsed into socket addresses and
 * formatted back.  Numeric addresses are parsed here without any system
 * call that could block; host names go through resolve(), the one place
 * where a name lookup happens.
 */
#include "socket_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* Longest host part accepted, in bytes: a DNS name is at most 253. */
#define HOST_MAX 255

/* An address string split into its parts. */
struct parts {
    int type;                 /* SOCK_STREAM or SOCK_DGRAM */
    bool unix_path;           /* "unix:": path holds the path */
    const char *path;         /* borrowed from the string */
    char host[HOST_MAX + 1];  /* without brackets; "" for none */
    bool bracketed;           /* host was in [ ]: must be IPv6 */
    uint16_t port;            /* host byte order */
};

static bool prefix(const char **s, const char *p)
{
    size_t n = strlen(p);
    if (strncmp(*s, p, n) != 0)
        return false;
    *s += n;
    return true;
}

/* Decimal port 0..65535, the whole string.  0, or -1 (EINVAL). */
static int parse_port(const char *s, uint16_t *out)
{
    unsigned long v = 0;
    if (*s == '\0')
        goto bad;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            goto bad;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            goto bad;
    }
    *out = (uint16_t)v;
    return 0;
bad:
    errno = EINVAL;
    return -1;
}

static int split(const char *s, struct parts *p)
{
    if (s == NULL)
        goto bad;
    memset(p, 0, sizeof *p);
    p->type = SOCK_STREAM;
    if (prefix(&s, "unix:")) {
        p->unix_path = true;
        p->path = s;
        return *s != '\0' ? 0 : (errno = EINVAL, -1);
    }
    if (prefix(&s, "udp:"))
        p->type = SOCK_DGRAM;
    else
        prefix(&s, "tcp:");
    const char *host = s, *host_end, *colon;
    if (*s == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL || host_end[1] != ':')
            goto bad;
        colon = host_end + 1;
        p->bracketed = true;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            goto bad;
        host_end = colon;
        if (memchr(host, ':', (size_t)(host_end - host)) != NULL)
            goto bad; /* a bare IPv6 address needs brackets */
    }
    size_t n = (size_t)(host_end - host);
    if (n > HOST_MAX || (p->bracketed && n == 0))
        goto bad;
    memcpy(p->host, host, n);
    p->host[n] = '\0';
    return parse_port(colon + 1, &p->port);
bad:
    errno = EINVAL;
    return -1;
}

/* A numeric host (or "" for the any/loopback address) into out.  1 when
 * it was numeric, 0 when it is a name, -1 (EINVAL) when malformed. */
static int numeric(const struct parts *p, bool passive, struct coro__addr *out)
{
    memset(out, 0, sizeof *out);
    out->type = p->type;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;
    if (p->host[0] == '\0' || inet_pton(AF_INET, p->host,
                                        &in4->sin_addr) == 1) {
        if (p->bracketed)
            goto bad;
        in4->sin_family = AF_INET;
        in4->sin_port = htons(p->port);
        if (p->host[0] == '\0')
            in4->sin_addr.s_addr =
                htonl(passive ? INADDR_ANY : INADDR_LOOPBACK);
        out->len = sizeof *in4;
        return 1;
    }
    char host[HOST_MAX + 1];
    strcpy(host, p->host);
    char *zone = strchr(host, '%');
    if (zone != NULL)
        *zone++ = '\0';
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        if (!p->bracketed)
            goto bad;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(p->port);
        if (zone != NULL) {
            /* A zone is an interface name or index; if_nametoindex()
             * asks the kernel through a socket ioctl, never the net. */
            char *end;
            unsigned long idx = strtoul(zone, &end, 10);
            if (*zone == '\0' || *end != '\0')
                idx = if_nametoindex(zone);
            if (idx == 0 || idx > UINT32_MAX)
                goto bad;
            in6->sin6_scope_id = (uint32_t)idx;
        }
        out->len = sizeof *in6;
        return 1;
    }
    if (p->bracketed || zone != NULL)
        goto bad;
    return 0;
bad:
    errno = EINVAL;
    return -1;
}

/* errno for a getaddrinfo() failure. */
static int eai_errno(int eai)
{
    switch (eai) {
    case EAI_SYSTEM:
        return errno;
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
    case EAI_FAIL:
        return ENOENT;
    case EAI_AGAIN:
        return EAGAIN;
    case EAI_MEMORY:
        return ENOMEM;
    default:
        return EIO;
    }
}

/*
 * Look a host name up: up to max addresses into out[], with port and type
 * from p.  Returns how many, or -1 with errno.
 *
 * In a coroutine the lookup runs on the offload pool (coro_getaddrinfo()),
 * so it blocks only the caller; outside coroutines (a listener made before
 * the loop runs) plain getaddrinfo() blocks a thread that runs nothing
 * else.  A listener on "localhost" always means 127.0.0.1, without a
 * lookup: getaddrinfo() may list ::1 first, and a server should not land
 * on another address family than its clients expect.
 */
static int resolve(const struct parts *p, bool passive,
                   struct coro__addr *out, int max)
{
    if (max < 1) {
        errno = EINVAL;
        return -1;
    }
    if (passive && strcmp(p->host, "localhost") == 0) {
        memset(&out[0], 0, sizeof out[0]);
        struct sockaddr_in *in4 = (struct sockaddr_in *)&out[0].ss;
        in4->sin_family = AF_INET;
        in4->sin_port = htons(p->port);
        in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        out[0].len = sizeof *in4;
        out[0].type = p->type;
        return 1;
    }
    struct addrinfo hints = {
        .ai_family = p->bracketed ? AF_INET6 : AF_UNSPEC,
        .ai_socktype = p->type,
        .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
    };
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)p->port);
    struct addrinfo *res = NULL;
    int eai = coro_current() != NULL
                  ? (coro_getaddrinfo)(p->host, port, &hints, &res)
                  : getaddrinfo(p->host, port, &hints, &res);
    if (eai != 0) {
        errno = eai_errno(eai);
        return -1;
    }
    int n = 0;
    for (struct addrinfo *ai = res; ai != NULL && n < max; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof out[n].ss)
            continue;
        memset(&out[n], 0, sizeof out[n]);
        memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
        out[n].len = ai->ai_addrlen;
        out[n].type = p->type;
        n++;
    }
    freeaddrinfo(res);
    if (n == 0) {
        errno = ENOENT;
        return -1;
    }
    return n;
}

static int unix_addr(const char *path, struct coro__addr *out)
{
    memset(out, 0, sizeof *out);
    struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof un->sun_path) {
        errno = EINVAL;
        return -1;
    }
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n + 1);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    out->type = SOCK_STREAM;
    return 0;
}

int coro__addr_resolve(const char *addr, bool passive,
                       struct coro__addr *out, int max)
{
    struct parts p;
    if (split(addr, &p) != 0)
        return -1;
    if (p.unix_path)
        return unix_addr(p.path, &out[0]) == 0 ? 1 : -1;
    int rc = numeric(&p, passive, &out[0]);
    if (rc != 0)
        return rc;
    return resolve(&p, passive, out, max);
}

int coro_addr_parse(const char *addr, struct sockaddr_storage *out,
                    socklen_t *len)
{
    struct parts p;
    struct coro__addr a;
    if (out == NULL || len == NULL || split(addr, &p) != 0)
        goto bad;
    int rc = p.unix_path ? (unix_addr(p.path, &a) == 0) : numeric(&p, true,
                                                                   &a);
    if (rc != 1)
        goto bad; /* malformed, or a name */
    memcpy(out, &a.ss, sizeof a.ss);
    *len = a.len;
    return 0;
bad:
    errno = EINVAL;
    return -1;
}

int coro_addr_format(const struct sockaddr *sa, socklen_t len, char *buf,
                     size_t size)
{
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t) ||
        (buf == NULL && size > 0)) {
        errno = EINVAL;
        return -1;
    }
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        if (len < (socklen_t)sizeof *in4)
            break;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        return snprintf(buf, size, "%s:%u", host, ntohs(in4->sin_port));
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (len < (socklen_t)sizeof *in6)
            break;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        if (in6->sin6_scope_id != 0)
            snprintf(host + strlen(host), sizeof host - strlen(host), "%%%u",
                     (unsigned)in6->sin6_scope_id);
        return snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t n = len > off ? (size_t)len - off : 0;
        if (n > sizeof un->sun_path)
            n = sizeof un->sun_path;
        /* The kernel may count the NUL or not; the path ends at the NUL. */
        n = strnlen(un->sun_path, n);
        return snprintf(buf, size, "unix:%.*s", (int)n, un->sun_path);
    }
    default:
        errno = EAFNOSUPPORT;
        return -1;
    }
    errno = EINVAL;
    return -1;
}
