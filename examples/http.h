/*
 * A small, strict HTTP/1.1 request parser and a connection helper, shared
 * by the httpd and trampoline examples.
 *
 * The parser (http_parse_request()) works on bytes already in memory and
 * never reads past the length it is given: it is a pure function that
 * tests feed random bytes.  The connection helper (struct http_conn) owns
 * the read and write buffers of one connection and the coro socket calls
 * around them: it reads only when the buffer holds no complete request,
 * and writes the responses of one read in one system call.
 *
 * What it accepts (RFC 9112, strictly):
 * - A request line "METHOD SP target SP HTTP/1.x CRLF"; a bare LF ends a
 *   line too (RFC 9112 2.2 allows it), a bare CR anywhere is an error.
 *   Empty lines before a request line are skipped (2.2).
 * - Header fields "name: value"; no white space before the colon, no
 *   obsolete line folding, no control characters in values.
 * - HTTP/1.1 requests need exactly one Host header.
 * - A body only through Content-Length (one value, digits only; repeated
 *   headers must agree).  Transfer-Encoding (chunked or any other) is not
 *   implemented: such a request gets 501 and the connection closes, since
 *   where its body ends cannot be known (RFC 9112 6.1 allows this).
 * - Connection: close / keep-alive; HTTP/1.1 defaults to keep-alive,
 *   HTTP/1.0 to close.
 */
#ifndef CORO_EXAMPLES_HTTP_H
#define CORO_EXAMPLES_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Largest request line plus headers, in bytes.  Larger gets 431.  It is
 * also the size of a connection's read buffer: a complete header always
 * fits in it. */
#define HTTP_MAX_HEADER 8192
/* Most header fields kept per request; more gets 431. */
#define HTTP_MAX_FIELDS 32
/* Largest body accepted; larger gets 413.  Bodies that do not fit in the
 * read buffer are read into an allocation of their exact size. */
#define HTTP_MAX_BODY (1024 * 1024)

/* A slice of the bytes being parsed: not NUL-terminated. */
struct http_str {
    const char *p; /* first byte (borrowed from the parsed buffer) */
    size_t len;    /* bytes */
};

/* One header field, as it came (name case preserved). */
struct http_field {
    struct http_str name;  /* a token */
    struct http_str value; /* without surrounding white space */
};

/* A parsed request.  Every slice points into the buffer given to
 * http_parse_request() (or, for body, into the connection's body
 * allocation) and is valid until that buffer changes. */
struct http_request {
    struct http_str method; /* e.g. "GET": a token, case-sensitive */
    struct http_str target; /* e.g. "/query/a?x=1": visible ASCII */
    int minor;              /* HTTP/1.minor: 0 or 1 */
    bool keep_alive;        /* the connection may stay open after it */
    size_t header_len;      /* bytes of request line and header fields,
                               including the empty line (and skipped
                               empty lines before the request line) */
    size_t body_len;        /* Content-Length, 0 without one */
    const char *body;       /* body_len bytes (NULL when 0); set by
                               http_conn_next(), not by the parser */
    int nfields;            /* entries used in fields[] */
    struct http_field fields[HTTP_MAX_FIELDS];
};

/*
 * Parse the request at the start of buf[0..len).  Does not block, reads
 * no byte outside buf[0..len), allocates nothing.  Returns:
 *   > 0  the header is complete: *req is filled and the value is
 *        req->header_len; the body (req->body_len bytes) follows it and
 *        may not have arrived yet;
 *   0    more bytes are needed (len is below HTTP_MAX_HEADER and no
 *        error has been seen so far);
 *   < 0  the request is malformed: the negated status to answer with
 *        before closing: -400 (bad syntax), -431 (header larger than
 *        HTTP_MAX_HEADER or more than HTTP_MAX_FIELDS fields), -413 (body
 *        above HTTP_MAX_BODY), -501 (Transfer-Encoding), -505 (a version
 *        other than HTTP/1.0 and HTTP/1.1).
 */
