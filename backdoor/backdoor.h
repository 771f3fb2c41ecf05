/*
 * coro backdoor: a console inside a running program, reached with nc
 * or telnet over a unix socket or loopback TCP.  It lists the
 * coroutines with their state and where they wait, shows one coroutine's
 * stack, interrupts one, prints the loop's statistics, changes the latency
 * threshold and selfishness, streams the runtime's log lines, and runs the
 * commands and shows (and sets) the variables the application registers.
 * docs/backdoor.md has a transcript of every command.
 *
 * Installed as <coro/backdoor.h>; link with coro_backdoor (CMake target
 * coro::backdoor, pkg-config coro-backdoor).  It is built on coro's
 * public API only, and runs in the coroutines of the thread that started
 * it: one listener coroutine per socket, one coroutine per session.  Every
 * session waits only through coro's calls, so the console never blocks
 * the program: a client that stops reading is dropped after
 * send_timeout_sec, one that says nothing after idle_timeout_sec.
 *
 * Conventions are coro's: a call that fails returns -1 (NULL for
 * pointers) and sets errno, and has changed nothing.  Every function must
 * be called on the thread that started the backdoor.
 */
#ifndef CORO_BACKDOOR_H
#define CORO_BACKDOOR_H

#include <coro/coro.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A running backdoor.  Opaque. */
typedef struct coro_backdoor coro_backdoor_t;

/* One client's session, given to command handlers.  Opaque; valid while
 * the handler runs. */
typedef struct coro_backdoor_session coro_backdoor_session_t;

/* Options for coro_backdoor_start().  Zero means default. */
typedef struct coro_backdoor_opts {
    /* A unix socket path (at most 95 bytes: it is bound in a private
     * directory next to it, then renamed into place), created with mode
     * 0600.  A stale socket there (nobody listening) is replaced; a live
     * one fails with EADDRINUSE, anything else with EEXIST.  Removed by
     * coro_backdoor_stop() and at exit().  NULL: no unix socket. */
    const char *unix_path;
    /* A TCP address as coro_listen() takes it ("127.0.0.1:PORT",
     * "[::1]:PORT", "localhost:PORT"; numeric otherwise; port 0 picks
     * one, see coro_backdoor_tcp_addr()).  Only loopback addresses unless
     * allow_non_loopback.  A TCP client's first line must be the token.
     * NULL: no TCP. */
    const char *tcp_addr;
    /* The TCP token: 8..128 printable bytes without spaces (copied).
     * NULL: 32 random hex digits, printed with coro_print_stderr() at
     * start and given by coro_backdoor_token(). */
    const char *token;
    /* Accept any tcp_addr, not only loopback ones. */
    bool allow_non_loopback;
    /* Sessions open at once, 1..1024 (default 8).  One more is told
     * "error: too many sessions" and closed.  TCP clients that have not
     * given the token yet are not counted here: up to max_sessions of
     * them wait at once, and one more pushes out the one waiting longest,
     * so connections that never log in cannot lock the operator out. */
    int max_sessions;
    /* Seconds a session may wait for input before it is closed (default
     * 600; INFINITY: never).  Not counted while "log" streams. */
    double idle_timeout_sec;
    /* Seconds a write to a client may wait for it to read (default 10);
     * a client that stops reading for longer is dropped. */
    double send_timeout_sec;
    /* The directory commands may write files into (opened at start, kept
     * open); NULL: no command writes any file.  See
     * coro_backdoor_open_output(). */
    const char *output_dir;
    /* The first line a session sees (copied, at most 1 KiB); NULL: "coro
     * backdoor, pid N; 'help' lists the commands". */
    const char *banner;
    /* Seconds a TCP client has to send the token (default 30; INFINITY:
     * only idle_timeout_sec applies). */
    double login_timeout_sec;
} coro_backdoor_opts_t;

