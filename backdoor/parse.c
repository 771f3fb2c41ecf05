/*
 * The backdoor's input parsing (see parse_internal.h): a byte-level
 * state machine for telnet and line editing, a word splitter and value
 * parsers.  Pure: no I/O, no allocation, no global state.
 */
#include "parse_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Telnet (RFC 854) command bytes. */
enum {
    T_SE = 240,   /* end of subnegotiation */
    T_BRK = 243,  /* break */
    T_IP = 244,   /* interrupt process: what ^C sends in telnet */
    T_AO = 245,   /* abort output */
    T_EC = 247,   /* erase character */
    T_EL = 248,   /* erase line */
    T_SB = 250,   /* start of subnegotiation */
    T_WILL = 251, /* the peer wants to enable an option */
    T_WONT = 252,
    T_DO = 253, /* the peer asks us to enable an option */
    T_DONT = 254,
    T_IAC = 255, /* interpret as command; IAC IAC is a data byte 255 */
    T_EOF = 236, /* end of file: what ^D may send */
};

/* Where the telnet state machine is. */
enum {
    TS_DATA, /* plain bytes */
    TS_IAC,  /* after IAC */
    TS_WILL, /* after IAC WILL: the option byte comes */
    TS_WONT,
    TS_DO,
    TS_DONT,
    TS_SB,     /* inside IAC SB ... IAC SE: dropped */
    TS_SB_IAC, /* IAC inside a subnegotiation */
};

/* Control bytes a terminal sends for line editing. */
enum { C_ETX = 3, C_EOT = 4, C_BS = 8, C_NAK = 21, C_DEL = 127 };

void coro__bd_lex_init(struct coro__bd_lexer *lx)
{
    memset(lx, 0, sizeof *lx);
}

/* Refuse an option: we run every telnet option off, the NVT default, so
 * a client stays in line mode with local echo. */
static enum coro__bd_event refuse(struct coro__bd_lexer *lx, unsigned char verb,
                                  unsigned char opt)
{
    lx->reply[0] = T_IAC;
    lx->reply[1] = verb;
    lx->reply[2] = opt;
    return CORO__BD_REPLY;
}

/* A byte of the line (not a telnet command).  Returns the event it
 * completes, or CORO__BD_MORE. */
static enum coro__bd_event data_byte(struct coro__bd_lexer *lx, unsigned char c)
{
    if (lx->cr) {
        lx->cr = false;
        if (c == '\n' || c == '\0')
            return CORO__BD_MORE; /* the rest of CR LF or CR NUL */
    }
    if (c == '\r' || c == '\n') {
        lx->cr = c == '\r';
        if (lx->discard) {
            lx->discard = false; /* the long line has ended */
            lx->len = 0;
            return CORO__BD_MORE;
        }
        lx->line[lx->len] = '\0';
        lx->len = 0; /* the text stays in line until the next call */
        return CORO__BD_LINE;
    }
    switch (c) {
    case C_ETX:
        lx->len = 0;
        lx->discard = false;
        return CORO__BD_CANCEL;
    case C_EOT:
        return lx->len == 0 && !lx->discard ? CORO__BD_EOF : CORO__BD_MORE;
    case C_BS:
    case C_DEL:
        if (lx->len > 0)
            lx->len--;
        return CORO__BD_MORE;
    case C_NAK: /* ^U: kill the line */
        lx->len = 0;
        return CORO__BD_MORE;
    }
    if (c < 0x20 && c != '\t')
        return CORO__BD_MORE; /* other control bytes mean nothing here */
    if (lx->discard)
        return CORO__BD_MORE;
    if (lx->len == CORO__BD_LINE_MAX) {
        lx->discard = true;
        lx->len = 0;
        return CORO__BD_TOOLONG;
    }
    lx->line[lx->len++] = (char)c;
    return CORO__BD_MORE;
}

/* A byte after IAC. */
static enum coro__bd_event command_byte(struct coro__bd_lexer *lx,
                                        unsigned char c)
{
    lx->tstate = TS_DATA;
    switch (c) {
    case T_IAC:
        return data_byte(lx, c);
    case T_WILL:
        lx->tstate = TS_WILL;
        break;
    case T_WONT:
        lx->tstate = TS_WONT;
        break;
    case T_DO:
        lx->tstate = TS_DO;
        break;
    case T_DONT:
        lx->tstate = TS_DONT;
        break;
    case T_SB:
        lx->tstate = TS_SB;
        break;
    case T_IP:
    case T_AO:
    case T_BRK:
        return data_byte(lx, C_ETX);
    case T_EOF:
        return data_byte(lx, C_EOT);
    case T_EC:
        return data_byte(lx, C_BS);
    case T_EL:
        return data_byte(lx, C_NAK);
    }
    return CORO__BD_MORE; /* NOP, GA, DM, AYT... */
}