ssize_t http_parse_request(const char *buf, size_t len,
                           struct http_request *req);

/* Whether s equals the NUL-terminated lit, exactly / ignoring ASCII case. */
bool http_str_eq(struct http_str s, const char *lit);
bool http_str_case_eq(struct http_str s, const char *lit);

/* The value of the first field named name (case-insensitive), or a slice
 * with p NULL when there is none. */
struct http_str http_field(const struct http_request *req, const char *name);

/* The reason phrase of a status code ("Not Found"), "" if unknown. */
const char *http_reason(int status);

/* ---------------------------------------------------------------------
 * One connection, served by one coroutine.
 */

/* Bytes of responses gathered before they are written. */
#define HTTP_OUT_BUF 4096

/* Caller storage (typically on the serving coroutine's stack, about
 * 12 KiB), set up by http_conn_init() and ended by http_conn_close(). */
struct http_conn {
    int fd;         /* the connection, owned: closed by close */
    size_t in_off;  /* start of unparsed bytes in in[] */
    size_t in_len;  /* end of received bytes in in[] */
    size_t out_len; /* bytes of responses gathered in out[] */
    char *body;     /* the current request's body when it did not
                       fit in in[], owned, freed by the next call */
    bool closing;   /* no more requests: the last response said
                       Connection: close */
    bool linger;    /* unread input may remain: close gracefully */
    double idle_sec;      /* as given to http_conn_init() */
    int64_t head_deadline; /* ticks by which the request begun in in[] must
                              be whole, or 0 before one begins */
    char in[HTTP_MAX_HEADER];
    char out[HTTP_OUT_BUF];
};

/* Take over fd (a connected socket).  idle_sec bounds each wait for the
 * client to send (coro_fd_set_timeout(); 0 = none), and the time from the
 * first byte of a request to the end of its header, so that a client
 * trickling a byte at a time cannot hold the connection (nginx's
 * client_header_timeout); writes are bounded by the same time, or 10 s
 * when idle_sec is 0.  Does not block. */
void http_conn_init(struct http_conn *c, int fd, double idle_sec);

/*
 * The next request on c, in *req.  Takes it from bytes already received
 * when they hold a complete one; otherwise first writes the responses
 * gathered so far (so pipelined requests get their responses in one
 * write) and then reads.  The body is read too.  Blocks.
 *
 * Returns 1 and *req (valid until the next call), or 0 when the
 * connection is over: the client closed or reset it, went idle, timed
 * out mid-request (answered 408), sent something malformed (answered
 * 400, 413, 431, 501 or 505), an earlier response closed it, or the call
 * was interrupted (errno then tells, e.g. ECANCELED).  After 0, call
 * http_conn_close().
 */
int http_conn_next(struct http_conn *c, struct http_request *req);

/*
 * Queue a response to req: status line, Date, Server, Content-Length,
 * Content-Type (if ctype is not NULL), Connection: close when req asks
 * for it or close is true, extra (borrowed; whole header lines ending in
 * CRLF, may be NULL), then the body (not for HEAD requests).  Small
 * responses are gathered into c->out; a large one is written at once
 * after the ones gathered.  Blocks only when it writes.  0, or -1 with
 * errno (the connection is then broken: call http_conn_close()).
 */
int http_conn_respond(struct http_conn *c, const struct http_request *req,
                      int status, const char *ctype, const char *extra,
                      const void *body, size_t len, bool close);

/* Write the gathered responses now (before blocking for something else,
 * so earlier pipelined answers are not held back).  Blocks.  0 or -1. */
int http_conn_flush(struct http_conn *c);

/* Flush what is gathered (best effort), close the connection gracefully
 * when unread input may remain (shutdown, then read and drop for at most
 * a second, so the client sees the response instead of a reset), free
 * what c holds.  Blocks (bounded). */
void http_conn_close(struct http_conn *c);

#endif