/*
 * Start a backdoor: listen on opts->unix_path and/or opts->tcp_addr and
 * spawn a listener coroutine for each (they run when the event loop
 * does).  Does not block; may be called before the loop runs.
 *
 * Returns the handle (owned by the caller until coro_backdoor_stop()), or
 * NULL with errno EINVAL (opts NULL, no address at all, a bad value in
 * opts, a tcp_addr that is not numeric or localhost, a "udp:" or "unix:"
 * tcp_addr, a unix path too long), EADDRNOTAVAIL (tcp_addr is not a
 * loopback address and allow_non_loopback is false), EADDRINUSE (a program
 * listens on unix_path, or on the TCP port), EEXIST (unix_path exists and is
 * not a socket: it is left alone), ENOTDIR, ENOENT, EACCES (output_dir),
 * ENOMEM, or an error of coro_listen() or coro_spawn().  A failed call leaves
 * nothing behind.
 */
CORO_API coro_backdoor_t *coro_backdoor_start(const coro_backdoor_opts_t *opts);

/*
 * Stop bd: close its listeners, remove its unix socket (if it is still
 * the one bd made), and interrupt every session with ECANCELED.  Does not
 * block: the sessions end the next time they run (run the event loop
 * until they have, as a clean shutdown does anyway), and their memory
 * goes with the last of them.  bd is invalid after the call.  May be
 * called from a command handler of bd.  0, or -1 with errno EINVAL (bd
 * NULL).  Stopping bd twice is an error the call may not detect.
 */
CORO_API int coro_backdoor_stop(coro_backdoor_t *bd);

/* The TCP address bd listens on ("127.0.0.1:41234"), owned by bd; NULL
 * with errno EINVAL (bd NULL) or ENOENT (no TCP listener). */
CORO_API const char *coro_backdoor_tcp_addr(const coro_backdoor_t *bd);

/* The unix socket path, owned by bd; NULL with errno EINVAL or ENOENT. */
CORO_API const char *coro_backdoor_unix_path(const coro_backdoor_t *bd);

/* The TCP token (given or generated), owned by bd; NULL with errno EINVAL
 * or ENOENT (no TCP listener). */
CORO_API const char *coro_backdoor_token(const coro_backdoor_t *bd);

/* ---------------------------------------------------------------------
 * Application commands
 */

/*
 * A command handler: argv[0] is the command's name, argv[1..argc) its
 * words (quotes removed), argv[argc] NULL; the strings are the session's
 * and may be changed.  ud is what was registered.  It runs in the
 * session's coroutine and may block (coro calls only); write the output
 * with coro_backdoor_printf() and coro_backdoor_write().  Return 0, or -1
 * with errno set: the session then prints "error: NAME: " and
 * strerror(errno) (write your own error line and return 0 for a better
 * message).
 */
typedef int (*coro_backdoor_cmd_fn)(coro_backdoor_session_t *s, int argc,
                                    char **argv, void *ud);

/*
 * Add a command to bd.  name: 1..31 bytes of [a-z0-9_.-] starting with a
 * letter, not a built-in or registered name; usage: the synopsis "help
 * NAME" shows (e.g. "flush [SECONDS]"); help: one line for "help".  The
 * strings are copied.  Does not block.  0, or -1 with errno EINVAL (bd,
 * name, usage, help or fn NULL, a bad name), EEXIST (the name is taken),
 * ENOMEM.
 */
CORO_API int coro_backdoor_add_command(coro_backdoor_t *bd, const char *name,
                                       const char *usage, const char *help,
                                       coro_backdoor_cmd_fn fn, void *ud);

/* ---------------------------------------------------------------------
 * Application variables: what "vars" lists, "get" shows and "set"
 * changes.  A variable is the application's storage; the console reads
 * and writes it on the loop's thread, between two coroutine switches, so
 * the program always sees a whole value.  Nothing else of the program's
 * memory is reachable from the console.
 */

/* The type of a variable, which says what ptr points to. */
typedef enum coro_backdoor_type {
    CORO_BACKDOOR_INT = 1, /* int */
    CORO_BACKDOOR_INT64,   /* int64_t */
    CORO_BACKDOOR_UINT,    /* unsigned int */
    CORO_BACKDOOR_DOUBLE,  /* double (finite values only) */
    CORO_BACKDOOR_BOOL,    /* bool: true/false, on/off, yes/no, 1/0 */
    CORO_BACKDOOR_STRING   /* char[size], NUL-terminated */
} coro_backdoor_type_t;

