/*
 * respd: a small server that speaks the Redis protocol (RESP2), enough for
 * redis-cli and redis-benchmark: PING, ECHO, SET (EX, PX, NX, XX, GET,
 * KEEPTTL), GET, DEL, EXISTS, INCR, EXPIRE (NX, XX, GT, LT), TTL, DBSIZE,
 * FLUSHALL, QUIT, and CONFIG GET (which answers an empty list).  Replies
 * and error messages are byte for byte those of Redis 7.
 *
 * One coroutine per connection, with a 32 KiB stack.  Its loop is the one
 * that makes pipelining cheap: read once, parse and run every complete
 * command in the buffer, gather the replies in one output buffer, write
 * them with one call, and read again only for more input.  With coro's
 * socket calls that is one read and one write per batch of commands.
 * Keys expire lazily (a lookup finds them expired) and through a sweeper
 * coroutine that samples keys with an expiry ten times a second.
 *
 * Run:  build/examples/respd [--listen ADDR]   (default 127.0.0.1:6379)
 * Try:  redis-cli -p 6379 set greeting hello ex 60
 * docs/examples.md has more.
 */
#include "respd_store.h"
#include "server.h"

#include <coro/coro.h>
#include <tsc_time/tsc_time.h>

#include <ctype.h>
#include <signal.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Limits, Redis's defaults: the longest inline line or header line
 * without its newline (PROTO_INLINE_MAX_SIZE), the most elements of one
 * multibulk request (the pre-7.0 cap; 7.0 allows INT_MAX, which lets one
 * line ask for a huge argument vector), the longest bulk argument
 * (proto-max-bulk-len), and the most one request may hold in the query
 * buffer (client-query-buffer-limit). */
#define INLINE_MAX    (64 * 1024)
#define MULTIBULK_MAX (1024 * 1024)
#define BULK_MAX      (512LL * 1024 * 1024)
#define QUERY_MAX     ((size_t)1 << 30)

/* Buffer sizes: the read buffer a connection starts with (and shrinks back
 * to when a big request is done), the output size that makes a batch
 * flush before the input is used up, the largest buffer kept after a
 * big request or reply, and the least free space a read is given (a
 * smaller gap grows the buffer rather than read a few bytes at a time). */
#define IN_INITIAL  (16 * 1024)
#define OUT_INITIAL (16 * 1024)
#define OUT_FLUSH   (64 * 1024)
#define BUF_KEEP    (64 * 1024)
#define READ_MIN    (4 * 1024)

/* A connection's stack.  Buffers live on the heap; the deepest use is
 * vsnprintf() for an error reply, a few KiB.  32 KiB leaves room for
 * AddressSanitizer's larger frames too. */
#define CONN_STACK (32 * 1024)

/* How long a connection closed for a protocol error keeps reading (and
 * dropping) what the client still sends, so that the client reads the
 * error instead of a reset. */
#define LINGER_SEC 1.0

/* A client that takes nothing for this long while we write is dropped. */
#define WRITE_TIMEOUT_SEC 60.0

/* Time between two rounds of active expiry (Redis's hz 10). */
#define SWEEP_INTERVAL_SEC 0.1

/* One argument of the current request: bytes of the input buffer. */
struct arg {
    size_t off; /* offset in conn.in */
    size_t len; /* bytes */
};

/* The parser's position inside a request it has not completely read. */
enum req_kind {
    REQ_NONE,      /* between requests */
    REQ_MULTIBULK, /* "*N\r\n" read, arguments follow */
};

/* One client connection; owned by its coroutine. */
struct conn {
    int fd;             /* the socket, closed when the coroutine ends */
    char *in;           /* input buffer (owned) */
    size_t in_cap;      /* bytes allocated for in */
    size_t in_len;      /* bytes of in holding input */
    size_t cmd_start;   /* start of the request being parsed; the bytes
                           before it are done with */
    size_t pos;         /* parse position, cmd_start <= pos <= in_len */
    enum req_kind kind; /* what is being parsed */
    long mb_left;       /* multibulk arguments not yet read */
    long long bulk_len; /* length of the bulk being read, -1: its header */
    struct arg *argv;   /* the request's arguments so far (owned) */
    size_t argc;        /* entries used in argv */
    size_t argv_cap;    /* entries allocated */
    char *out;          /* replies not yet written (owned) */
    size_t out_len;     /* bytes in out */
    size_t out_cap;     /* bytes allocated for out */
    bool oom;           /* a reply could not be stored: close */
    bool broken;        /* a write failed: the stream is unusable */
    bool quit;          /* QUIT, or a protocol error: close after flush */
    bool linger;        /* a protocol error: linger before closing */
};

