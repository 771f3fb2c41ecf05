/*
 * A session: one client, one coroutine.  It greets, checks the token of
 * a TCP client, then reads lines (parse.c's lexer) and runs them
 * (commands.c), each followed by a prompt.  Output is buffered in the
 * session (CORO__BD_OUT_MAX) and sent when the command is done, when the
 * buffer is full, or before the session waits for input; every send is
 * bounded by the send timeout, so a client that stops reading costs its
 * own session and nothing else.
 *
 * "log" lives here too: a log sink copies each message into a bounded
 * ring and wakes a second coroutine (the pump) through a socket pair; the
 * pump sends the messages, while the session waits for the key that ends
 * the log.  The sink may run anywhere, even inside the scheduler, so it
 * only copies bytes and writes one byte to a socket.
 */
#include "backdoor_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Time a bad token costs its session before the answer. */
#define TOKEN_DELAY_SEC 1.0

static const char PROMPT[] = "coro> ";

/* ------------------------------------------------------------------ */
/* Output                                                              */

/* Send the buffered output.  No coroutine check: the log pump sends too
 * (never while the session's coroutine does). */
static int flush(coro_backdoor_session_t *s)
{
    if (s->broken) {
        errno = EPIPE;
        return -1;
    }
    if (s->out_len == 0)
        return 0;
    if (coro_send_all(s->fd, s->out, s->out_len) < 0) {
        /* Gone, too slow, or interrupted mid-way: the stream is broken
         * in every case (an unknown part was sent). */
        s->broken = true;
        s->out_len = 0;
        shutdown(s->fd, SHUT_RDWR);
        errno = EPIPE;
        return -1;
    }
    s->out_len = 0;
    return 0;
}

int coro__bd_out_raw(coro_backdoor_session_t *s, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        if (s->broken) {
            errno = EPIPE;
            return -1;
        }
        if (s->out_len == sizeof s->out && flush(s) != 0)
            return -1;
        size_t k = sizeof s->out - s->out_len;
        k = k < n ? k : n;
        memcpy(s->out + s->out_len, c, k);
        s->out_len += k;
        c += k;
        n -= k;
    }
    return s->broken ? (errno = EPIPE, -1) : 0;
}

/* Text to the output: "\n" becomes telnet's "\r\n" and a byte 255 is
 * doubled (telnet's IAC).  No coroutine check: the log pump writes too. */
static int out_text(coro_backdoor_session_t *s, const char *p, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = p[i] == '\n'                 ? "\r\n"
                          : (unsigned char)p[i] == 255 ? "\xff\xff"
                                                       : NULL;
        if (esc == NULL)
            continue;
        if (coro__bd_out_raw(s, p + run, i - run) != 0 ||
            coro__bd_out_raw(s, esc, 2) != 0)
            return -1;
        run = i + 1;
    }
    return coro__bd_out_raw(s, p + run, n - run);
}

