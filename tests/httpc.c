#include "httpc.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct client *client_open(struct client *c, const struct server *s)
{
    char host[64];
    const char *colon = strrchr(s->addr, ':');
    cr_assert_not_null(colon);
    size_t hl = (size_t)(colon - s->addr);
    cr_assert_lt(hl, sizeof host);
    memcpy(host, s->addr, hl);
    host[hl] = '\0';
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)atoi(colon + 1))};
    cr_assert_eq(inet_pton(AF_INET, host, &sin.sin_addr), 1);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(c->fd, 0, "socket: %s", strerror(errno));
    struct timeval tv = {HTTPC_TIMEOUT_SEC, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    cr_assert_eq(connect(c->fd, (struct sockaddr *)&sin, sizeof sin), 0,
                 "connect %s: %s", s->addr, strerror(errno));
    c->len = 0;
    return c;
}

void client_close(struct client *c)
{
    close(c->fd);
    c->fd = -1;
}

void client_reset(struct client *c)
{
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    client_close(c);
}

bool client_send(struct client *c, const void *p, size_t n)
{
    if (n == (size_t)-1)
        n = strlen(p);
    const char *b = p;
    while (n > 0) {
        ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
            return false;
        cr_assert_gt(w, 0, "send: %s", strerror(errno));
        b += w;
        n -= (size_t)w;
    }
    return true;
}

/* Read more into c->buf.  >0 bytes, 0 at EOF or reset; fails the test on
 * a timeout. */
static ssize_t fill(struct client *c)
{
    cr_assert_lt(c->len, sizeof c->buf, "response too large");
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == ECONNRESET)
            return 0;
        cr_assert_geq(r, 0, "recv: %s", strerror(errno));
        c->len += (size_t)r;
        return r;
    }
}

static void consume(struct client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

bool response_header(const struct response *r, const char *name, char *out,
                     size_t size)
{
    size_t nl = strlen(name);
    const char *p = strstr(r->head, "\r\n");
    while (p != NULL && p[2] != '\0') {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r\n");
            if (vl >= size)
                vl = size - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
        p = strstr(p, "\r\n");
    }
    return false;
}

bool client_response(struct client *c, struct response *r, bool head)
{
    memset(r, 0, sizeof *r);
    r->length = -1;
    char *end;
    for (;;) {
        end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end != NULL)
            break;
        if (fill(c) == 0)
            return false;
    }
    size_t hlen = (size_t)(end - c->buf) + 4;
    cr_assert_lt(hlen, sizeof r->head);
    memcpy(r->head, c->buf, hlen);
    r->head[hlen] = '\0';
    cr_assert_eq(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1,
                 "status line: %.40s", r->head);
    char v[64];
    if (response_header(r, "Content-Length", v, sizeof v))
        r->length = atol(v);
    r->close = response_header(r, "Connection", v, sizeof v) &&
               strcasecmp(v, "close") == 0;
    size_t blen = head || r->length < 0 ? 0 : (size_t)r->length;
    while (c->len < hlen + blen)
        if (fill(c) == 0) {
            r->status = 0;
            return false;
        }
    cr_assert_lt(blen, sizeof r->body, "body too large for the test");
    memcpy(r->body, c->buf + hlen, blen);
    r->body[blen] = '\0';
    consume(c, hlen + blen);
    return true;
}

void client_roundtrip(struct client *c, const char *req, struct response *r)
{
    cr_assert(client_send(c, req, (size_t)-1), "server closed on send");
    cr_assert(client_response(c, r, false), "no response to: %s", req);
}

bool client_sees_eof(struct client *c)
{
    return c->len == 0 && fill(c) == 0;
}