/* Server-wide state.  Everything runs on the loop's thread. */
static struct {
    struct store store; /* the keys */
    bool stopping;      /* set once SIGINT/SIGTERM ended the loop */
    int64_t now_ms;     /* the clock, read once per batch of commands */
} srv;

static int64_t clock_ms(void)
{
    return tsc_ticks_to_usec(coro_now()) / 1000;
}

/* ---- Replies ----------------------------------------------------------
 * Appended to conn.out; a failed allocation sets conn.oom, and the
 * connection is closed after the command. */

static bool out_reserve(struct conn *c, size_t n)
{
    if (c->oom)
        return false;
    if (c->out_cap - c->out_len >= n)
        return true;
    size_t cap = c->out_cap * 2;
    while (cap - c->out_len < n)
        cap *= 2;
    char *p = realloc(c->out, cap);
    if (p == NULL) {
        c->oom = true;
        return false;
    }
    c->out = p;
    c->out_cap = cap;
    return true;
}

static void reply_raw(struct conn *c, const char *s, size_t n)
{
    if (!out_reserve(c, n))
        return;
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

#define REPLY_LIT(c, s) reply_raw((c), (s), sizeof(s) - 1)

/* Decimal digits of v into the end of buf (at least 21 bytes); returns
 * where they start. */
static char *fmt_ll(char *end, long long v)
{
    unsigned long long u =
        v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    char *p = end;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return p;
}

/* A line of a type byte, a number and CRLF: ":42\r\n", "$5\r\n". */
static void reply_num(struct conn *c, char type, long long v)
{
    char buf[24];
    char *end = buf + sizeof buf;
    *--end = '\n';
    *--end = '\r';
    char *p = fmt_ll(end, v);
    *--p = type;
    reply_raw(c, p, (size_t)(buf + sizeof buf - p));
}

static void reply_int(struct conn *c, long long v)
{
    reply_num(c, ':', v);
}

static void reply_bulk(struct conn *c, const char *s, size_t n)
{
    reply_num(c, '$', (long long)n);
    if (!out_reserve(c, n + 2))
        return;
    if (n > 0) /* an empty value has no buffer: s may be NULL */
        memcpy(c->out + c->out_len, s, n);
    memcpy(c->out + c->out_len + n, "\r\n", 2);
    c->out_len += n + 2;
}

static void reply_nil(struct conn *c)
{
    REPLY_LIT(c, "$-1\r\n");
}

static void reply_ok(struct conn *c)
{
    REPLY_LIT(c, "+OK\r\n");
}

/* "-ERR <message>\r\n".  As Redis does, CR and LF inside the message
 * become spaces, so a client's bytes quoted in it cannot break the
 * protocol. */
__attribute__((format(printf, 2, 3))) static void
reply_errorf(struct conn *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof msg)
        n = sizeof msg - 1;
    for (int i = 0; i < n; i++)
        if (msg[i] == '\r' || msg[i] == '\n')
            msg[i] = ' ';
    REPLY_LIT(c, "-ERR ");
    reply_raw(c, msg, (size_t)n);
    REPLY_LIT(c, "\r\n");
}

static void reply_not_integer(struct conn *c)
{
    reply_errorf(c, "value is not an integer or out of range");
}

static void reply_syntax_error(struct conn *c)
{
    reply_errorf(c, "syntax error");
}

/* ---- Arguments -------------------------------------------------------- */

static const char *arg_ptr(const struct conn *c, size_t i)
{
    return c->in + c->argv[i].off;
}

static size_t arg_len(const struct conn *c, size_t i)
{
    return c->argv[i].len;
}

/* Whether argument i is word, ignoring case. */
static bool arg_is(const struct conn *c, size_t i, const char *word)
{
    size_t n = strlen(word);
    return arg_len(c, i) == n && strncasecmp(arg_ptr(c, i), word, n) == 0;
}

/*
 * Redis's string2ll(): a decimal 64-bit integer with no spaces, no '+',
 * no leading zeros and no "-0", at most 20 characters.  Whether s[0..len)
 * is one; *out receives it.
 */
static bool parse_ll(const char *s, size_t len, long long *out)
{
    if (len == 0 || len > 20)
        return false;
    if (len == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-') {
        neg = true;
        if (++i == len)
            return false;
    }
    if (s[i] < '1' || s[i] > '9')
        return false;
    unsigned long long v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return false;
        *out =
            v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > LLONG_MAX)
            return false;
        *out = (long long)v;
    }
    return true;
}

