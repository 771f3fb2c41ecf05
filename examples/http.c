/*
 * HTTP/1.1 request parsing and one connection's buffers: see http.h.
 *
 * The parser is written to be obviously in bounds: every byte is read
 * through an index checked against the length given (and against
 * HTTP_MAX_HEADER), and it keeps no state between calls.  Parsing a
 * request again from its start after each read costs a scan of at most
 * HTTP_MAX_HEADER bytes, which is cheaper than the read that brought the
 * bytes, and keeps the parser free of resumable states.
 */
#include "http.h"

#include <coro/coro.h>
#include <errno.h>
#include <tsc_time/tsc_time.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* ---------------------------------------------------------------------
 * Parsing
 */

/* RFC 9110 5.6.2: token characters. */
static bool is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (ch >= '0' && ch <= '9'))
        return true;
    return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Field value characters: VCHAR, obs-text, SP and HTAB; no CTL, no DEL. */
static bool is_vchar(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static unsigned char lower(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + 32) : ch;
}

bool http_str_eq(struct http_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

bool http_str_case_eq(struct http_str s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s.p[i]) != lower((unsigned char)lit[i]))
            return false;
    return true;
}

struct http_str http_field(const struct http_request *req, const char *name)
{
    for (int i = 0; i < req->nfields; i++)
        if (http_str_case_eq(req->fields[i].name, name))
            return req->fields[i].value;
    return (struct http_str){NULL, 0};
}

/*
 * Find the line starting at buf[at]: on success *end is the index just
 * past its content (before CR LF or LF) and *next the index of the next
 * line.  Returns 1, 0 when no LF is within buf[at..lim), or -400 for a CR
 * not followed by LF.
 */
static int line(const char *buf, size_t at, size_t lim, size_t *end,
                size_t *next)
{
    const char *lf = memchr(buf + at, '\n', lim - at);
    if (lf == NULL)
        return 0;
    size_t e = (size_t)(lf - buf);
    *next = e + 1;
    if (e > at && buf[e - 1] == '\r')
        e--;
    if (memchr(buf + at, '\r', e - at) != NULL)
        return -400; /* a bare CR: a request smuggling classic */
    *end = e;
    return 1;
}

/* "HTTP/1.0" or "HTTP/1.1" -> minor version; other versions -505; other
 * text -400. */
static int version(const char *p, size_t len)
{
    if (len != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' ||
        p[5] > '9' || p[7] < '0' || p[7] > '9')
        return -400;
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return -505;
    return p[7] - '0';
}

/* Content-Length: 1*DIGIT, at most HTTP_MAX_BODY (-413), else -400. */
static ssize_t content_length(struct http_str v)
{
    if (v.len == 0)
        return -400;
    size_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char ch = (unsigned char)v.p[i];
        if (ch < '0' || ch > '9')
            return -400;
        n = n * 10 + (ch - '0');
        if (n > HTTP_MAX_BODY)
            return -413; /* also stops any overflow */
    }
    return (ssize_t)n;
}

/* Apply Connection's comma-separated options to *keep_alive; "close"
 * wins over "keep-alive" whatever their order. */
static void connection_options(struct http_str v, bool *keep_alive)
{
    bool close = false;
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t s = i;
        while (i < v.len && v.p[i] != ',' && v.p[i] != ' ' && v.p[i] != '\t')
            i++;
        struct http_str opt = {v.p + s, i - s};
        if (http_str_case_eq(opt, "close"))
            close = true;
        else if (http_str_case_eq(opt, "keep-alive"))
            *keep_alive = true;
    }
    if (close)
        *keep_alive = false;
}

/* Parse the header field in buf[s..e) into *f.  0 or -400. */
static int field(const char *buf, size_t s, size_t e, struct http_field *f)
{
    size_t i = s;
    while (i < e && is_tchar((unsigned char)buf[i]))
        i++;
    if (i == s || i == e || buf[i] != ':')
        return -400; /* empty name, no colon, or space before it */
    f->name = (struct http_str){buf + s, i - s};
    i++;
    while (i < e && (buf[i] == ' ' || buf[i] == '\t'))
        i++;
    size_t vend = e;
    while (vend > i && (buf[vend - 1] == ' ' || buf[vend - 1] == '\t'))
        vend--;
    for (size_t k = i; k < vend; k++)
        if (!is_vchar((unsigned char)buf[k]))
            return -400;
    f->value = (struct http_str){buf + i, vend - i};
    return 0;
}