/* Flag of coro_backdoor_var_t: "set" refuses to change it. */
#define CORO_BACKDOOR_READONLY 0x1

/* A variable for coro_backdoor_add_var(). */
typedef struct coro_backdoor_var {
    const char *name;          /* as a command name; copied */
    const char *help;          /* one line for "vars", or NULL; copied */
    coro_backdoor_type_t type; /* what ptr points to */
    void *ptr;                 /* the storage, borrowed until removed */
    size_t size;               /* CORO_BACKDOOR_STRING: bytes at ptr */
    int flags;                 /* CORO_BACKDOOR_READONLY or 0 */
    /* Range "set" accepts for INT, INT64, UINT (both 0: the type's). */
    int64_t min, max;
    /* Range for DOUBLE (both 0: any finite value). */
    double dmin, dmax;
} coro_backdoor_var_t;

/*
 * Add a variable to bd (*var is copied; the storage is borrowed until
 * coro_backdoor_remove() or the backdoor's end).  Does not block.  0, or
 * -1 with errno EINVAL (bd or var NULL, a bad name, ptr NULL, an unknown
 * type or flag, a string of size 0, min > max, a range the type cannot
 * hold, a non-finite double bound), EEXIST (the name is taken), ENOMEM.
 */
CORO_API int coro_backdoor_add_var(coro_backdoor_t *bd,
                                   const coro_backdoor_var_t *var);

/* Remove the application command or variable called name.  0, or -1 with
 * errno EINVAL (bd or name NULL, or a built-in command), ENOENT. */
CORO_API int coro_backdoor_remove(coro_backdoor_t *bd, const char *name);

/* ---------------------------------------------------------------------
 * Writing to a session, from a command handler
 */

/*
 * Append to s's output: printf-formatted, or len bytes of buf.  "\n" goes
 * out as "\r\n" (telnet's line end).  Output is buffered and sent when
 * the command returns, or earlier when the buffer fills: then the call
 * blocks until the client has read enough, each wait for the client at
 * most send_timeout_sec.  Call it only from the handler's coroutine.
 * Returns the bytes taken (before "\r" are added and a byte 255 is
 * doubled, telnet's IAC), or -1 with errno EINVAL (s, fmt or buf NULL),
 * EPERM (not the session's coroutine), EPIPE (the client is gone, did
 * not read in time, or the send was interrupted: stop writing, the
 * session ends after the command), ENOMEM (printf: output of 512 bytes
 * or more could not be formatted for want of memory).
 */
CORO_API int coro_backdoor_printf(coro_backdoor_session_t *s, const char *fmt,
                                  ...) __attribute__((format(printf, 2, 3)));
CORO_API int coro_backdoor_vprintf(coro_backdoor_session_t *s, const char *fmt,
                                   va_list ap);
CORO_API ssize_t coro_backdoor_write(coro_backdoor_session_t *s,
                                     const void *buf, size_t len);

/* Send what s has buffered now.  Blocks like coro_backdoor_write().  0,
 * or -1 with its errors (EINVAL for s NULL, EPERM, EPIPE). */
CORO_API int coro_backdoor_flush(coro_backdoor_session_t *s);

/*
 * Create the file name inside the backdoor's output directory for a
 * command to write (what "files are written only where the application
 * allows" means): name is a plain file name (1..255 bytes of
 * [A-Za-z0-9._+-], not starting with '.'; no '/', so no way out of the
 * directory), the file must not exist yet (O_CREAT | O_EXCL, never
 * following a symbolic link), and it is created with mode 0600.  On
 * failure it also writes an "error: ..." line to s.  Does not block.
 * Returns the fd (write-only, close-on-exec; the caller owns it), or -1
 * with errno EINVAL (s or name NULL, a bad name), EPERM (the backdoor
 * has no output directory), EEXIST, or another error of openat().
 */
CORO_API int coro_backdoor_open_output(coro_backdoor_session_t *s,
                                       const char *name);

#ifdef __cplusplus
}
#endif

#endif /* CORO_BACKDOOR_H */