/* Argument i as an integer, or false after replying Redis's error. */
static bool arg_ll(struct conn *c, size_t i, long long *out)
{
    if (parse_ll(arg_ptr(c, i), arg_len(c, i), out))
        return true;
    reply_not_integer(c);
    return false;
}

/* ---- Commands ---------------------------------------------------------
 * Each runs to completion without blocking, so commands of different
 * connections never interleave: each is atomic, as in Redis. */

static void cmd_ping(struct conn *c)
{
    if (c->argc > 2) {
        reply_errorf(c, "wrong number of arguments for 'ping' command");
        return;
    }
    if (c->argc == 2)
        reply_bulk(c, arg_ptr(c, 1), arg_len(c, 1));
    else
        REPLY_LIT(c, "+PONG\r\n");
}

static void cmd_echo(struct conn *c)
{
    reply_bulk(c, arg_ptr(c, 1), arg_len(c, 1));
}

static void cmd_get(struct conn *c)
{
    struct entry *e =
        store_get(&srv.store, arg_ptr(c, 1), arg_len(c, 1), srv.now_ms);
    if (e == NULL)
        reply_nil(c);
    else
        reply_bulk(c, e->val, e->val_len);
}

/* The absolute expiry for a relative time, or 0 after replying Redis's
 * "invalid expire time" error. */
static int64_t expire_at(struct conn *c, long long amount, bool seconds,
                         const char *cmd)
{
    if (amount <= 0 || (seconds && amount > LLONG_MAX / 1000)) {
        reply_errorf(c, "invalid expire time in '%s' command", cmd);
        return 0;
    }
    long long ms = seconds ? amount * 1000 : amount;
    if (ms > LLONG_MAX - srv.now_ms) {
        reply_errorf(c, "invalid expire time in '%s' command", cmd);
        return 0;
    }
    return srv.now_ms + ms;
}

/* SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | KEEPTTL]
 * (EXAT and PXAT, which need the wall clock, are left out). */
static void cmd_set(struct conn *c)
{
    enum { NX = 1, XX = 2, GET = 4, EX = 8, PX = 16, KEEPTTL = 32 };
    int flags = 0;
    size_t expire_arg = 0;
    for (size_t i = 3; i < c->argc; i++) {
        bool has_next = i + 1 < c->argc;
        if (arg_is(c, i, "nx") && !(flags & XX)) {
            flags |= NX;
        } else if (arg_is(c, i, "xx") && !(flags & NX)) {
            flags |= XX;
        } else if (arg_is(c, i, "get")) {
            flags |= GET;
        } else if (arg_is(c, i, "keepttl") && !(flags & (EX | PX))) {
            flags |= KEEPTTL;
        } else if (arg_is(c, i, "ex") && !(flags & (KEEPTTL | PX)) &&
                   has_next) {
            flags |= EX;
            expire_arg = ++i;
        } else if (arg_is(c, i, "px") && !(flags & (KEEPTTL | EX)) &&
                   has_next) {
            flags |= PX;
            expire_arg = ++i;
        } else {
            reply_syntax_error(c);
            return;
        }
    }
    int64_t expire_ms = 0;
    if (expire_arg != 0) {
        long long amount;
        if (!arg_ll(c, expire_arg, &amount))
            return;
        expire_ms = expire_at(c, amount, flags & EX, "set");
        if (expire_ms == 0)
            return;
    }
    const char *key = arg_ptr(c, 1);
    size_t key_len = arg_len(c, 1);
    struct entry *old = store_get(&srv.store, key, key_len, srv.now_ms);
    if (flags & GET) {
        if (old == NULL)
            reply_nil(c);
        else
            reply_bulk(c, old->val, old->val_len);
    }
    if (((flags & NX) && old != NULL) || ((flags & XX) && old == NULL)) {
        if (!(flags & GET))
            reply_nil(c);
        return;
    }
    if (store_set(&srv.store, key, key_len, arg_ptr(c, 2), arg_len(c, 2),
                  expire_ms, flags & KEEPTTL, srv.now_ms) == NULL) {
        c->oom = true;
        return;
    }
    if (!(flags & GET))
        reply_ok(c);
}

static void cmd_del(struct conn *c)
{
    long long n = 0;
    for (size_t i = 1; i < c->argc; i++)
        n += store_del(&srv.store, arg_ptr(c, i), arg_len(c, i), srv.now_ms);
    reply_int(c, n);
}

static void cmd_exists(struct conn *c)
{
    long long n = 0;
    for (size_t i = 1; i < c->argc; i++)
        if (store_get(&srv.store, arg_ptr(c, i), arg_len(c, i), srv.now_ms))
            n++;
    reply_int(c, n);
}