static int out_vprintf(coro_backdoor_session_t *s, const char *fmt, va_list ap)
{
    char small[512];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    int rc = -1;
    if (n < 0) {
        errno = EINVAL;
    } else if ((size_t)n < sizeof small) {
        rc = out_text(s, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (big != NULL) {
            vsnprintf(big, (size_t)n + 1, fmt, again);
            rc = out_text(s, big, (size_t)n);
            free(big);
        }
    }
    va_end(again);
    return rc == 0 ? n : -1;
}

static int out_printf(coro_backdoor_session_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int out_printf(coro_backdoor_session_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = out_vprintf(s, fmt, ap);
    va_end(ap);
    return n;
}

/* The checks of the public output calls. */
static int caller_ok(const coro_backdoor_session_t *s, const void *p)
{
    if (s == NULL || p == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (coro_current() != s->co) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

int coro_backdoor_flush(coro_backdoor_session_t *s)
{
    if (caller_ok(s, s) != 0)
        return -1;
    return flush(s);
}

int coro_backdoor_vprintf(coro_backdoor_session_t *s, const char *fmt,
                          va_list ap)
{
    if (caller_ok(s, fmt) != 0)
        return -1;
    return out_vprintf(s, fmt, ap);
}

int coro_backdoor_printf(coro_backdoor_session_t *s, const char *fmt, ...)
{
    if (caller_ok(s, fmt) != 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = out_vprintf(s, fmt, ap);
    va_end(ap);
    return n;
}

ssize_t coro_backdoor_write(coro_backdoor_session_t *s, const void *buf,
                            size_t len)
{
    if (caller_ok(s, buf) != 0)
        return -1;
    return out_text(s, buf, len) == 0 ? (ssize_t)len : -1;
}

void coro__bd_error(coro_backdoor_session_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    out_text(s, "error: ", 7);
    out_vprintf(s, fmt, ap);
    out_text(s, "\n", 1);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Input                                                               */

enum line_event { L_LINE, L_TOOLONG, L_CANCEL, L_END };

/* The next line (in s->lx.line), answering telnet negotiation on the way;
 * sends the pending output before it waits. */
static enum line_event next_line(coro_backdoor_session_t *s)
{
    for (;;) {
        while (s->in_pos < s->in_len) {
            size_t used;
            enum coro__bd_event ev = coro__bd_lex(&s->lx, s->in + s->in_pos,
                                                  s->in_len - s->in_pos, &used);
            s->in_pos += used;
            switch (ev) {
            case CORO__BD_REPLY:
                coro__bd_out_raw(s, s->lx.reply, sizeof s->lx.reply);
                break;
            case CORO__BD_LINE:
                return L_LINE;
            case CORO__BD_TOOLONG:
                return L_TOOLONG;
            case CORO__BD_CANCEL:
                return L_CANCEL;
            case CORO__BD_EOF:
                return L_END;
            case CORO__BD_MORE:
                break;
            }
        }
        if (flush(s) != 0)
            return L_END;
        ssize_t n = coro_read(s->fd, s->in, sizeof s->in);
        if (n <= 0) {
            if (n < 0 && errno == ETIMEDOUT && s->pending)
                out_printf(s, "\nno token in %g s: closing\n",
                           s->bd->login_sec);
            else if (n < 0 && errno == ETIMEDOUT)
                out_printf(s, "\nidle for %g s: closing\n", s->bd->idle_sec);
            return L_END;
        }
        s->in_pos = 0;
        s->in_len = (size_t)n;
    }
}

/* Compare in time that depends on the token's length only. */
static bool token_matches(const coro_backdoor_t *bd, const char *got)
{
    size_t glen = strlen(got);
    unsigned diff = glen != bd->token_len;
    for (size_t i = 0; i < bd->token_len; i++)
        diff |= (unsigned char)bd->token[i] ^
                (unsigned char)(i < glen ? got[i] : 0);
    return diff == 0;
}

/* The session no longer waits for its token: out of npending. */
static void login_over(coro_backdoor_session_t *s)
{
    if (s->pending && !s->pushed_out)
        s->bd->npending--;
    s->pending = false;
}

/* A TCP client's first line must be the token, within the login time.
 * Only a line that is not the token counts as a guess: a client that
 * leaves, resets, presses ^C, runs out of time or is pushed out before
 * it sends one ends quietly (port scans and health checks are no
 * attack). */
static bool authenticate(coro_backdoor_session_t *s)
{
    coro_backdoor_t *bd = s->bd;
    double wait;
    if (coro__bd_tcp_locked(bd, &wait)) {
        coro__bd_error(s, "too many bad tokens; try again in %.0f s",
                       wait + 0.5);
        return false;
    }
    coro_fd_set_timeout(s->fd, bd->login_sec, bd->send_sec);
    coro__bd_out_raw(s, "token: ", 7);
    enum line_event ev = next_line(s);
    bool pushed_out = s->pushed_out;
    login_over(s);
    coro_fd_set_timeout(s->fd, bd->idle_sec, bd->send_sec);
    if (pushed_out) { /* even with the token, read just before */
        coro__bd_error(s, "more clients are waiting to log in; this one "
                          "waited longest");
        return false;
    }
    if (ev == L_LINE && token_matches(bd, s->lx.line)) {
        if (bd->nsessions >= bd->max_sessions) {
            coro__bd_error(s, "too many sessions (%d open); try later",
                           bd->nsessions);
            return false;
        }
        s->counted = true;
        bd->nsessions++;
        return true;
    }
    if (ev == L_END || ev == L_CANCEL)
        return false;
    coro__bd_tcp_failed(bd, s->peer);
    /* Costs the guesser a second; the console goes on serving others. */
    if (coro_sleep(TOKEN_DELAY_SEC) == 0)
        coro__bd_error(s, "bad token");
    return false;
}

int coro__bd_session_main(void *arg)
{
    coro_backdoor_session_t *s = arg;
    coro_backdoor_t *bd = s->bd;
    coro_fd_set_timeout(s->fd, bd->idle_sec, bd->send_sec);
    out_printf(s, "%s\n", bd->banner);
    if (!s->tcp || authenticate(s)) {
        while (!s->closing && !s->broken && !bd->stopping) {
            coro__bd_out_raw(s, PROMPT, sizeof PROMPT - 1);
            switch (next_line(s)) {
            case L_LINE:
                coro__bd_run_line(s, s->lx.line);
                break;
            case L_TOOLONG:
                coro__bd_error(s, "line longer than %d bytes: ignored",
                               CORO__BD_LINE_MAX);
                break;
            case L_CANCEL:
                out_text(s, "^C\n", 3);
                break;
            case L_END:
                s->closing = true;
                break;
            }
        }
    }
    flush(s); /* best effort: a goodbye, an error */
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        bd->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    login_over(s);
    if (s->counted)
        bd->nsessions--;
    coro_close(s->fd);
    free(s);
    coro__bd_unref(bd);
    return 0;
}

/* ------------------------------------------------------------------ */
/* log                                                                 */

/* Bytes of messages kept while the client reads too slowly; beyond it
 * the oldest messages are dropped (and counted). */
#define LOG_RING (64 * 1024)
/* Longest message kept; a longer one (a huge latency report) is cut. */
#define LOG_MSG_MAX (8 * 1024)

struct coro__bd_log {
    coro_backdoor_session_t *s;
    int wake[2];       /* socket pair: the sink writes [1], the pump reads
                          [0] */
    bool wake_pending; /* a wake-up byte is unread: no need for another */
    unsigned long long dropped;   /* messages dropped since the last note */
    size_t head;                  /* ring offset of the oldest record */
    size_t used;                  /* bytes of records in the ring */
    unsigned char ring[LOG_RING]; /* records: 2-byte length, then text */
};

static void ring_put(struct coro__bd_log *l, size_t off, const void *p,
                     size_t n)
{
    size_t at = (l->head + off) % LOG_RING;
    size_t first = n < LOG_RING - at ? n : LOG_RING - at;
    memcpy(l->ring + at, p, first);
    memcpy(l->ring, (const char *)p + first, n - first);
}

static void ring_get(const struct coro__bd_log *l, size_t off, void *p,
                     size_t n)
{
    size_t at = (l->head + off) % LOG_RING;
    size_t first = n < LOG_RING - at ? n : LOG_RING - at;
    memcpy(p, l->ring + at, first);
    memcpy((char *)p + first, l->ring, n - first);
}

/* Take the oldest message into buf (LOG_MSG_MAX bytes); its length. */
static size_t ring_pop(struct coro__bd_log *l, char *buf)
{
    unsigned char hdr[2];
    ring_get(l, 0, hdr, 2);
    size_t n = (size_t)hdr[0] << 8 | hdr[1];
    if (buf != NULL)
        ring_get(l, 2, buf, n);
    l->head = (l->head + 2 + n) % LOG_RING;
    l->used -= 2 + n;
    return n;
}

static void log_sink(const char *text, size_t len, void *ud)
{
    struct coro__bd_log *l = ud;
    if (len > LOG_MSG_MAX)
        len = LOG_MSG_MAX;
    while (LOG_RING - l->used < 2 + len) {
        ring_pop(l, NULL);
        l->dropped++;
    }
    unsigned char hdr[2] = {(unsigned char)(len >> 8), (unsigned char)len};
    ring_put(l, l->used, hdr, 2);
    ring_put(l, l->used + 2, text, len);
    l->used += 2 + len;
    if (!l->wake_pending) {
        l->wake_pending = true;
        /* Never waits: at most one byte is ever in the pair. */
        (void)!send(l->wake[1], "!", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
}

/* Send what the ring holds.  0, or -1 when the client is gone. */
static int log_deliver(struct coro__bd_log *l)
{
    char msg[LOG_MSG_MAX];
    coro_backdoor_session_t *s = l->s;
    while (l->used > 0) {
        if (l->dropped != 0) {
            out_printf(s, "[%llu lines dropped]\n", l->dropped);
            l->dropped = 0;
        }
        size_t n = ring_pop(l, msg);
        if (out_text(s, msg, n) != 0 ||
            (n > 0 && msg[n - 1] != '\n' && out_text(s, "\n", 1) != 0))
            return -1;
    }
    return flush(s);
}

static int log_pump(void *arg)
{
    struct coro__bd_log *l = arg;
    char junk[16];
    while (coro_read(l->wake[0], junk, sizeof junk) > 0) {
        l->wake_pending = false;
        if (log_deliver(l) != 0) {
            /* The client cannot keep up or is gone: end the session,
             * which waits for a key meanwhile. */
            coro_interrupt(l->s->co, EPIPE);
            break;
        }
    }
    return 0;
}

int coro__bd_cmd_log(coro_backdoor_session_t *s, int argc, char **argv,
                     void *ud)
{
    (void)ud;
    if (argc != 1)
        return coro__bd_usage(s, argv[0]);
    struct coro__bd_log *l = calloc(1, sizeof *l);
    if (l == NULL)
        return -1;
    l->s = s;
    if (coro_socketpair(AF_UNIX, SOCK_STREAM, 0, l->wake) != 0) {
        free(l);
        return -1;
    }
    int rc = -1;
    /* The header goes out before the pump may send anything. */
    out_printf(s, "log: streaming this program's log; "
                  "press Enter to stop\n");
    if (flush(s) != 0)
        goto out;
    if (coro_log_sink_add(log_sink, l) != 0)
        goto out;
    coro_opts_t o = {.name = "backdoor log",
                     .stack_size = 128 * 1024, /* msg[] in log_deliver() */
                     .joinable = true};
    s->pump = coro_spawn_opts(log_pump, l, &o);
    if (s->pump == NULL) {
        coro_log_sink_remove(log_sink, l);
        goto out;
    }
    s->log = l;
    /* Streaming is not idling: no read timeout until the key. */
    coro_fd_set_timeout(s->fd, 0, s->bd->send_sec);
    if (s->in_pos == s->in_len && coro_read(s->fd, s->in, sizeof s->in) <= 0)
        s->closing = true;     /* gone, too slow, or stopped */
    s->in_pos = s->in_len = 0; /* the key is not a command */
    coro_fd_set_timeout(s->fd, s->bd->idle_sec, s->bd->send_sec);
    coro_log_sink_remove(log_sink, l);
    coro_interrupt(s->pump, ECANCELED);
    /* A join fails only when an interrupt of ours came first: the pump
     * is interrupted already, so the next join waits for its end. */
    while (coro_join(s->pump, NULL, NULL) != 0 && errno != ESRCH)
        ;
    s->pump = NULL;
    s->log = NULL;
    if (!s->closing && log_deliver(l) == 0)
        out_printf(s, "log: stopped\n");
    rc = 0;
out:;
    int saved = errno;
    coro_close(l->wake[0]);
    coro_close(l->wake[1]);
    free(l);
    errno = saved;
    return rc;
}