ssize_t http_parse_request(const char *buf, size_t len,
                           struct http_request *req)
{
    /* Only the first HTTP_MAX_HEADER bytes can hold a header we accept;
     * "more needed" turns into 431 once that many are there. */
    size_t lim = len < HTTP_MAX_HEADER ? len : HTTP_MAX_HEADER;
    int more = len >= HTTP_MAX_HEADER ? -431 : 0;
    size_t at = 0, end, next;
    int r;

    /* Empty lines before the request line (after a body, some clients
     * send an extra CRLF). */
    for (;;) {
        if (at == lim)
            return more;
        if (buf[at] != '\r' && buf[at] != '\n')
            break;
        if ((r = line(buf, at, lim, &end, &next)) <= 0)
            return r < 0 ? r : more;
        if (end != at)
            return -400;
        at = next;
    }

    /* The request line: method SP target SP version. */
    if ((r = line(buf, at, lim, &end, &next)) <= 0)
        return r < 0 ? r : more;
    size_t i = at;
    while (i < end && is_tchar((unsigned char)buf[i]))
        i++;
    if (i == at || i == end || buf[i] != ' ')
        return -400;
    req->method = (struct http_str){buf + at, i - at};
    size_t t = ++i;
    while (i < end && (unsigned char)buf[i] > 0x20 &&
           (unsigned char)buf[i] < 0x7f)
        i++;
    if (i == t || i == end || buf[i] != ' ')
        return -400;
    req->target = (struct http_str){buf + t, i - t};
    i++;
    int minor = version(buf + i, end - i);
    if (minor < 0)
        return minor;
    req->minor = minor;
    at = next;

    /* Header fields, up to the empty line. */
    req->nfields = 0;
    int hosts = 0;
    bool keep_alive = minor == 1, have_length = false, chunked = false;
    size_t body_len = 0;
    for (;;) {
        if ((r = line(buf, at, lim, &end, &next)) <= 0)
            return r < 0 ? r : more;
        if (end == at)
            break;
        if (buf[at] == ' ' || buf[at] == '\t')
            return -400; /* obsolete line folding (RFC 9112 5.2) */
        if (req->nfields == HTTP_MAX_FIELDS)
            return -431;
        struct http_field *f = &req->fields[req->nfields++];
        if ((r = field(buf, at, end, f)) < 0)
            return r;
        if (http_str_case_eq(f->name, "content-length")) {
            ssize_t n = content_length(f->value);
            if (n < 0)
                return n;
            if (have_length && (size_t)n != body_len)
                return -400;
            have_length = true;
            body_len = (size_t)n;
        } else if (http_str_case_eq(f->name, "transfer-encoding")) {
            chunked = true;
        } else if (http_str_case_eq(f->name, "host")) {
            hosts++;
        } else if (http_str_case_eq(f->name, "connection")) {
            connection_options(f->value, &keep_alive);
        }
        at = next;
    }
    if (chunked)
        return -501;
    if (hosts > 1 || (minor == 1 && hosts == 0))
        return -400; /* RFC 9112 3.2: exactly one Host in HTTP/1.1 */
    req->keep_alive = keep_alive;
    req->header_len = next;
    req->body_len = body_len;
    req->body = NULL;
    return (ssize_t)next;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

/* ---------------------------------------------------------------------
 * Connections
 */

/* Seconds to wait for a client to take our response once we stopped
 * reading, when idle_sec gives no bound. */
#define WRITE_TIMEOUT_SEC 10.0
/* A graceful close reads and drops what the client still sends for at
 * most this long, and at most LINGER_MAX bytes: enough for a client to
 * finish writing a rejected request and read our answer. */
#define LINGER_SEC 1.0
#define LINGER_MAX (4 * 1024 * 1024)

void http_conn_init(struct http_conn *c, int fd, double idle_sec)
{
    c->fd = fd;
    c->in_off = c->in_len = c->out_len = 0;
    c->body = NULL;
    c->closing = c->linger = false;
    c->idle_sec = idle_sec;
    c->head_deadline = 0;
    coro_fd_set_timeout(fd, idle_sec,
                        idle_sec > 0 ? idle_sec : WRITE_TIMEOUT_SEC);
}

/* The Date header's value, "Sun, 06 Nov 1994 08:49:37 GMT", made once a
 * second (time() is a vDSO call, not a system call). */
static const char *http_date(void)
{
    static char date[32];
    static time_t made = -1;
    time_t now = time(NULL);
    if (now != made) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        made = now;
    }
    return date;
}