static void cmd_incr(struct conn *c)
{
    const char *key = arg_ptr(c, 1);
    size_t key_len = arg_len(c, 1);
    struct entry *e = store_get(&srv.store, key, key_len, srv.now_ms);
    long long v = 0;
    if (e != NULL && !parse_ll(e->val, e->val_len, &v)) {
        reply_not_integer(c);
        return;
    }
    if (v == LLONG_MAX) {
        reply_errorf(c, "increment or decrement would overflow");
        return;
    }
    v++;
    char buf[24];
    char *end = buf + sizeof buf;
    char *digits = fmt_ll(end, v);
    size_t n = (size_t)(end - digits);
    /* INCR keeps the key's expiry, as Redis's does. */
    bool stored;
    if (e != NULL)
        stored = store_set_value(e, digits, n) == 0;
    else
        stored = store_set(&srv.store, key, key_len, digits, n, 0, false,
                           srv.now_ms) != NULL;
    if (!stored) {
        c->oom = true;
        return;
    }
    reply_int(c, v);
}

/* EXPIRE key seconds [NX | XX | GT | LT] */
static void cmd_expire(struct conn *c)
{
    enum { NX = 1, XX = 2, GT = 4, LT = 8 };
    int flags = 0;
    for (size_t i = 3; i < c->argc; i++) {
        if (arg_is(c, i, "nx")) {
            flags |= NX;
        } else if (arg_is(c, i, "xx")) {
            flags |= XX;
        } else if (arg_is(c, i, "gt")) {
            flags |= GT;
        } else if (arg_is(c, i, "lt")) {
            flags |= LT;
        } else {
            reply_errorf(c, "Unsupported option %.*s",
                         (int)strnlen(arg_ptr(c, i), arg_len(c, i)),
                         arg_ptr(c, i));
            return;
        }
    }
    if ((flags & NX) && (flags & (XX | GT | LT))) {
        reply_errorf(c, "NX and XX, GT or LT options at the same time "
                        "are not compatible");
        return;
    }
    if ((flags & GT) && (flags & LT)) {
        reply_errorf(c, "GT and LT options at the same time are not "
                        "compatible");
        return;
    }
    long long sec;
    if (!arg_ll(c, 2, &sec))
        return;
    /* A negative or zero time is allowed: it deletes the key.  Only an
     * overflow is an error. */
    if (sec > LLONG_MAX / 1000 || sec < LLONG_MIN / 1000 ||
        sec * 1000 > LLONG_MAX - srv.now_ms) {
        reply_errorf(c, "invalid expire time in 'expire' command");
        return;
    }
    int64_t when = srv.now_ms + sec * 1000;
    struct entry *e =
        store_get(&srv.store, arg_ptr(c, 1), arg_len(c, 1), srv.now_ms);
    if (e == NULL) {
        reply_int(c, 0);
        return;
    }
    /* A key without expiry counts as an infinite TTL for GT and LT. */
    bool has_ttl = e->expire_ms != 0;
    if (((flags & NX) && has_ttl) || ((flags & XX) && !has_ttl) ||
        ((flags & GT) && (!has_ttl || when <= e->expire_ms)) ||
        ((flags & LT) && has_ttl && when >= e->expire_ms)) {
        reply_int(c, 0);
        return;
    }
    if (when <= srv.now_ms)
        store_del(&srv.store, arg_ptr(c, 1), arg_len(c, 1), srv.now_ms);
    else
        store_set_expire(&srv.store, e, when);
    reply_int(c, 1);
}

static void cmd_ttl(struct conn *c)
{
    struct entry *e =
        store_get(&srv.store, arg_ptr(c, 1), arg_len(c, 1), srv.now_ms);
    if (e == NULL) {
        reply_int(c, -2);
    } else if (e->expire_ms == 0) {
        reply_int(c, -1);
    } else {
        int64_t left = e->expire_ms - srv.now_ms;
        reply_int(c, (left + 500) / 1000); /* rounded, as Redis does */
    }
}

static void cmd_dbsize(struct conn *c)
{
    reply_int(c, (long long)store_count(&srv.store));
}

static void cmd_flushall(struct conn *c)
{
    if (c->argc > 2 ||
        (c->argc == 2 && !arg_is(c, 1, "sync") && !arg_is(c, 1, "async"))) {
        reply_syntax_error(c);
        return;
    }
    store_clear(&srv.store);
    reply_ok(c);
}

static void cmd_quit(struct conn *c)
{
    reply_ok(c);
    c->quit = true;
}

