/*
 * The backdoor's input parsing: pure functions over bytes and strings, no
 * I/O and no allocation, so that a fuzzer can drive them
 * (tests/fuzz/fuzz_backdoor_parse.c).
 *
 * The lexer turns the bytes a client sends (telnet, nc, socat) into lines:
 * telnet commands are taken out (and option requests refused, which keeps
 * a telnet client in its default line mode), CR LF, CR NUL, CR and LF all
 * end a line, backspace and DEL delete, other control bytes are dropped,
 * and a line longer than CORO__BD_LINE_MAX is reported once and thrown
 * away up to its end.  The splitter cuts a line into words with shell-like
 * quoting.
 */
#ifndef CORO_BACKDOOR_PARSE_INTERNAL_H
#define CORO_BACKDOOR_PARSE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest line accepted, in bytes without its end: generous for a
 * command, small enough that a session's buffers stay bounded. */
#define CORO__BD_LINE_MAX 4096

/* Most words in one command line. */
#define CORO__BD_ARGS_MAX 32

/* What coro__bd_lex() stopped for. */
enum coro__bd_event {
    CORO__BD_MORE,    /* all input consumed, no event */
    CORO__BD_LINE,    /* lx->line holds a complete line (NUL-terminated) */
    CORO__BD_TOOLONG, /* the line passed CORO__BD_LINE_MAX: its bytes up to
                         the next line end are dropped */
    CORO__BD_CANCEL,  /* ^C or telnet IP/AO/BRK: the partial line is gone */
    CORO__BD_EOF,     /* ^D or telnet EOF on an empty line: end the session */
    CORO__BD_REPLY,   /* lx->reply holds a telnet answer to send */
};

/* Lexer state.  Zero-initialised (or coro__bd_lex_init()) is ready. */
struct coro__bd_lexer {
    int tstate;   /* telnet state, TS_* in parse.c */
    bool cr;      /* the last data byte was CR: drop a LF/NUL */
    bool discard; /* inside an over-long line, up to its end */
    size_t len;   /* bytes in line, <= CORO__BD_LINE_MAX */
    char line[CORO__BD_LINE_MAX + 1]; /* the line being assembled */
    unsigned char reply[3];           /* answer for CORO__BD_REPLY */
};

void coro__bd_lex_init(struct coro__bd_lexer *lx);

/*
 * Consume bytes of in[0..n) until an event or the end of the input;
 * *used receives how many were consumed (call again with the rest).
 * After CORO__BD_LINE, lx->line is valid until the next call.
 */
enum coro__bd_event coro__bd_lex(struct coro__bd_lexer *lx,
                                 const unsigned char *in, size_t n,
                                 size_t *used);

/*
 * Split line, in place, into at most max words (argv[argc] is set to
 * NULL, so argv needs max + 1 slots).  Words are separated by spaces and
 * tabs; '...' quotes literally; "..." quotes with \" and \\ escapes; a
 * backslash outside quotes takes the next byte literally.  Returns argc
 * (0 for a blank line or a line starting with '#'), or -1 with *err set
 * to a message: an unterminated quote, a trailing backslash, too many
 * words.
 */
int coro__bd_split(char *line, char **argv, int max, const char **err);

/* Whole-string number parsers: decimal (or 0x hex for integers), no
 * leading or trailing junk, no overflow.  0, or -1 when s is not such a
 * number or out of range for the type. */
int coro__bd_parse_i64(const char *s, int64_t *out);
int coro__bd_parse_double(const char *s, double *out); /* finite only */

/* true/false, on/off, yes/no, 1/0 (case-insensitive).  0 or -1. */
int coro__bd_parse_bool(const char *s, bool *out);

/* Whether name is a valid command or variable name: 1..31 bytes of
 * [a-z0-9_.-], starting with a letter. */
bool coro__bd_name_ok(const char *name);

/* Whether name is a file name an output directory accepts: 1..255 bytes
 * of [A-Za-z0-9._+-], not starting with '.' (so never "." or "..", and
 * never a hidden file), no '/'. */
bool coro__bd_file_name_ok(const char *name);

/* The errno of a name ("ETIMEDOUT") or a number ("110", 1..4095), or -1.
 * coro__bd_errno_name() gives the name of err or NULL. */
int coro__bd_errno_of(const char *s);
const char *coro__bd_errno_name(int err);

#endif