/* Appending to a header being built: a pointer and the room left. */
struct buf {
    char *p;
    size_t room;
    bool overflow; /* something did not fit */
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (n > b->room) {
        b->overflow = true;
        return;
    }
    memcpy(b->p, s, n);
    b->p += n;
    b->room -= n;
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void putu(struct buf *b, size_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(b, tmp + i, sizeof tmp - i);
}

int http_conn_flush(struct http_conn *c)
{
    if (c->out_len == 0)
        return 0;
    size_t n = c->out_len;
    c->out_len = 0;
    return coro_send_all(c->fd, c->out, n) < 0 ? -1 : 0;
}

int http_conn_respond(struct http_conn *c, const struct http_request *req,
                      int status, const char *ctype, const char *extra,
                      const void *body, size_t len, bool close)
{
    if (req == NULL || !req->keep_alive)
        close = true;
    if (close) {
        c->closing = true;
        if (c->in_len > c->in_off)
            c->linger = true; /* pipelined requests we will not read */
    }
    bool head = req != NULL && http_str_eq(req->method, "HEAD");
    size_t send_len = head ? 0 : len;

    char hdr[1024];
    struct buf b = {hdr, sizeof hdr, false};
    puts_(&b, "HTTP/1.1 ");
    putu(&b, (size_t)status);
    puts_(&b, " ");
    puts_(&b, http_reason(status));
    puts_(&b, "\r\nServer: coro\r\nDate: ");
    puts_(&b, http_date());
    if (ctype != NULL) {
        puts_(&b, "\r\nContent-Type: ");
        puts_(&b, ctype);
    }
    if (status != 204 && status >= 200) { /* RFC 9110 8.6 */
        puts_(&b, "\r\nContent-Length: ");
        putu(&b, len);
    }
    if (close)
        puts_(&b, "\r\nConnection: close");
    else if (req->minor == 0) /* HTTP/1.0 wants persistence confirmed */
        puts_(&b, "\r\nConnection: keep-alive");
    puts_(&b, "\r\n");
    if (extra != NULL)
        puts_(&b, extra);
    puts_(&b, "\r\n");
    if (b.overflow) {
        errno = EINVAL; /* our own header lines are too long */
        return -1;
    }
    size_t hlen = (size_t)(b.p - hdr);

    /* Gather it if it fits: the usual small response costs a memcpy. */
    if (hlen + send_len > sizeof c->out - c->out_len && http_conn_flush(c) < 0)
        return -1;
    if (hlen + send_len <= sizeof c->out - c->out_len) {
        memcpy(c->out + c->out_len, hdr, hlen);
        if (send_len > 0)
            memcpy(c->out + c->out_len + hlen, body, send_len);
        c->out_len += hlen + send_len;
        return 0;
    }
    struct iovec iov[2] = {{hdr, hlen}, {(void *)body, send_len}};
    return coro_send_allv(c->fd, iov, 2) < 0 ? -1 : 0;
}

/* Answer a malformed request with status and close afterwards. */
static void reject(struct http_conn *c, int status)
{
    char msg[64];
    int n = snprintf(msg, sizeof msg, "%s\n", http_reason(status));
    c->linger = true; /* the rest of what it sent is unread */
    if (http_conn_respond(c, NULL, status, "text/plain", NULL, msg, (size_t)n,
                          true) == 0)
        http_conn_flush(c);
}

/* Read a body that does not fit in c->in into its own allocation: got
 * bytes of it are at c->in[from..].  1, or 0 when it did not arrive. */
static int big_body(struct http_conn *c, struct http_request *req, size_t from,
                    size_t got)
{
    c->body = malloc(req->body_len);
    if (c->body == NULL) {
        reject(c, 413);
        return 0;
    }
    memcpy(c->body, c->in + from, got);
    /* The header stays in c->in (req points into it); nothing more is
     * read into c->in until the next call. */
    c->in_off = c->in_len;
    if (http_conn_flush(c) < 0)
        return 0;
    size_t rest = req->body_len - got;
    ssize_t n = coro_recv_exact(c->fd, c->body + got, rest);
    if (n != (ssize_t)rest) {
        if (n < 0 && errno == ETIMEDOUT)
            reject(c, 408);
        return 0; /* the client left mid-body, or an error */
    }
    req->body = c->body;
    return 1;
}

/* One read into c->in, under c->head_deadline (coro_with_deadline). */
struct head_read {
    struct http_conn *c;
    ssize_t n;
};

static int head_read(void *arg)
{
    struct head_read *r = arg;
    struct http_conn *c = r->c;
    r->n = coro_read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
    return r->n < 0 ? -1 : 0;
}

/* Read more of the request in c->in: with a request begun, only until its
 * header's deadline.  As coro_read(). */
static ssize_t read_more(struct http_conn *c, size_t begun)
{
    if (begun == 0 || c->idle_sec <= 0)
        return coro_read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
    if (c->head_deadline == 0)
        c->head_deadline = coro_now() + tsc_sec_to_ticks(c->idle_sec);
    struct head_read r = {.c = c, .n = -1};
    if (coro_with_deadline(c->head_deadline, head_read, &r) != 0)
        return -1;
    return r.n;
}

int http_conn_next(struct http_conn *c, struct http_request *req)
{
    free(c->body);
    c->body = NULL;
    if (c->closing)
        return 0;
    for (;;) {
        size_t avail = c->in_len - c->in_off;
        ssize_t h = http_parse_request(c->in + c->in_off, avail, req);
        if (h < 0) {
            reject(c, (int)-h);
            return 0;
        }
        if (h > 0) {
            size_t need = (size_t)h + req->body_len;
            c->head_deadline = 0; /* the header is whole */
            if (need <= avail) {
                req->body = req->body_len > 0 ? c->in + c->in_off + h : NULL;
                c->in_off += need;
                return 1;
            }
            if (need > sizeof c->in)
                return big_body(c, req, c->in_off + (size_t)h,
                                avail - (size_t)h);
        }
        /* More bytes are needed.  Move what is left of a partial request
         * to the front (usually nothing, or a few bytes), answer what is
         * answered so far, and read once. */
        if (c->in_off > 0) {
            memmove(c->in, c->in + c->in_off, avail);
            c->in_off = 0;
            c->in_len = avail;
        }
        if (http_conn_flush(c) < 0)
            return 0;
        ssize_t n = read_more(c, h > 0 ? 0 : avail);
        if (n <= 0) {
            /* EOF or an error.  Mid-request silence gets a 408; an
             * idle connection just closes, as nginx does. */
            if (n < 0 && errno == ETIMEDOUT && avail > 0)
                reject(c, 408);
            return 0;
        }
        c->in_len += (size_t)n;
    }
}

/* Read and drop what the client still sends, up to LINGER_MAX bytes. */
static int drain(void *arg)
{
    struct http_conn *c = arg;
    size_t total = 0;
    while (total < LINGER_MAX) {
        ssize_t n = coro_read(c->fd, c->in, sizeof c->in);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
    return 0;
}

void http_conn_close(struct http_conn *c)
{
    int saved = errno;
    if (http_conn_flush(c) == 0 && c->linger) {
        /* Closing a socket with unread input sends a reset, which can
         * destroy the response before the client reads it: say we are
         * done writing, and let the client finish first. */
        if (shutdown(c->fd, SHUT_WR) == 0)
            coro_with_timeout(LINGER_SEC, drain, c);
    }
    coro_close(c->fd);
    c->fd = -1;
    free(c->body);
    c->body = NULL;
    errno = saved;
}