/* CONFIG GET answers an empty list (no parameter matches), enough for
 * redis-benchmark, which asks for "save" and "appendonly" first. */
static void cmd_config(struct conn *c)
{
    if (!arg_is(c, 1, "get")) {
        int len = (int)strnlen(arg_ptr(c, 1), arg_len(c, 1));
        reply_errorf(c, "unknown subcommand '%.*s'. Try CONFIG HELP.",
                     len < 128 ? len : 128, arg_ptr(c, 1));
        return;
    }
    if (c->argc < 3) {
        reply_errorf(c, "wrong number of arguments for 'config|get' "
                        "command");
        return;
    }
    REPLY_LIT(c, "*0\r\n");
}

/* A command: its lower-case name, Redis's arity (N: exactly N arguments
 * with the name, -N: at least N) and its function. */
struct command {
    const char *name;
    int arity;
    void (*fn)(struct conn *c);
};

/* The most used first: the lookup is a linear scan. */
static const struct command commands[] = {
    {"get", 2, cmd_get},
    {"set", -3, cmd_set},
    {"ping", -1, cmd_ping},
    {"incr", 2, cmd_incr},
    {"del", -2, cmd_del},
    {"exists", -2, cmd_exists},
    {"expire", -3, cmd_expire},
    {"ttl", 2, cmd_ttl},
    {"echo", 2, cmd_echo},
    {"dbsize", 1, cmd_dbsize},
    {"flushall", -1, cmd_flushall},
    {"quit", -1, cmd_quit},
    {"config", -2, cmd_config},
};

static const struct command *lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const struct command *cmd = &commands[i];
        if (strlen(cmd->name) == len && strncasecmp(cmd->name, name, len) == 0)
            return cmd;
    }
    return NULL;
}

/* Run the request in c->argv (argc >= 1). */
static void execute(struct conn *c)
{
    const struct command *cmd = lookup(arg_ptr(c, 0), arg_len(c, 0));
    if (cmd == NULL) {
        /* Redis quotes the name and the first arguments, up to 128 bytes
         * of them, each as C string (cut at a NUL byte). */
        char args[160];
        size_t n = 0;
        for (size_t i = 1; i < c->argc && n < 128; i++) {
            int room = 128 - (int)n;
            int len = (int)strnlen(arg_ptr(c, i), arg_len(c, i));
            n += (size_t)snprintf(args + n, sizeof args - n, "'%.*s' ",
                                  len < room ? len : room, arg_ptr(c, i));
        }
        args[n] = '\0';
        int name_len = (int)strnlen(arg_ptr(c, 0), arg_len(c, 0));
        reply_errorf(c, "unknown command '%.*s', with args beginning with: %s",
                     name_len < 128 ? name_len : 128, arg_ptr(c, 0), args);
        return;
    }
    if (cmd->arity > 0 ? c->argc != (size_t)cmd->arity
                       : c->argc < (size_t)-cmd->arity) {
        reply_errorf(c, "wrong number of arguments for '%s' command",
                     cmd->name);
        return;
    }
    cmd->fn(c);
}

/* ---- Parsing ----------------------------------------------------------
 * Requests come as multibulk ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") or, when
 * the first byte is not '*', as an inline line for telnet users ("GET k"
 * with optional quotes).  The parser keeps its place, so a request that
 * arrives in pieces is not parsed again from its start, and a large bulk
 * argument is read straight into a buffer sized for it. */

enum parse_result {
    PARSE_MORE,  /* the request is incomplete: read more */
    PARSE_DONE,  /* a request is in argv (argc may be 0: nothing to do) */
    PARSE_ERROR, /* a protocol error: replied, close the connection */
};