enum coro__bd_event coro__bd_lex(struct coro__bd_lexer *lx,
                                 const unsigned char *in, size_t n,
                                 size_t *used)
{
    enum coro__bd_event ev = CORO__BD_MORE;
    size_t i = 0;
    while (i < n && ev == CORO__BD_MORE) {
        unsigned char c = in[i++];
        switch (lx->tstate) {
        case TS_DATA:
            if (c == T_IAC)
                lx->tstate = TS_IAC;
            else
                ev = data_byte(lx, c);
            break;
        case TS_IAC:
            ev = command_byte(lx, c);
            break;
        case TS_WILL: /* never answer WONT or DONT: no negotiation loops */
            lx->tstate = TS_DATA;
            ev = refuse(lx, T_DONT, c);
            break;
        case TS_DO:
            lx->tstate = TS_DATA;
            ev = refuse(lx, T_WONT, c);
            break;
        case TS_WONT:
        case TS_DONT:
            lx->tstate = TS_DATA;
            break;
        case TS_SB:
            if (c == T_IAC)
                lx->tstate = TS_SB_IAC;
            break;
        case TS_SB_IAC:
            /* IAC IAC is a 255 inside the subnegotiation; IAC SE (or any
             * other command, which is malformed) ends it. */
            lx->tstate = c == T_IAC ? TS_SB : TS_DATA;
            break;
        }
    }
    *used = i;
    return ev;
}

/* ------------------------------------------------------------------ */

int coro__bd_split(char *line, char **argv, int max, const char **err)
{
    /* Words are rewritten in place: w never passes r. */
    char *r = line, *w = line;
    int argc = 0;
    for (;;) {
        while (*r == ' ' || *r == '\t')
            r++;
        if (*r == '\0' || (argc == 0 && *r == '#'))
            break;
        if (argc == max) {
            *err = "too many words";
            return -1;
        }
        argv[argc++] = w;
        while (*r != '\0' && *r != ' ' && *r != '\t') {
            char q = *r;
            if (q == '\'' || q == '"') {
                r++;
                while (*r != '\0' && *r != q) {
                    if (q == '"' && *r == '\\' && (r[1] == '"' || r[1] == '\\'))
                        r++;
                    *w++ = *r++;
                }
                if (*r == '\0') {
                    *err = q == '"' ? "unterminated \"" : "unterminated '";
                    return -1;
                }
                r++;
            } else if (q == '\\') {
                if (r[1] == '\0') {
                    *err = "trailing backslash";
                    return -1;
                }
                r++;
                *w++ = *r++;
            } else {
                *w++ = *r++;
            }
        }
        bool more = *r != '\0';
        if (more)
            r++; /* the separator: w is behind it now */
        *w++ = '\0';
        if (!more)
            break;
    }
    argv[argc] = NULL;
    return argc;
}

/* ------------------------------------------------------------------ */

int coro__bd_parse_i64(const char *s, int64_t *out)
{
    const char *digits = s + (*s == '-' || *s == '+');
    int base =
        digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X') ? 16 : 10;
    /* strtoll would skip spaces and take a second sign after "0x". */
    const char *first = base == 16 ? digits + 2 : digits;
    unsigned char c = (unsigned char)*first;
    if (!(base == 16 ? isxdigit(c) : isdigit(c)))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, base);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (int64_t)v;
    return 0;
}

int coro__bd_parse_double(const char *s, double *out)
{
    if (*s == '\0' || strchr(" \t\n\v\f\r", *s) != NULL)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end != '\0' || !isfinite(v) || (errno == ERANGE && v != 0))
        return -1;
    *out = v;
    return 0;
}

int coro__bd_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "on", "yes", "1"};
    static const char *const no[] = {"false", "off", "no", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

bool coro__bd_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 31 || name[0] < 'a' || name[0] > 'z')
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

bool coro__bd_file_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= 255 && name[0] != '.' &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789._+-") == n;
}

/* The errnos worth naming at a console: those a coroutine is interrupted
 * with, and those its blocking calls report. */
static const struct {
    int err;
    const char *name;
} errnos[] = {
    {EINTR, "EINTR"},
    {ECANCELED, "ECANCELED"},
    {ETIMEDOUT, "ETIMEDOUT"},
    {EPIPE, "EPIPE"},
    {ECONNRESET, "ECONNRESET"},
    {ECONNABORTED, "ECONNABORTED"},
    {ESHUTDOWN, "ESHUTDOWN"},
    {EIO, "EIO"},
    {EAGAIN, "EAGAIN"},
    {ENOMEM, "ENOMEM"},
    {EBADF, "EBADF"},
    {EPERM, "EPERM"},
    {EACCES, "EACCES"},
    {EINVAL, "EINVAL"},
    {ENOENT, "ENOENT"},
    {EEXIST, "EEXIST"},
    {EBUSY, "EBUSY"},
    {ENOSPC, "ENOSPC"},
    {EHOSTUNREACH, "EHOSTUNREACH"},
    {ENETDOWN, "ENETDOWN"},
    {EOWNERDEAD, "EOWNERDEAD"},
    {ESRCH, "ESRCH"},
};

int coro__bd_errno_of(const char *s)
{
    for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
        if (strcasecmp(s, errnos[i].name) == 0)
            return errnos[i].err;
    int64_t v;
    if (coro__bd_parse_i64(s, &v) == 0 && v >= 1 && v <= 4095)
        return (int)v;
    return -1;
}

const char *coro__bd_errno_name(int err)
{
    for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
        if (errnos[i].err == err)
            return errnos[i].name;
    return NULL;
}
