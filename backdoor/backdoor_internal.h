/*
 * The backdoor's internals, shared by its files:
 *   backdoor.c   start and stop, the listeners, the registry of
 *                application commands and variables
 *   session.c    a session: input, output, the token, "log"
 *   commands.c   the table of built-in commands and their handlers
 *   vars.c       "vars", "get" and "set"
 *   parse.c      the pure parsers (parse_internal.h)
 *
 * Adding a built-in command is one entry in coro__bd_builtins[]
 * (commands.c) and a handler of type coro_backdoor_cmd_fn, in its own
 * file when it is large (declare it below).
 */
#ifndef CORO_BACKDOOR_INTERNAL_H
#define CORO_BACKDOOR_INTERNAL_H

#include "backdoor.h"
#include "parse_internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A command: built-in (strings static) or registered (strings owned). */
struct coro__bd_cmd {
    const char *name;  /* what the user types */
    const char *usage; /* synopsis for "help NAME" */
    const char *help;  /* one line for "help" */
    coro_backdoor_cmd_fn fn;
    void *ud; /* passed to fn; NULL for built-ins */
};

/* The built-in commands, in the order "help" lists them. */
extern const struct coro__bd_cmd coro__bd_builtins[];
extern const size_t coro__bd_builtin_count;

/* A listening socket and its coroutine. */
struct coro__bd_listener {
    struct coro_backdoor *bd; /* the owner */
    int fd;                   /* listening socket, -1 once closed */
    coro_t *co;               /* the accept loop; NULL once it ended */
    bool tcp;                 /* sessions from here must give the token */
};

struct coro_backdoor {
    int refs;      /* the handle (until stop) + each coroutine of ours;
                      freed when it drops to 0 */
    bool stopping; /* coro_backdoor_stop() was called */
    int max_sessions;
    double idle_sec; /* read timeout of a session, 0 = none */
    double login_sec; /* read timeout until the token, 0 = none */
    double send_sec; /* write timeout of a session */
    char *token;     /* NULL without TCP */
    size_t token_len;
    int out_dirfd; /* the output directory, or -1 */
    char banner[1024 + 2];
    struct coro__bd_listener lst[2]; /* [0] unix, [1] tcp; fd -1: none */
    char unix_path[108];             /* "" without a unix socket */
    bool unix_linked;    /* unix_path is ours and still to be removed */
    char tcp_addr[64];   /* "" without TCP */
    int64_t start_ticks; /* when started, for "stats" */
    struct coro_backdoor_session *sessions; /* every session, newest first */
    int nsessions; /* logged in (unix, or TCP with the token) */
    int npending;  /* TCP, token not given yet (and not pushed out) */
    /* Bad tokens: at most TOKEN_FAILS_MAX per TOKEN_WINDOW_SEC. */
    int64_t fail_window_start; /* ticks; the window's first failure */
    int fail_count;            /* failures in the window */
    bool refusal_logged;       /* the lock-out was logged this window */
    struct coro__bd_cmd *cmds; /* application commands */
    size_t ncmds;
    coro_backdoor_var_t *vars; /* application variables (names owned) */
    size_t nvars;
};

/* Session output is buffered up to this many bytes between sends. */
#define CORO__BD_OUT_MAX (16 * 1024)

struct coro__bd_log; /* session.c: a "log" in progress */

struct coro_backdoor_session {
    coro_backdoor_t *bd;      /* holds a reference */
    coro_t *co;               /* the session's coroutine */
    int fd;                   /* the client's socket, owned */
    bool tcp;                 /* came in over TCP */
    bool pending;             /* TCP, no token yet: counted in npending */
    bool pushed_out;          /* pending, made room for a newer client */
    bool counted;             /* logged in: counted in nsessions */
    bool closing;             /* quit, ^D, EOF or stop: end after this */
    bool broken;              /* a send failed: output is dropped */
    char peer[64];            /* the client's address, for log lines */
    struct coro__bd_log *log; /* "log" running, or NULL */
    coro_t *pump;             /* the log's sending coroutine */
    struct coro_backdoor_session *next, *prev; /* in bd->sessions */
    size_t in_pos, in_len;                     /* unread part of in[] */
    unsigned char in[2048];                    /* bytes read, not yet lexed */
    size_t out_len;                            /* bytes in out[] */
    char out[CORO__BD_OUT_MAX];                /* output not yet sent */
    struct coro__bd_lexer lx;                  /* the line being read */
};

/* backdoor.c */
void coro__bd_unref(coro_backdoor_t *bd);
/* The command called name: built-in first, then the application's. */
const struct coro__bd_cmd *coro__bd_find_cmd(const coro_backdoor_t *bd,
                                             const char *name);
/* Whether co is one of bd's own coroutines (listener, session, log). */
bool coro__bd_owns(const coro_backdoor_t *bd, const coro_t *co);
/* Whether the console may take another TCP session now (bad tokens). */
bool coro__bd_tcp_locked(coro_backdoor_t *bd, double *wait_sec);
/* Count a bad token; logged. */
void coro__bd_tcp_failed(coro_backdoor_t *bd, const char *peer);

/* session.c */
/* The session's coroutine: greets, checks the token, runs commands. */
int coro__bd_session_main(void *arg);
/* Bytes to the output as they are ("\r\n" and IAC doubling are done by
 * coro_backdoor_write()); 0 or -1 like it. */
int coro__bd_out_raw(coro_backdoor_session_t *s, const void *p, size_t n);
/* "error: " and the formatted message, as a line. */
void coro__bd_error(coro_backdoor_session_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* commands.c: run one line (split, look up, call); prints errors. */
void coro__bd_run_line(coro_backdoor_session_t *s, char *line);
/* "error: usage: ..." for the command called name; returns 0, what a
 * handler returns after it. */
int coro__bd_usage(coro_backdoor_session_t *s, const char *name);
/* A word of the user's to show back in a message: printable ASCII, cut
 * at 40 bytes (buf: at least 48). */
const char *coro__bd_shown(const char *w, char *buf, size_t len);

/* Handlers of built-in commands that live outside commands.c. */
int coro__bd_cmd_profile(coro_backdoor_session_t *s, int argc, char **argv,
                         void *ud);
int coro__bd_cmd_log(coro_backdoor_session_t *s, int argc, char **argv,
                     void *ud);
int coro__bd_cmd_vars(coro_backdoor_session_t *s, int argc, char **argv,
                      void *ud);
int coro__bd_cmd_get(coro_backdoor_session_t *s, int argc, char **argv,
                     void *ud);
int coro__bd_cmd_set(coro_backdoor_session_t *s, int argc, char **argv,
                     void *ud);
/* vars.c: check a variable for coro_backdoor_add_var(). */
bool coro__bd_var_ok(const coro_backdoor_var_t *v);

#endif