static enum parse_result protocol_error(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum parse_result protocol_error(struct conn *c, const char *fmt, ...)
{
    char msg[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_errorf(c, "Protocol error: %s", msg);
    c->quit = true;
    c->linger = true;
    return PARSE_ERROR;
}

static bool push_arg(struct conn *c, size_t off, size_t len)
{
    if (c->argc == c->argv_cap) {
        size_t cap = c->argv_cap * 2;
        struct arg *p = realloc(c->argv, cap * sizeof *p);
        if (p == NULL) {
            c->oom = true;
            return false;
        }
        c->argv = p;
        c->argv_cap = cap;
    }
    c->argv[c->argc++] = (struct arg){off, len};
    return true;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (char)tolower((unsigned char)ch);
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/*
 * Split an inline line in[start, start+len) into arguments the way
 * Redis's sdssplitargs() does: separated by white space, each optionally
 * in "double quotes" (with \n \r \t \b \a \xHH and \<char> escapes) or
 * 'single quotes' (with \'), a closing quote followed by a space or the
 * end.  The line is unescaped in place: an argument is never longer than
 * its text, so the writer never passes the reader.  A NUL byte ends the
 * line, as it ends Redis's C string.  false for unbalanced quotes.
 */
static bool split_inline(struct conn *c, size_t start, size_t len)
{
    char *base = c->in;
    char *p = base + start;
    char *end = p + strnlen(p, len);
    char *w = p;
    for (;;) {
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (p == end)
            return true;
        char *arg = w;
        bool in_dq = false, in_sq = false, done = false;
        while (!done) {
            char ch = p < end ? *p : '\0';
            char next = p + 1 < end ? p[1] : '\0';
            if (in_dq) {
                if (ch == '\\' && next == 'x' && p + 3 < end &&
                    hex_value(p[2]) >= 0 && hex_value(p[3]) >= 0) {
                    *w++ = (char)(hex_value(p[2]) * 16 + hex_value(p[3]));
                    p += 3;
                } else if (ch == '\\' && next != '\0') {
                    p++;
                    switch (*p) {
                    case 'n':
                        *w++ = '\n';
                        break;
                    case 'r':
                        *w++ = '\r';
                        break;
                    case 't':
                        *w++ = '\t';
                        break;
                    case 'b':
                        *w++ = '\b';
                        break;
                    case 'a':
                        *w++ = '\a';
                        break;
                    default:
                        *w++ = *p;
                        break;
                    }
                } else if (ch == '"') {
                    if (next != '\0' && !isspace((unsigned char)next))
                        return false;
                    done = true;
                } else if (ch == '\0') {
                    return false;
                } else {
                    *w++ = ch;
                }
            } else if (in_sq) {
                if (ch == '\\' && next == '\'') {
                    p++;
                    *w++ = '\'';
                } else if (ch == '\'') {
                    if (next != '\0' && !isspace((unsigned char)next))
                        return false;
                    done = true;
                } else if (ch == '\0') {
                    return false;
                } else {
                    *w++ = ch;
                }
            } else {
                switch (ch) {
                case ' ':
                case '\n':
                case '\r':
                case '\t':
                case '\0':
                    done = true;
                    break;
                case '"':
                    in_dq = true;
                    break;
                case '\'':
                    in_sq = true;
                    break;
                default:
                    *w++ = ch;
                    break;
                }
            }
            if (p < end)
                p++;
        }
        if (!push_arg(c, (size_t)(arg - base), (size_t)(w - arg)))
            return true; /* c->oom says why */
    }
}

static enum parse_result parse_inline(struct conn *c)
{
    char *start = c->in + c->pos;
    size_t avail = c->in_len - c->pos;
    char *nl = memchr(start, '\n', avail);
    if (nl == NULL) {
        if (avail > INLINE_MAX)
            return protocol_error(c, "too big inline request");
        return PARSE_MORE;
    }
    size_t len = (size_t)(nl - start);
    size_t next = c->pos + len + 1;
    if (len > 0 && start[len - 1] == '\r')
        len--;
    if (!split_inline(c, c->pos, len))
        return protocol_error(c, "unbalanced quotes in request");
    c->pos = next;
    return PARSE_DONE;
}

/* A "<type><integer>\r\n" header line at c->pos: 1 and *v when it is
 * complete, 0 when more input is needed, -1 when it is too long (the
 * caller names the error).  Like Redis, only the CR is looked for; the
 * byte after it is taken as the LF. */
static int header_line(struct conn *c, long long *v, bool *ok)
{
    char *start = c->in + c->pos;
    size_t avail = c->in_len - c->pos;
    char *cr = memchr(start, '\r', avail);
    if (cr == NULL)
        return avail > INLINE_MAX ? -1 : 0;
    size_t len = (size_t)(cr - start);
    if (len + 2 > avail)
        return 0;
    *ok = len > 1 && parse_ll(start + 1, len - 1, v);
    c->pos += len + 2;
    return 1;
}

static enum parse_result parse_multibulk(struct conn *c)
{
    long long v = 0;
    bool ok = false;
    if (c->kind == REQ_NONE) {
        int r = header_line(c, &v, &ok);
        if (r < 0)
            return protocol_error(c, "too big mbulk count string");
        if (r == 0)
            return PARSE_MORE;
        if (!ok || v > MULTIBULK_MAX)
            return protocol_error(c, "invalid multibulk length");
        if (v <= 0)
            return PARSE_DONE; /* "*0" or "*-1": an empty request */
        c->kind = REQ_MULTIBULK;
        c->mb_left = (long)v;
        c->bulk_len = -1;
    }
    while (c->mb_left > 0) {
        if (c->bulk_len < 0) {
            if (c->pos == c->in_len)
                return PARSE_MORE;
            char type = c->in[c->pos];
            int r = header_line(c, &v, &ok);
            if (r < 0)
                return protocol_error(c, "too big bulk count string");
            if (r == 0)
                return PARSE_MORE;
            if (type != '$')
                return protocol_error(c, "expected '$', got '%c'", type);
            if (!ok || v < 0 || v > BULK_MAX)
                return protocol_error(c, "invalid bulk length");
            c->bulk_len = v;
        }
        /* Like Redis, the two bytes after the data are taken as CRLF
         * without a look. */
        if (c->in_len - c->pos < (size_t)c->bulk_len + 2)
            return PARSE_MORE;
        if (!push_arg(c, c->pos, (size_t)c->bulk_len))
            return PARSE_ERROR;
        c->pos += (size_t)c->bulk_len + 2;
        c->bulk_len = -1;
        c->mb_left--;
    }
    c->kind = REQ_NONE;
    return PARSE_DONE;
}

static enum parse_result parse(struct conn *c)
{
    if (c->kind == REQ_NONE) {
        if (c->pos == c->in_len)
            return PARSE_MORE;
        if (c->in[c->pos] != '*')
            return parse_inline(c);
    }
    return parse_multibulk(c);
}

/* ---- The connection --------------------------------------------------- */

/* Write every reply gathered.  0, or -1: the client is gone. */
static int flush(struct conn *c)
{
    if (c->broken)
        return -1;
    if (c->out_len == 0)
        return 0;
    if (coro_send_all(c->fd, c->out, c->out_len) < 0) {
        /* Part of it may be sent: never try again (nor wait again, when
         * the failure was our shutdown's interrupt). */
        c->broken = true;
        return -1;
    }
    c->out_len = 0;
    if (c->out_cap > BUF_KEEP) {
        /* A big reply is done: give its memory back. */
        char *p = realloc(c->out, OUT_INITIAL);
        if (p != NULL) {
            c->out = p;
            c->out_cap = OUT_INITIAL;
        }
    }
    return 0;
}

/* Parse and run every complete request in the input buffer, flushing
 * whenever the output grows large.  0 when more input is needed, -1 when
 * the connection must close (after a flush of what was gathered). */
static int run_requests(struct conn *c)
{
    srv.now_ms = clock_ms();
    for (;;) {
        enum parse_result r = parse(c);
        if (r == PARSE_MORE)
            return c->oom ? -1 : 0;
        if (r == PARSE_ERROR || c->oom)
            return -1;
        if (c->argc > 0)
            execute(c);
        c->argc = 0;
        c->cmd_start = c->pos;
        if (c->quit || c->oom)
            return -1;
        if (c->out_len >= OUT_FLUSH) {
            if (flush(c) != 0)
                return -1;
            srv.now_ms = clock_ms(); /* the flush may have waited */
        }
    }
}

/*
 * Make room to read: move the unfinished request to the front of the
 * buffer (once per request: it then starts at 0) and grow the buffer when
 * it is full, or to hold a bulk argument whose length is known, so one
 * read can take all of it.  0, or -1 when the request passes QUERY_MAX or
 * memory runs out.
 */
static int make_room(struct conn *c)
{
    if (c->cmd_start > 0) {
        size_t keep = c->in_len - c->cmd_start;
        memmove(c->in, c->in + c->cmd_start, keep);
        for (size_t i = 0; i < c->argc; i++)
            c->argv[i].off -= c->cmd_start;
        c->pos -= c->cmd_start;
        c->in_len = keep;
        c->cmd_start = 0;
    }
    /* Room for a useful read: never a few bytes at a time. */
    size_t need = c->in_len + READ_MIN;
    if (c->kind == REQ_MULTIBULK && c->bulk_len >= 0)
        need = c->pos + (size_t)c->bulk_len + 2;
    if (need > QUERY_MAX)
        return -1;
    if (c->in_len == 0 && c->in_cap > BUF_KEEP && need <= IN_INITIAL) {
        char *p = realloc(c->in, IN_INITIAL); /* a big request is done */
        if (p != NULL) {
            c->in = p;
            c->in_cap = IN_INITIAL;
        }
    }
    if (need <= c->in_cap)
        return 0;
    size_t cap = c->in_cap * 2 > need ? c->in_cap * 2 : need;
    char *p = realloc(c->in, cap);
    if (p == NULL)
        return -1;
    c->in = p;
    c->in_cap = cap;
    return 0;
}

/* After a protocol error: stop writing, then drop what the client still
 * sends for a moment, so it can read our error before the close. */
static int drain(void *arg)
{
    struct conn *c = arg;
    char sink[4096];
    while (coro_read(c->fd, sink, sizeof sink) > 0)
        ;
    return 0;
}

static int conn_main(void *arg)
{
    struct conn *c = arg;
    coro_fd_set_timeout(c->fd, 0, WRITE_TIMEOUT_SEC);
    for (;;) {
        if (run_requests(c) != 0)
            break;
        if (flush(c) != 0 || make_room(c) != 0)
            goto close;
        ssize_t n = coro_read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n <= 0)
            goto close; /* the client left, reset, or we are stopping */
        c->in_len += (size_t)n;
    }
    if (flush(c) == 0 && c->linger && !srv.stopping) {
        coro_shutdown(c->fd, SHUT_WR);
        coro_with_timeout(LINGER_SEC, drain, c);
    }
close:
    coro_close(c->fd);
    free(c->in);
    free(c->out);
    free(c->argv);
    free(c);
    return 0;
}

static struct conn *conn_new(int fd)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->fd = fd;
    c->in = malloc(IN_INITIAL);
    c->out = malloc(OUT_INITIAL);
    c->argv_cap = 16;
    c->argv = malloc(c->argv_cap * sizeof *c->argv);
    if (c->in == NULL || c->out == NULL || c->argv == NULL) {
        free(c->in);
        free(c->out);
        free(c->argv);
        free(c);
        return NULL;
    }
    c->in_cap = IN_INITIAL;
    c->out_cap = OUT_INITIAL;
    c->bulk_len = -1;
    return c;
}

/* ---- Accepting, expiring, shutting down ------------------------------ */

static int acceptor(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    const coro_opts_t opts = {.name = "conn", .stack_size = CONN_STACK};
    while (!srv.stopping) {
        int fd = server_accept(lfd, &srv.stopping);
        if (fd < 0)
            break;
        struct conn *c = conn_new(fd);
        if (c == NULL || coro_spawn_opts(conn_main, c, &opts) == NULL) {
            /* No memory: drop this client, keep serving the others. */
            if (c != NULL) {
                free(c->in);
                free(c->out);
                free(c->argv);
                free(c);
            }
            coro_close(fd);
        }
    }
    coro_close(lfd);
    return 0;
}

static int sweeper(void *arg)
{
    (void)arg;
    while (coro_sleep(SWEEP_INTERVAL_SEC) == 0)
        store_sweep(&srv.store, clock_ms());
    return 0;
}

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [--listen ADDR] [--help]\n"
            "A small Redis-protocol server (PING ECHO SET GET DEL EXISTS\n"
            "INCR EXPIRE TTL DBSIZE FLUSHALL QUIT) on coro.\n"
            "  --listen ADDR  address to serve (default 127.0.0.1:6379;\n"
            "                 port 0 picks a free port, printed on start)\n"
            "  --help         show this and exit\n"
            "SIGINT or SIGTERM stops it cleanly (exit status 0).\n",
            prog);
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1:6379";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            addr = argv[++i];
        } else if (strncmp(argv[i], "--listen=", 9) == 0) {
            addr = argv[i] + 9;
        } else {
            usage(stderr, argv[0]);
            return 2;
        }
    }
    /* With port 0 the kernel chose: name is the real address. */
    char name[128];
    int lfd = server_listen(addr, 511, name, sizeof name);
    if (lfd < 0) {
        fprintf(stderr, "respd: listen %s: %s\n", addr, strerror(errno));
        return 1;
    }
    if (store_init(&srv.store) != 0) {
        fprintf(stderr, "respd: out of memory\n");
        coro_close(lfd);
        return 1;
    }
    if (coro_spawn(acceptor, (void *)(intptr_t)lfd, "acceptor") == NULL ||
        coro_spawn(sweeper, NULL, "sweeper") == NULL) {
        fprintf(stderr, "respd: spawn: %s\n", strerror(errno));
        return 1;
    }
    printf("respd listening on %s\n", name);
    fflush(stdout);

    int rc = coro_event_loop(); /* until SIGINT or SIGTERM */
    /* Stop: wake every coroutine with ECANCELED; each closes its socket
     * and frees what it holds as it ends. */
    srv.stopping = true;
    int left = server_stop_all();
    store_free(&srv.store);
    if (left != 0) {
        fprintf(stderr, "respd: coroutines left at exit\n");
        return 1;
    }
    return rc == 128 + SIGINT || rc == 128 + SIGTERM ? 0 : 1;
}
