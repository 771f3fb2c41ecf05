/*
 * coro: Shrapnel-style green threads for C.
 *
 * One OS thread runs many cooperative coroutines, each on its own stack.
 * A coroutine runs until it blocks (sleep, join, a wait) or yields; the
 * event loop then runs the next runnable one, fires timers and waits for
 * the next event.  All scheduler state belongs to the calling OS thread:
 * every function below acts on the scheduler of the thread that calls it,
 * which is created on first use.
 *
 * Conventions (the same for every function):
 * - A call that fails returns -1 (NULL for pointers) and sets errno; a
 *   failed call has changed nothing.
 * - "Blocks" means the call may suspend the calling coroutine.  Every
 *   blocking call obeys coro_with_timeout() deadlines (it fails with
 *   ETIMEDOUT once one has passed) and coro_interrupt() (it fails with the
 *   errno given), and fails with EPERM when called outside a coroutine.
 * - Times are in seconds as double (relative "timeout") or in ticks of
 *   <tsc_time/tsc_time.h> (absolute "deadline").
 * - A function taking a coro_t * fails with EINVAL for NULL or a pointer
 *   that is not a coroutine, and with ESRCH for a coroutine that has ended
 *   and been released (while its stack was not yet reused).
 */
#ifndef CORO_CORO_H
#define CORO_CORO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef CORO_API
#define CORO_API __attribute__((visibility("default")))
#endif

/* A coroutine.  Opaque; see coro_spawn() for how long a pointer is valid. */
typedef struct coro coro_t;

/*
 * A coroutine's function.  Its return value is the coroutine's status:
 * >= 0 is success; a negative value is failure, by convention -1 with
 * errno set (the errno is kept with the status, see coro_join()).
 */
typedef int (*coro_fn)(void *arg);

/* The wait site recorded by a blocking call, shown by coro_where(). */
typedef struct coro_site {
    const char *file; /* __FILE__ of the call, or NULL when unknown */
    int line;         /* __LINE__ of the call */
    const char *func; /* __func__ of the caller */
} coro_site_t;

/* Options for coro_spawn_opts() and coro_new().  Zero means default. */
typedef struct coro_opts {
    const char *name;  /* copied, truncated to CORO_NAME_MAX bytes */
    size_t stack_size; /* bytes; 0 = coro_set_default_stack_size() */
    bool joinable;     /* keep the status after the end until joined */
} coro_opts_t;

/* Longest name kept, in bytes, not counting the terminating NUL. */
#define CORO_NAME_MAX 31

/* Coroutine states, as reported by coro_state() and coro_info(). */
typedef enum coro_state {
    CORO_NEW = 1,      /* created by coro_new(), not started */
    CORO_RUNNABLE = 2, /* in the run queue */
    CORO_RUNNING = 3,  /* the current coroutine */
    CORO_WAITING = 4,  /* parked in a blocking call */
    CORO_DEAD = 5      /* ended; only joinable coroutines are seen so */
} coro_state_t;

/* ---------------------------------------------------------------------
 * Creating coroutines
 */

/*
 * Create a coroutine running fn(arg) and make it runnable: it starts the
 * next time the event loop (or a yielding coroutine) reaches it.  Does not
 * block; may be called before the event loop runs.
 *
 * The returned pointer is borrowed.  It stays valid while the coroutine is
 * alive; for a joinable coroutine (opts->joinable) until it has been
 * joined.  Use the numeric id and coro_by_id() to refer to a coroutine
 * whose lifetime you do not control.
 *
 * Returns the coroutine, or NULL with errno EINVAL (fn is NULL, or
 * stack_size is below CORO_STACK_MIN or above 1 GiB), ENOMEM (no memory or
 * mapping for a stack, or more than 16 distinct stack sizes in use),
 * EAGAIN (every id is in use).
 */
CORO_API coro_t *coro_spawn(coro_fn fn, void *arg, const char *name);
CORO_API coro_t *coro_spawn_opts(coro_fn fn, void *arg,
                                 const coro_opts_t *opts);

/* Smallest stack accepted, in bytes. */
#define CORO_STACK_MIN (16 * 1024)

/*
 * Create a coroutine without starting it (state CORO_NEW); coro_start()
 * makes it runnable.  Same arguments and errors as coro_spawn_opts();
 * opts may be NULL.
 */
CORO_API coro_t *coro_new(coro_fn fn, void *arg, const coro_opts_t *opts);

/* Start a coroutine made by coro_new().  0, or -1 with errno EINVAL (co is
 * NULL or not a coroutine), EALREADY (already started), ESRCH (ended). */
CORO_API int coro_start(coro_t *co);

/*
 * Default stack size for coroutines spawned from now on by this thread's
 * scheduler, rounded up to a page multiple.  Stacks are mapped with a
 * guard page below them while the process's mapping budget allows, and
 * protected by a canary checked at every switch beyond it.  Returns the
 * previous size, or 0 with errno EINVAL when size is out of range (see
 * coro_spawn()).
 */
CORO_API size_t coro_set_default_stack_size(size_t size);

/* ---------------------------------------------------------------------
 * Identity and introspection
 */

/* The running coroutine, or NULL outside any coroutine. */
CORO_API coro_t *coro_current(void);

/* The coroutine's id (>= 1), or -1 with errno EINVAL if co is NULL or not
 * a coroutine.  Ids count up from 1, skipping ids still in use, and wrap
 * at INT32_MAX. */
CORO_API int coro_id(const coro_t *co);

/* The live (or dead, unjoined) coroutine with this id, or NULL with errno
 * ESRCH. */
CORO_API coro_t *coro_by_id(int id);

/* The coroutine's name ("" if none was given); NULL with errno EINVAL.
 * The string is owned by the coroutine and valid as long as it is. */
CORO_API const char *coro_name(const coro_t *co);

/* Rename a coroutine (copied, truncated).  0, or -1 with errno EINVAL. */
CORO_API int coro_set_name(coro_t *co, const char *name);

/* The coroutine's state, or -1 with errno EINVAL. */
CORO_API int coro_state(const coro_t *co);

/* A state's name: "new", "runnable", "running", "waiting", "dead", or "?"
 * for a value that is none of them.  Static storage; never NULL. */
CORO_API const char *coro_state_name(int state);

/* A snapshot of one coroutine, filled by coro_info(). */
typedef struct coro_info {
    int id;                      /* see coro_id() */
    char name[CORO_NAME_MAX + 1];
    coro_state_t state;          /* see coro_state_t */
    const char *wait_what;       /* what it waits for ("sleep", "join"..)
                                    or NULL when not waiting */
    coro_site_t wait_site;       /* where it waits (file NULL if unknown) */
    const void *wait_addr;       /* return address of the blocking call */
    uint64_t switches;           /* times it was switched in */
    int64_t run_ticks;           /* total ticks it ran */
    int64_t max_slice_ticks;     /* longest single run slice, in ticks */
    size_t stack_size;           /* usable stack, bytes */
    bool stack_guarded;          /* guard page (true) or canary (false) */
    int max_selfish_acts;        /* see coro_set_max_selfish_acts() */
    uint64_t selfish_yields;     /* yields forced by selfishness */
} coro_info_t;

/* Fill *out for co.  0, or -1 with errno EINVAL. */
CORO_API int coro_info(const coro_t *co, coro_info_t *out);

/*
 * Write where co waits into buf, e.g. "sleep at server.c:42 in handle()
 * (waiting)", always NUL-terminated.  Returns the length it needed, like
 * snprintf(), or -1 with errno EINVAL.
 */
CORO_API int coro_where(const coro_t *co, char *buf, size_t len);

/* Write one line per coroutine ("#id 'name': where") to fd.  Returns the
 * number of coroutines listed; write errors are ignored. */
CORO_API int coro_where_all(int fd);

/*
 * Call fn(co, arg) for every coroutine of this thread, in id order of
 * creation, stopping early when fn returns non-zero (that value is then
 * returned).  fn must not spawn, end or join coroutines.  Returns 0, the
 * non-zero value of fn, or -1 with errno EINVAL when fn is NULL.
 */
CORO_API int coro_foreach(int (*fn)(coro_t *co, void *arg), void *arg);

/* Number of coroutines that exist (alive, or dead and unjoined). */
CORO_API size_t coro_count(void);

/* ---------------------------------------------------------------------
 * Running, yielding, ending, joining
 */

/*
 * Let every other runnable coroutine run, then continue.  Blocks; returns
 * 0, or -1 with errno EPERM (outside a coroutine), ETIMEDOUT, or the errno
 * of an interrupt.
 */
CORO_API int coro_yield(void);

/* End the calling coroutine with status (as if its function returned it).
 * Outside a coroutine it does nothing and returns (errno EPERM). */
CORO_API void coro_exit(int status);

/*
 * Wait until co has ended and collect its status: *status (if not NULL)
 * receives what its function returned, *err (if not NULL) the errno it
 * failed with (0 when status >= 0).  Blocks.  Any number of coroutines
 * may wait for one coroutine at once; all get the status.  A coroutine is
 * reaped (its handle becomes invalid) as it ends if anyone was waiting for
 * it or it is not joinable; a joinable coroutine that ends unwaited-for is
 * kept, state CORO_DEAD, until one coro_join() collects its status.
 *
 * Returns 0, or -1 with errno EINVAL (co is NULL or not a coroutine),
 * ESRCH (co has ended and was not joinable, or was already joined),
 * EDEADLK (co is the caller), EPERM, ETIMEDOUT, or an interrupt's errno.
 * A coroutine that was never started is waited for like any other.  An
 * ended joinable coroutine is collected without waiting, also outside
 * coroutines.  If the status has arrived when an interrupt comes, the join
 * still succeeds and the interrupt fails the next blocking call.
 */
CORO_API int coro_join(coro_t *co, int *status, int *err);

/*
 * Make co's current or next blocking call fail with -1 and errno err
 * (err > 0; ECANCELED, EINTR and ETIMEDOUT are usual).  If co is waiting,
 * it wakes at once; if it is runnable, the interrupt replaces the cause of
 * its wake-up; if it is running or not started, its next blocking call
 * fails.  A later interrupt replaces an earlier undelivered one.
 * Returns 0, or -1 with errno EINVAL (co NULL, not a coroutine, err <= 0),
 * ESRCH (co has ended).
 */
CORO_API int coro_interrupt(coro_t *co, int err);

/* ---------------------------------------------------------------------
 * The event loop
 */

/*
 * Run the event loop on the calling thread until coro_set_exit() is called,
 * SIGINT or SIGTERM arrives (see "Signals"), or no coroutine (and no fd
 * handler, see coro_set_handler()) is left.  Returns the exit code given
 * to coro_set_exit(), 128 + signo after SIGINT (130) or SIGTERM (143), or
 * 0 when the loop ran out of coroutines.  May be called again after it
 * returns: the remaining coroutines continue.  Returns -1 with errno EPERM
 * when called from a coroutine or while the loop already runs, or EDEADLK
 * when every coroutine waits and nothing (no timer) can wake any of them.
 */
CORO_API int coro_event_loop(void);

/* Ask the event loop to return code after the current pass.  Callable from
 * anywhere on the loop's thread; called while the loop is not running, it
 * makes the next coro_event_loop() return code at once. */
CORO_API void coro_set_exit(int code);

/* Whether this thread's event loop is running. */
CORO_API bool coro_is_running(void);

/*
 * Free this thread's scheduler: every cached stack, slab and table, and
 * its offload pool (joining the threads after the jobs they still run);
 * stop watching signals (masks and dispositions as before) and close the
 * fds the runtime made for itself.  The fini hook (coro_set_hooks()), if
 * any, runs first.  The next call of any function creates a fresh one.
 * Returns 0, or -1 with errno EBUSY when coroutines still exist or the
 * loop is running (the fini hook is not called).
 */
CORO_API int coro_fini(void);

/* Counters of this thread's scheduler, for tests and consoles. */
typedef struct coro_stats {
    size_t coroutines;      /* that exist (see coro_count()) */
    size_t runnable;        /* in the run queue */
    size_t timers;          /* pending timers */
    size_t stacks_in_use;   /* stacks held by coroutines */
    size_t stacks_cached;   /* free stacks kept resident for reuse */
    size_t stacks_guarded;  /* stack slots with a guard page, used or not
                               (slabs are mapped ahead of need; each guard
                               is a kernel mapping) */
    uint64_t switches;      /* coroutine switch-ins since creation */
    uint64_t loop_passes;   /* event loop passes since creation */
    size_t fds_watched;     /* application fds registered with the poller */
    size_t fd_waiters;      /* coroutines waiting for an fd */
    uint64_t io_events;     /* events the poller has reported */
} coro_stats_t;

/* Fill *out.  0, or -1 with errno EINVAL. */
CORO_API int coro_stats(coro_stats_t *out);

/* ---------------------------------------------------------------------
 * Time, sleeping, deadlines
 */

/* The current time in ticks of <tsc_time/tsc_time.h>, freshly read. */
CORO_API int64_t coro_now(void);

/*
 * Sleep for sec seconds (<= 0 just yields to the others).  Blocks;
 * returns 0, or -1 with errno EPERM, ETIMEDOUT (a coro_with_timeout()
 * deadline passed first), an interrupt's errno, or EINVAL (sec is NaN).
 */
CORO_API int coro_sleep(double sec);

/* Sleep until the tick count deadline.  As coro_sleep(). */
CORO_API int coro_sleep_until(int64_t deadline);

/*
 * Call fn(arg) with a deadline timeout_sec seconds from now (negative is
 * treated as 0).  While the deadline has passed, every blocking call made
 * inside fn fails at once with ETIMEDOUT, until fn returns.  Deadlines nest:
 * the nearest one applies.
 *
 * Returns what fn returned, unless a deadline was hit inside fn:
 * -1 with errno ETIMEDOUT if it was this call's own deadline, or -1 with
 * errno ECANCELED if it was only an enclosing call's deadline (that call
 * then returns ETIMEDOUT).  A deadline that passes while fn runs without
 * blocking is not noticed, like Shrapnel's.  Also -1 with errno EINVAL (fn
 * NULL or timeout NaN) or EPERM (outside a coroutine).  Allocates nothing.
 */
CORO_API int coro_with_timeout(double timeout_sec, int (*fn)(void *arg),
                               void *arg);

/* As coro_with_timeout() with an absolute deadline in ticks. */
CORO_API int coro_with_deadline(int64_t deadline, int (*fn)(void *arg),
                                void *arg);

/*
 * Run cleanup fn(arg) after a deadline has passed: inside fn, enclosing
 * deadlines and undelivered interrupts are set aside and a fresh deadline
 * grace_sec seconds from now applies instead, so fn can still block (send
 * a goodbye, flush a log) for a bounded time.  An interrupt that arrives
 * during fn still interrupts it.  Returns like coro_with_timeout() for the
 * grace deadline; enclosing deadlines apply again afterwards.
 */
CORO_API int coro_with_grace(double grace_sec, int (*fn)(void *arg),
                             void *arg);

/* Seconds left until the nearest deadline that applies to the caller
 * (negative once passed), or INFINITY when there is none.  Outside a
 * coroutine returns INFINITY. */
CORO_API double coro_time_left(void);

/* ---------------------------------------------------------------------
 * File descriptors and the poller
 *
 * The event loop waits for fds through one poller (epoll on Linux, kqueue
 * on the BSDs and macOS; coro_poller_name() says which).  An fd is
 * registered the first time a coroutine waits on it and stays registered
 * for its life, edge-triggered; the runtime remembers what each edge
 * reported, so a wait on an fd known to be ready costs no system call.
 *
 * An fd the runtime has seen must be closed with coro_close(), or
 * announced with coro_fd_forget() before close(): otherwise a new file
 * that gets the same number may inherit a stale registration and never
 * be reported ready.  fds created by coro's own calls (sockets, pipes,
 * accept) are checked for this and need nothing.
 *
 * Several coroutines may wait on the same fd, in either direction: each
 * readiness edge wakes every waiter it concerns, in the order they began
 * waiting, and each retries its operation (one that finds nothing to do
 * waits again).  So all are served; none fails with EBUSY.
 *
 * After fork(), the child gets a fresh poller of its own the first time
 * it waits: registrations inherited from the parent are dropped, and only
 * fds someone still waits on are registered again.
 */

/* Event bits, as given to and returned by coro_wait_fd() and handlers. */
#define CORO_READABLE 0x1 /* data to read, a connection to accept, EOF */
#define CORO_WRITABLE 0x2 /* room to write */
#define CORO_HANGUP 0x4   /* (returned only) the peer hung up */
#define CORO_FDERROR 0x8  /* (returned only) an error is pending on the fd */

/*
 * Wait until fd is readable or writable, as events (CORO_READABLE,
 * CORO_WRITABLE or both) asks.  Blocks.  Returns at once, without a system
 * call, when an edge since the last wait said the fd is ready; otherwise
 * looks once (poll) and parks until the next edge.  Level-triggered in
 * effect: data left unread is reported again.  The fd's default timeouts
 * (coro_fd_set_timeout()) apply.
 *
 * Returns the bits that ended the wait (those of events that are ready,
 * plus CORO_HANGUP or CORO_FDERROR when the peer hung up or an error is
 * pending: then the next operation on the fd tells which), or -1 with
 * errno EINVAL (events is 0 or has other bits), EBADF (fd negative, not
 * open, or closed with coro_close() while waiting), ETIMEDOUT (a deadline
 * or the fd's timeout passed), EPERM, ENOMEM, ENOSPC (the kernel's limit of
 * watched fds), or an interrupt's errno.  Regular files are always ready.
 */
CORO_API int coro_wait_fd(int fd, int events);

/* coro_wait_fd(fd, CORO_READABLE), returning 0 instead of the bits. */
CORO_API int coro_wait_readable(int fd);

/* coro_wait_fd(fd, CORO_WRITABLE), returning 0 instead of the bits. */
CORO_API int coro_wait_writable(int fd);

/*
 * Set fd's default timeouts, in seconds, for waits to read (read_sec) and
 * to write (write_sec): a wait for fd that lasts longer fails with
 * ETIMEDOUT.  0 (or infinity) means none, the default.  They apply to
 * every coroutine waiting on fd, through coro_wait_fd() and coro's socket
 * calls, and last until the fd is closed with coro_close() or forgotten.
 * 0, or -1 with errno EBADF (fd < 0), EINVAL (negative or NaN), ENOMEM.
 */
CORO_API int coro_fd_set_timeout(int fd, double read_sec, double write_sec);

/*
 * Forget everything the runtime knows about fd (call it before closing fd
 * with close(2) or handing it to code that does): waiters fail with EBADF,
 * a handler is removed, the registration is dropped.  Does not close fd.
 * 0, or -1 with errno EBADF (fd < 0).
 */
CORO_API int coro_fd_forget(int fd);

/*
 * Close fd: every coroutine waiting on it wakes with EBADF, its handler
 * and timeouts go, then close(2).  The fd is closed even when close(2)
 * reports EINTR (which is then not an error).  0, or -1 with errno
 * EBADF (fd < 0, not open, or one of the runtime's own fds) or EIO.
 */
CORO_API int coro_close(int fd);

/* Flag for coro_set_handler(): remove the handler after it fires once. */
#define CORO_HANDLER_ONESHOT 0x1

/*
 * Run fn(fd, events, arg) in a new coroutine each time fd becomes ready as
 * events asks (CORO_READABLE, CORO_WRITABLE or both), like Shrapnel's
 * set_handler, on every platform.  The events passed to fn are those that
 * fired (plus CORO_HANGUP/CORO_FDERROR).  If fd is ready already, fn runs
 * once right away.  Edge-triggered: fn should consume what made the fd
 * ready (read to EAGAIN), or it is not called again until new data comes.
 * Replaces an earlier handler of fd.  A handler keeps the event loop
 * running (it never reports EDEADLK while one is installed); coroutines
 * may wait on fd too.  Does not block.  0, or -1 with errno EBADF, EINVAL
 * (fn NULL, bad events or flags), ENOMEM, ENOSPC.  An event that finds no
 * memory for its coroutine is reported on stderr and lost.
 */
CORO_API int coro_set_handler(int fd, int events,
                              void (*fn)(int fd, int events, void *arg),
                              void *arg, int flags);

/* Remove fd's handler.  0, or -1 with errno ENOENT (none) or EBADF. */
CORO_API int coro_clear_handler(int fd);

/* The poller backend: "epoll" or "kqueue". */
CORO_API const char *coro_poller_name(void);

/* ---------------------------------------------------------------------
 * Sockets
 *
 * Calls over non-blocking fds: each tries its system call first and waits
 * for the fd only when the call would block, so a coroutine writes plain
 * sequential code (read a request, write a reply) while the thread serves
 * thousands of connections.  A call that waits obeys deadlines, interrupts
 * and the fd's default timeouts (coro_fd_set_timeout(): each wait for the
 * fd, not the whole call, is bounded by it), and fails with EBADF when the
 * fd is closed with coro_close() meanwhile.  Outside a coroutine, calls
 * that may wait fail with EPERM before doing anything; calls marked "does
 * not block" work anywhere.  coro_where() shows the call's name ("read",
 * "accept"...) and its return address (there are no _at variants).
 *
 * Readiness is remembered per fd: after a read or write that moved fewer
 * bytes than asked (or saw EAGAIN), the next call on that direction waits
 * for the poller's next edge instead of trying a call that would fail, so
 * a keep-alive request costs one read, one write and a share of one
 * epoll_wait.
 *
 * The first call on an fd coro did not create looks at it once: whether
 * it is a socket, and O_NONBLOCK is set on it if missing (never let a
 * call block the thread; note that this changes the open file
 * description, which other processes may share).  fds from coro_socket(),
 * coro_socketpair(), coro_accept() and the helpers are non-blocking and
 * close-on-exec already.
 *
 * Selfishness: a call that succeeds without waiting (read, write, readv,
 * writev, recv_exact, send_all, recvfrom, sendto, sendfile, accept; each
 * system call of the looping ones) is a selfish act.  After
 * max_selfish_acts of them in a row (default 4, see coro_set_selfishness()
 * and coro_set_max_selfish_acts()) the call yields to the back of the run
 * queue before it returns, so a busy connection cannot starve the others.
 * A call that had to wait starts the count again.  connect, accept_many
 * and shutdown do not count.
 *
 * SIGPIPE never kills the process: writes to sockets pass MSG_NOSIGNAL
 * (SO_NOSIGPIPE where that flag does not exist), and the first write to a
 * non-socket (a pipe) or coro_sendfile() sets SIGPIPE to SIG_IGN if its
 * disposition is still the default.  A handler you installed stays; the
 * writer then gets EPIPE.  Commands of coro_cmd_spawn() get SIG_DFL back;
 * programs you fork and exec yourself inherit SIG_IGN.
 *
 * Bad arguments: a negative fd fails with EBADF, as does a closed one (the
 * kernel says so); a NULL buffer (or iovec, or iov_base) with a non-zero
 * length fails with EINVAL before any system call; other bad pointers get
 * the kernel's EFAULT; a length above SSIZE_MAX is EINVAL; a zero length
 * returns 0 at once without a system call or a wait, except in
 * coro_recvfrom() and coro_sendto(), where an empty datagram is a
 * message.
 *
 * Addresses for coro_listen(), coro_dial() and coro_addr_parse() are
 * strings, as in Go:
 *   "1.2.3.4:80", "[::1]:80", "[fe80::1%eth0]:80"  TCP over IPv4 / IPv6
 *   ":80"                       all IPv4 interfaces (dial: 127.0.0.1)
 *   "[::]:80"                   all IPv6 interfaces (and IPv4 as the system
 *                               decides, IPV6_V6ONLY is left alone)
 *   "localhost:80", "host:80"   a host name (coro_listen() and coro_dial()
 *                               only, see below)
 *   "tcp:..." "udp:..."         an explicit protocol (tcp is the default)
 *   "unix:/path/sock"           a unix stream socket (path shorter than
 *                               sun_path, 108 bytes on Linux)
 * Ports are decimal, 0..65535 (0: any free port).  Host names are looked
 * up with coro_getaddrinfo() on the offload pool, blocking only the
 * calling coroutine (outside coroutines, with getaddrinfo(3)); coro_dial()
 * tries the addresses of a name in turn.  A listener on "localhost" is
 * always 127.0.0.1.  A name that does not resolve fails with ENOENT, a
 * temporary resolver failure with EAGAIN.
 */

/* Create a socket as socket(2), non-blocking and close-on-exec (waiters
 * still parked on an old file with the same number wake with EBADF).  Does
 * not block.  The fd, or -1 with errno from socket(2) (EAFNOSUPPORT,
 * EINVAL, EPROTONOSUPPORT, EMFILE, ENFILE, ENOMEM...). */
CORO_API int coro_socket(int domain, int type, int protocol);

/* A connected pair, as socketpair(2), non-blocking and close-on-exec.  Does
 * not block.  0, or -1 with errno EINVAL (sv NULL) or from socketpair(2). */
CORO_API int coro_socketpair(int domain, int type, int protocol, int sv[2]);

/*
 * A listening socket on addr (see above): SO_REUSEADDR on TCP, then bind
 * and listen(backlog) (backlog <= 0: SOMAXCONN).  A "udp:" address gives a
 * bound datagram socket, backlog unused.  A unix path must not exist yet
 * (remove a stale one first).  Does not block for numeric addresses (a
 * host name is looked up, see above).  The fd, or -1 with errno EINVAL
 * (addr NULL or malformed), ENOENT or EAGAIN (a name that does not
 * resolve), or from socket(2), bind(2), listen(2) (EADDRINUSE, EACCES...).
 */
CORO_API int coro_listen(const char *addr, int backlog);

/*
 * A socket connected to addr (see above) with coro_connect().  Blocks.
 * The fd, or -1 with errno EINVAL, ENOENT, EAGAIN (as coro_listen()), EPERM,
 * ETIMEDOUT, an interrupt's errno, or the connect failure (ECONNREFUSED,
 * ENOENT for a unix path that does not exist, EAGAIN for a unix listener
 * whose backlog is full...).  On failure no fd is left open.
 */
CORO_API int coro_dial(const char *addr);

/*
 * Parse a numeric address string (see above; no host names, a "unix:"
 * path is accepted, the protocol prefix ignored) into *out and *len.  An
 * empty host is the "any" address.  Does not block.  0, or -1 with errno
 * EINVAL (NULL argument, malformed, a name, path too long).
 */
CORO_API int coro_addr_parse(const char *addr, struct sockaddr_storage *out,
                             socklen_t *len);

/*
 * Write sa as a string coro_addr_parse() reads back ("127.0.0.1:80",
 * "[::1]:80", "unix:/path"; "unix:" for an unnamed socket) into buf, always
 * NUL-terminated when size > 0.  Returns the length it needed, like
 * snprintf(), or -1 with errno EINVAL (sa NULL, len too short for its
 * family) or EAFNOSUPPORT (another family).
 */
CORO_API int coro_addr_format(const struct sockaddr *sa, socklen_t len,
                              char *buf, size_t size);

/*
 * Accept a connection on listening socket lfd; the new fd is non-blocking
 * and close-on-exec.  addr/addrlen as for accept(2) (both may be NULL).
 * Blocks while none is waiting.  ECONNABORTED and EPROTO (a connection
 * that died in the queue) are retried.  The new fd, or -1 with errno
 * EBADF, EINVAL (lfd not listening), ENOTSOCK, EPERM, ETIMEDOUT, an
 * interrupt's errno, EMFILE/ENFILE/ENOBUFS/ENOMEM (the connection stays
 * queued and lfd stays ready: call again once fds are free).
 */
CORO_API int coro_accept(int lfd, struct sockaddr *addr, socklen_t *addrlen);

/*
 * Accept up to max connections: waits (blocks) only for the first, then
 * takes what is queued until the queue is empty or max are taken.  fds[]
 * receives them.  Not a selfish act.  The number accepted (1..max), or -1
 * with errno as coro_accept(), or EINVAL (fds NULL or max < 1).  When fds
 * run out after at least one was accepted, those are returned.
 */
CORO_API int coro_accept_many(int lfd, int *fds, int max);

/*
 * Connect socket fd to addr; blocks until the connection is made or fails
 * (non-blocking connect, a wait for writability, then SO_ERROR).  Bounded
 * by deadlines and by fd's write timeout.  0, or -1 with errno
 * ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, ETIMEDOUT (a deadline, the
 * fd's write timeout or the kernel's own), EAGAIN (a unix listener's
 * backlog is full), EINVAL (addr NULL), EBADF, EPERM, an interrupt's errno,
 * or another connect(2) error.  After a failure the socket's state is
 * unspecified: close it.
 */
CORO_API int coro_connect(int fd, const struct sockaddr *addr, socklen_t len);

/*
 * Read up to n bytes, as read(2), but blocking the coroutine instead of
 * failing with EAGAIN.  Returns the count (1..n), 0 at end of file (or
 * when n is 0), or -1 with errno EBADF, EINVAL, EFAULT, ECONNRESET,
 * ETIMEDOUT, EPERM, an interrupt's errno, or another read(2) error.
 */
CORO_API ssize_t coro_read(int fd, void *buf, size_t n);

/*
 * Write up to n bytes with one system call (send(2) with MSG_NOSIGNAL on
 * a socket), blocking while none fits.  Returns the count written (1..n;
 * may be short, see coro_send_all()), 0 when n is 0, or -1 with errno
 * EPIPE or ECONNRESET (the peer is gone), EBADF, EINVAL, EFAULT,
 * ETIMEDOUT, EPERM, an interrupt's errno, or another write error.
 */
CORO_API ssize_t coro_write(int fd, const void *buf, size_t n);

/* readv(2) with coro_read()'s behaviour.  iovcnt 0..IOV_MAX (EINVAL
 * otherwise); returns 0 at once when the iovecs hold no bytes. */
CORO_API ssize_t coro_readv(int fd, const struct iovec *iov, int iovcnt);

/* writev(2) (sendmsg(2) on a socket) with coro_write()'s behaviour: one
 * system call, may be short. */
CORO_API ssize_t coro_writev(int fd, const struct iovec *iov, int iovcnt);

/*
 * Read exactly n bytes into buf, waiting as long as it takes.  Returns n;
 * or fewer (0..n-1) only when the stream ended first: the bytes that
 * arrived are in buf and errno is left alone.  -1 with errno as
 * coro_read() on an error, a deadline or an interrupt: bytes read before
 * it are in buf but their count is lost, so treat the stream as broken.
 */
CORO_API ssize_t coro_recv_exact(int fd, void *buf, size_t n);

/*
 * Write all n bytes of buf, resuming after short writes.  Returns n, or -1
 * with errno as coro_write(); after -1 an unknown part of buf was sent, so
 * treat the stream as broken (a deadline, the peer gone).
 */
CORO_API ssize_t coro_send_all(int fd, const void *buf, size_t n);

/* coro_send_all() for the bytes of iovcnt iovecs (0..IOV_MAX), resuming
 * mid-iovec; *iov is not changed.  Returns the total or -1. */
CORO_API ssize_t coro_send_allv(int fd, const struct iovec *iov, int iovcnt);

/*
 * Receive one datagram (or stream data) as recvfrom(2) with flags, blocking
 * while none is queued.  from/fromlen may be NULL.  n may be 0 (buf NULL):
 * a datagram is still consumed.  Returns the count, or -1 with errno as
 * coro_read(), or EINVAL (from without fromlen).
 */
CORO_API ssize_t coro_recvfrom(int fd, void *buf, size_t n, int flags,
                               struct sockaddr *from, socklen_t *fromlen);

/*
 * Send one datagram (or stream data) as sendto(2) with flags |
 * MSG_NOSIGNAL, blocking while the socket buffer is full.  to may be NULL
 * on a connected socket.  n may be 0 (an empty datagram).  Returns the
 * count, or -1 with errno as coro_write(), or EMSGSIZE, EDESTADDRREQ,
 * ECONNREFUSED (an earlier datagram was refused).
 */
CORO_API ssize_t coro_sendto(int fd, const void *buf, size_t n, int flags,
                             const struct sockaddr *to, socklen_t tolen);

/*
 * Send count bytes of file in_fd to out_fd (a socket or pipe), from
 * *offset (advanced past what was sent) or, when offset is NULL, from
 * in_fd's file position (advanced).  Blocks while out_fd is full.  Returns
 * count, or fewer when the file ended first, or -1 with errno EBADF,
 * EINVAL, EPIPE, ECONNRESET, EIO, ETIMEDOUT, EPERM, an interrupt's errno;
 * after -1 part of it may have been sent (*offset, when given, has
 * advanced past it).
 */
CORO_API ssize_t coro_sendfile(int out_fd, int in_fd, off_t *offset,
                               size_t count);

/* shutdown(2).  Does not block.  0, or -1 with errno EBADF, EINVAL,
 * ENOTCONN, ENOTSOCK. */
CORO_API int coro_shutdown(int fd, int how);

/* ---------------------------------------------------------------------
 * Running functions in parallel
 */

/* One function for coro_in_parallel(): fn and arg in, status and err out. */
typedef struct coro_task {
    coro_fn fn;  /* in: the function */
    void *arg;   /* in: its argument */
    int status;  /* out: what fn returned */
    int err;     /* out: its errno if status < 0, else 0 */
} coro_task_t;

/*
 * Run every task in its own coroutine and wait for all of them.  Blocks.
 * Returns the number of tasks that failed (status < 0), 0 when all
 * succeeded.  If the caller's deadline passes or it is interrupted while
 * waiting, every task still running is interrupted with ECANCELED and
 * reaped before this returns -1 with errno ETIMEDOUT or the interrupt's
 * errno: nothing is left running.  Also -1 with errno EINVAL (tasks NULL
 * with n > 0, or a task without fn), ENOMEM, EPERM.  On ENOMEM no task ran.
 */
CORO_API int coro_in_parallel(coro_task_t *tasks, size_t n);

/* ---------------------------------------------------------------------
 * Selfishness: fairness between coroutines whose calls need not block.
 *
 * A call that could block (a socket read, write or accept) but succeeds
 * at once is a "selfish act": the coroutine keeps the CPU.  After
 * max_selfish_acts of them in a row, the call yields to the back of the
 * run queue before it returns, so a busy connection cannot starve the
 * others.  A call that has to wait refills the count.
 */

/*
 * Set max_selfish_acts for coroutines this thread's scheduler creates from
 * now on (1..32768; default 4).  Existing coroutines keep theirs.  Does
 * not block.  Returns the previous default, or -1 with errno EINVAL (n out
 * of range) or ENOMEM (the scheduler could not be created).
 */
CORO_API int coro_set_selfishness(int n);

/* The default max_selfish_acts of new coroutines (4 until set). */
CORO_API int coro_selfishness(void);

/*
 * Set co's max_selfish_acts (1..32768) and refill its count, so its next
 * n acts are free.  Does not block.  Returns the previous value, or -1
 * with errno EINVAL (co invalid, or n out of range) or ESRCH (co ended).
 * coro_info() reports the value and the yields it forced.
 */
CORO_API int coro_set_max_selfish_acts(coro_t *co, int n);

/* ---------------------------------------------------------------------
 * Blocking offload
 *
 * Calls that would block the whole thread (getaddrinfo, reads and writes
 * of regular files, CPU-heavy work) run on a small pool of threads while
 * the calling coroutine waits; the other coroutines keep running.  Each
 * scheduler has its own pool.  Threads start on first use, one per job
 * waiting beyond the idle ones, up to coro_offload_set_threads() (default
 * 4); they block all signals.  Jobs run in the order they were submitted.
 *
 * A job cannot be stopped once a thread runs it.  When the caller's
 * deadline passes or it is interrupted, the call returns at once
 * (ETIMEDOUT, the interrupt's errno); a job not yet started is dropped,
 * a running one finishes on its thread and its result is thrown away.
 * So fn may still run after coro_offload() returned: whatever its arg
 * points to must stay valid until fn ends, whatever the caller sees.  The
 * wrappers below copy their arguments (fd included, with dup) and are
 * safe.  After fork(), the child's pool starts with no threads: a child's
 * coroutine that waited for a job not yet finished fails with ECANCELED
 * (the job is the parent's).  coro_fini() shuts the pool down.
 */

/*
 * Run fn(arg) on a pool thread and wait for it.  Blocks.  On 0, *result
 * (if not NULL) holds what fn returned and errno is the thread's errno
 * after fn (set to 0 before fn ran).  -1 with errno EINVAL (fn NULL),
 * EPERM, ETIMEDOUT, an interrupt's errno (then fn may still run, see
 * above), ENOMEM, EAGAIN (no thread could be started), or ECANCELED (a
 * fork() child, see above).  If fn finished before a late interrupt
 * reached the caller, the call succeeds and the interrupt fails the next
 * blocking call (as in coro_join()).  arg is borrowed until fn returns.
 */
CORO_API int coro_offload(intptr_t (*fn)(void *arg), void *arg,
                          intptr_t *result);

/* Most threads coro_offload_set_threads() accepts. */
#define CORO_OFFLOAD_THREADS_MAX 256

/*
 * Let this thread's pool run up to n threads (1..CORO_OFFLOAD_THREADS_MAX;
 * default 4).  Growing starts threads as jobs need them; shrinking makes
 * idle threads beyond n leave at once and busy ones when their job ends.
 * Does not block.  Returns the previous limit, or -1 with errno EINVAL
 * (n out of range) or ENOMEM.
 */
CORO_API int coro_offload_set_threads(int n);

/*
 * Stop and join every thread of this thread's pool; they start again with
 * the next job.  Waits (blocking the thread, not just the coroutine) for
 * running jobs whose callers gave up to finish.  Callable anywhere on the
 * scheduler's thread.  0, or -1 with errno EBUSY while a coroutine waits
 * for a job.
 */
CORO_API int coro_offload_shutdown(void);

struct addrinfo;

/*
 * getaddrinfo(3) on a pool thread.  Blocks.  Returns what getaddrinfo
 * returned: 0 with *res set (free it with freeaddrinfo()), or an EAI_*
 * code (EAI_SYSTEM with errno from the lookup).  Failures of the call
 * itself return EAI_SYSTEM with errno EINVAL (res NULL), EPERM,
 * ETIMEDOUT, an interrupt's errno, ENOMEM, EAGAIN or ECANCELED, as
 * coro_offload(); a lookup given up on is freed when it ends.  node,
 * service and hints are copied (only ai_flags, ai_family, ai_socktype
 * and ai_protocol of hints are read).
 */
CORO_API int coro_getaddrinfo(const char *node, const char *service,
                              const struct addrinfo *hints,
                              struct addrinfo **res);

/*
 * pread(2) / pwrite(2) of a regular file (or any fd) on a pool thread:
 * one call, so the count may be short.  Blocks.  The job works on a
 * duplicate of fd and its own copy of the data (len bytes of memory), so
 * the caller may close fd or reuse buf as soon as the call returns, even
 * after a timeout.  Returns the bytes transferred, or -1 with errno
 * EBADF (fd < 0 or not open), EINVAL (buf NULL with len > 0, len above
 * SSIZE_MAX, offset < 0), the errno of pread/pwrite (ESPIPE, EISDIR...),
 * EMFILE (no fd for the duplicate), or those of coro_offload().
 */
CORO_API ssize_t coro_pread(int fd, void *buf, size_t len, off_t offset);
CORO_API ssize_t coro_pwrite(int fd, const void *buf, size_t len,
                             off_t offset);

/* The same, recording the caller's wait site (see "Wait sites"). */
CORO_API int coro_offload_at(intptr_t (*fn)(void *arg), void *arg,
                             intptr_t *result, const coro_site_t *site);
CORO_API int coro_getaddrinfo_at(const char *node, const char *service,
                                 const struct addrinfo *hints,
                                 struct addrinfo **res,
                                 const coro_site_t *site);
CORO_API ssize_t coro_pread_at(int fd, void *buf, size_t len, off_t offset,
                               const coro_site_t *site);
CORO_API ssize_t coro_pwrite_at(int fd, const void *buf, size_t len,
                                off_t offset, const coro_site_t *site);

#ifndef __cplusplus
/* CORO_HERE is defined under "Wait sites"; macros expand at use. */
#define coro_offload(fn, arg, res)                                         \
    coro_offload_at((fn), (arg), (res), CORO_HERE)
#define coro_getaddrinfo(n, s, h, r)                                       \
    coro_getaddrinfo_at((n), (s), (h), (r), CORO_HERE)
#define coro_pread(fd, b, n, o)                                            \
    coro_pread_at((fd), (b), (n), (o), CORO_HERE)
#define coro_pwrite(fd, b, n, o)                                           \
    coro_pwrite_at((fd), (b), (n), (o), CORO_HERE)
#endif

/* ---------------------------------------------------------------------
 * Diagnostics
 */

/*
 * Print to stderr one line: a timestamp, the current coroutine's id (0
 * outside coroutines) and the formatted message, in one write().  Errors
 * are ignored.
 */
CORO_API void coro_print_stderr(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Write len bytes of buf to stderr verbatim, retrying short writes. */
CORO_API void coro_write_stderr(const char *buf, size_t len);

/*
 * Log sinks: a tap on what the runtime prints, for consoles that stream
 * it (the backdoor's "log").  A sink receives every message that
 * coro_print_stderr() prints and every latency warning, after it went to
 * stderr: text is the whole message with its prefix, one or more lines
 * each ending in '\n', len its length (not NUL-terminated; borrowed for
 * the call).  coro_write_stderr() and the on-signal dump do not reach
 * sinks.
 *
 * Sinks belong to the calling thread: a sink sees what that thread prints
 * (its loop's coroutines and the loop itself), never other threads'.  A
 * sink is called wherever the message is printed, which may be inside the
 * scheduler while it switches (latency warnings): it must not block,
 * switch, wake or spawn coroutines, or print (what it prints reaches
 * stderr but no sink).  Copy the text and wake a reader through an fd,
 * say.  errno is preserved around the sinks.
 */
typedef void (*coro_log_sink_fn)(const char *text, size_t len, void *ud);

/* Most sinks one thread may have at once. */
#define CORO_LOG_SINKS_MAX 16

/* Add fn(text, len, ud) to this thread's sinks.  Does not block.  0, or
 * -1 with errno EINVAL (fn NULL), EEXIST (this fn with this ud is there
 * already), EAGAIN (CORO_LOG_SINKS_MAX sinks). */
CORO_API int coro_log_sink_add(coro_log_sink_fn fn, void *ud);

/* Remove the sink added with fn and ud; a sink may remove itself (or
 * another) while it is called.  0, or -1 with errno ENOENT (no such
 * sink). */
CORO_API int coro_log_sink_remove(coro_log_sink_fn fn, void *ud);

/*
 * Called in the dying coroutine when it ends with a negative status.  The
 * default prints "coroutine #id 'name' failed: status S (strerror)" with
 * coro_print_stderr(), except for err ECANCELED (cancelled on purpose).
 */
typedef void (*coro_exit_notifier_fn)(coro_t *co, int status, int err);

/* Install fn (NULL restores the default); returns the previous notifier
 * (NULL if it was the default). */
CORO_API coro_exit_notifier_fn coro_set_exit_notifier(coro_exit_notifier_fn fn);

/*
 * Print every coroutine with where it waits to stderr when signo arrives
 * (like Shrapnel's SIGINFO dump; SIGQUIT or SIGUSR1 are good choices).
 * The dump is written from the signal handler with async-signal-safe
 * calls, so it works even while a coroutine hogs the CPU.  One signal at a
 * time: installing on another signal, or signo 0, gives the previous signal
 * back its former handler.  The dump lists the coroutines of the thread
 * the signal is delivered to.  0, or -1 with errno EINVAL (SIGKILL,
 * SIGSTOP, SIGSEGV, out of range) or from sigaction().
 */
CORO_API int coro_dump_on_signal(int signo);

/*
 * Latency warnings.  Every run slice of a coroutine (from its switch-in
 * to its next switch-out) is timed; a slice longer than 0.2 s * factor
 * prints one warning with coro_print_stderr()'s prefix, in one write():
 *
 *   ... #7: latency: coroutine #7 'worker' held the CPU 312 ms
 *   (threshold 200 ms); resumed at sleep at x.c:10 in f(); yielded at
 *   yield at x.c:20 in g()
 *     watchdog sample 51 ms into the slice:
 *       #0 0x55d0c1a3b1c4 spin+0x1b (server)
 *       #1 ...
 *
 * (the first line is one line).  "resumed at" is the blocking call the
 * coroutine returned from ("entry" for its first slice), "yielded at" the
 * one it entered ("exit" when it ended).  While a slice is still running
 * past the threshold, a watchdog interrupts the thread once with
 * coro_watchdog_signal() and records the call stack of the code holding
 * the CPU (by frame pointers; code built without them shows fewer
 * frames), so the warning shows where the time went.  At most 5 warnings
 * per second are printed per thread; the next printed warning says how
 * many were suppressed.  Times come from the coarse clock (about 1 ms
 * resolution).  A coroutine that yields while no other is runnable keeps
 * running without a switch: its slice continues.
 *
 * Set the factor for this thread's scheduler: 0 turns warnings (and the
 * watchdog) off; the default is 1 (0.2 s).  Does not block.  Returns the
 * previous factor, or -1 with errno EINVAL (factor negative, NaN or above
 * 1e6) or ENOMEM (the scheduler could not be created).
 */
CORO_API double coro_set_latency_warning(double factor);

/* The latency warning factor of this thread's scheduler (1 until set;
 * 0 when off). */
CORO_API double coro_latency_warning(void);

/*
 * Choose the signal the latency watchdog uses, process-wide: SIGUSR1,
 * SIGUSR2, a realtime signal (SIGRTMIN..SIGRTMAX), or 0 to turn the
 * watchdog off (warnings then show no call stack).  The default is
 * SIGRTMAX - 3.  The handler (SA_SIGINFO | SA_RESTART | SA_ONSTACK) is
 * installed the first time a loop with warnings on runs coroutines, and
 * stays installed on every signal it was installed on, so a signal still
 * in flight never meets the default action (which would end the process).
 * The signal only interrupts a thread running one slice longer than its
 * threshold; a system call the coroutine makes then may fail with EINTR
 * where SA_RESTART does not apply (nanosleep, poll, epoll_wait...).
 * Returns the previous signal, or -1 with errno EINVAL (another signal).
 */
CORO_API int coro_set_watchdog_signal(int signo);

/* The watchdog's signal (0 when off). */
CORO_API int coro_watchdog_signal(void);

/* Hooks for profilers and tracers; any member may be NULL.  They run on
 * the hot path: keep them short, and never block or switch in them. */
typedef struct coro_hooks {
    void (*switch_in)(coro_t *co, void *ud);  /* co is about to run */
    void (*switch_out)(coro_t *co, void *ud); /* co stopped running */
    void (*spawn)(coro_t *co, void *ud);      /* co was created */
    void (*exit)(coro_t *co, void *ud);       /* co ended (still valid) */
    /* The loop is about to ask the poller for events, waiting at most
     * timeout_ticks (-1: until an event; 0: not at all), in the loop's
     * context (no coroutine runs); poll_end when the poller returned. */
    void (*poll_begin)(int64_t timeout_ticks, void *ud);
    void (*poll_end)(void *ud);
    /* The scheduler is being freed (coro_fini(), or the end of its
     * thread): called once, outside any coroutine, before anything is
     * freed; the hooks are gone when coro_fini() returns. */
    void (*fini)(void *ud);
    void *ud;                                 /* passed to each hook */
} coro_hooks_t;

/* Install hooks (copied; NULL removes them).  Returns 0, or -1 with errno
 * ENOMEM when the thread's scheduler cannot be created. */
CORO_API int coro_set_hooks(const coro_hooks_t *hooks);

/* Copy this thread's hooks into *out (all NULL when none are installed),
 * so that a tool can chain the hooks it replaces.  Does not create the
 * scheduler.  0, or -1 with errno EINVAL (out NULL). */
CORO_API int coro_get_hooks(coro_hooks_t *out);

/* ---------------------------------------------------------------------
 * Stacks and symbols, for consoles, profilers and tracers.  The walks
 * follow frame pointers: build the code to be seen with
 * -fno-omit-frame-pointer (coro itself is).  A frame without one is
 * skipped or ends the walk; a walk never reads outside the coroutine's
 * stack.
 */

/*
 * Fill pcs[0..max) with the return addresses on co's stack, innermost
 * first: where a suspended coroutine resumes (inside coro, in the call
 * that parked it) and then its callers; for the running coroutine, from
 * the caller of coro_backtrace().  Returns how many were written (0 for a
 * coroutine that has not run yet), or -1 with errno EINVAL (co NULL, not a
 * coroutine of this thread, max < 0, pcs NULL with max > 0) or ESRCH (co
 * has ended).
 */
CORO_API int coro_backtrace(const coro_t *co, void **pcs, int max);

/*
 * For a signal handler (SA_SIGINFO) on a loop's thread: the running
 * coroutine (*co, may be NULL to skip) and the return addresses of the
 * code the signal interrupted, innermost first (pcs[0] is the interrupted
 * pc itself).  Returns how many were written; 0 when no coroutine runs
 * (the loop, the poller, or code outside coroutines) or a switch is in
 * progress, when the stack cannot be trusted.  Async-signal-safe.
 */
CORO_API int coro_backtrace_signal(const void *uctx, coro_t **co,
                                   void **pcs, int max);

/*
 * Write pc's name into buf like snprintf(): "func+0x1a (module)", or
 * "module+0x1f3c" when no symbol covers it, or the bare address.  Static
 * functions are named from the module's own symbol table (read once).
 * is_return says pc is a return address (every pcs[i] of a backtrace but
 * the interrupted pc of a signal sample), so the call is looked up, not
 * the next instruction.  Returns the length it needed, or -1 with errno
 * EINVAL (buf NULL with len > 0).  Not async-signal-safe (dladdr, file
 * reads); thread-safe.
 */
CORO_API int coro_symbolize(const void *pc, bool is_return, char *buf,
                            size_t len);

/* ---------------------------------------------------------------------
 * Coroutine-local storage: per key, a stack of values per coroutine.
 */

/* A key.  0 is never a valid key. */
typedef uint32_t coro_key_t;

/*
 * Create a key; dtor (may be NULL) is called with each value still pushed
 * when a coroutine ends, innermost first.  Keys are process-wide.
 * 0, or -1 with errno EINVAL (key NULL) or EAGAIN (CORO_KEYS_MAX keys).
 */
CORO_API int coro_key_create(coro_key_t *key, void (*dtor)(void *value));
#define CORO_KEYS_MAX 1024

/* Delete a key: values still pushed are dropped without their destructor
 * (no call sees them again; their memory is freed when their coroutine
 * ends).  0, or -1 with errno EINVAL (no such key). */
CORO_API int coro_key_delete(coro_key_t key);

/* Push value on the calling coroutine's stack for key.  0, or -1 with
 * errno EINVAL (no such key), EPERM (outside a coroutine), ENOMEM. */
CORO_API int coro_local_push(coro_key_t key, void *value);

/* Pop the top value of key; the caller owns it (no destructor runs).
 * 0 and *value set (if value not NULL), or -1 with errno EINVAL (no such
 * key), ENOENT (nothing pushed), EPERM. */
CORO_API int coro_local_pop(coro_key_t key, void **value);

/* The top value of key for the calling coroutine, or NULL (errno ENOENT
 * when nothing is pushed, EINVAL for a bad key, EPERM outside). */
CORO_API void *coro_local_get(coro_key_t key);

/* Replace the top value (push if empty); the old one is returned through
 * *old if not NULL (caller owns it).  Errors as coro_local_push(). */
CORO_API int coro_local_set(coro_key_t key, void *value, void **old);

/* Number of values pushed for key in the calling coroutine (0 outside). */
CORO_API size_t coro_local_depth(coro_key_t key);

/* ---------------------------------------------------------------------
 * Synchronisation: mutex, semaphore, inverted semaphore, condition
 * variable, read-write lock, fifo, bounded channel, one-shot event.
 *
 * They coordinate the coroutines of one thread.  Each object is storage
 * the caller owns (static, global, on a stack or in a struct) and must
 * not be copied or moved while in use.  Storage filled by the matching
 * static initializer (CORO_MUTEX_INIT...) or _init() function is ready;
 * the fifo and the channel own memory until their _destroy().
 *
 * Rules common to all of them:
 * - Fair: waiters are served in the order they arrived.  What a waker
 *   hands out (ownership, units, an item, a free slot, a value) goes
 *   straight to the first waiter, which holds it before it runs again,
 *   so a later arrival never barges past it.
 * - Every blocking call below blocks only while it must, but always
 *   acts as a blocking call: it fails with EPERM outside a coroutine and
 *   at once with a pending interrupt's errno or with ETIMEDOUT once a
 *   coro_with_timeout() deadline has passed, even when it would not have
 *   to wait; while it waits, it fails with ETIMEDOUT when such a deadline
 *   comes and with the errno given to coro_interrupt().
 * - Interrupted after being handed something (a waker chose it, and the
 *   interrupt came before it ran): the interrupt wins, the call fails
 *   with the interrupt's errno, and what it was handed passes to the
 *   next waiter, or back to the object.  Nothing is lost, and the other
 *   waiters see the object as if the interrupted one had never waited.
 * - A NULL object, or an argument out of range, fails with EINVAL.  A
 *   try-variant that would have to wait fails with EBUSY.  A failed call
 *   has changed nothing.  Waiting allocates nothing.
 * - An object may be freed, reused or initialised again only once no
 *   coroutine is inside a call on it.  A waiter that has been woken or
 *   handed something is inside its call until it has run, and may still
 *   use the object then (to pass on what it was handed if an interrupt
 *   reaches it first, for one).  coro_fifo_destroy() and
 *   coro_chan_destroy() check this and fail with EBUSY; for the other
 *   objects the caller must know it (join the waiters, say).  The event
 *   is simpler: its waiters never touch it once coro_event_set() has
 *   returned.  Initialising an object in use is undefined: on a fifo
 *   holding items or on an initialised channel it leaks their memory
 *   (the storage may hold garbage before init, so it is not checked).
 */

/* A mutex, recursive.  Initialize with CORO_MUTEX_INIT or
 * coro_mutex_init(). */
typedef struct coro_mutex {
    uintptr_t opaque_[4]; /* private */
} coro_mutex_t;
#define CORO_MUTEX_INIT {{0}}

/* Make *m an unlocked mutex.  0, or -1 with errno EINVAL (m NULL). */
CORO_API int coro_mutex_init(coro_mutex_t *m);

/*
 * Lock m.  Blocks while another coroutine holds it.  The owner may lock it
 * again: it then holds it until it has unlocked it as many times.  Waiters
 * get the mutex in arrival order, each directly from the unlocker.
 * Returns 0, or -1 with errno EINVAL (m NULL), EPERM (outside a
 * coroutine), EOVERFLOW (the owner's count is at SIZE_MAX), ETIMEDOUT, or
 * an interrupt's errno.  The mutex does not notice its owner's end: a
 * coroutine must unlock what it holds before it ends.
 */
CORO_API int coro_mutex_lock(coro_mutex_t *m);

/* Lock m if that needs no wait: 0, or -1 with errno EBUSY (another
 * coroutine holds it), EINVAL, EPERM (outside a coroutine), EOVERFLOW. */
CORO_API int coro_mutex_trylock(coro_mutex_t *m);

/* Undo one lock of m by its owner; the last one hands m to the first
 * waiter, if any.  0, or -1 with errno EINVAL (m NULL), EPERM (the caller
 * does not hold m, or is not a coroutine). */
CORO_API int coro_mutex_unlock(coro_mutex_t *m);

/* Whether any coroutine holds m (false for NULL). */
CORO_API bool coro_mutex_locked(const coro_mutex_t *m);

/* A counting semaphore.  CORO_SEM_INIT(n) or coro_sem_init() with n units
 * available. */
typedef struct coro_sem {
    uintptr_t opaque_[3]; /* private */
} coro_sem_t;
#define CORO_SEM_INIT(n) {{(uintptr_t)(n)}}

/* Make *s a semaphore with n units.  0, or -1 with errno EINVAL. */
CORO_API int coro_sem_init(coro_sem_t *s, size_t n);

/*
 * Take n units (n >= 1).  Blocks while fewer than n are available or
 * another coroutine waits ahead: strictly first come, first served, so a
 * large request at the head holds back smaller ones behind it.  Returns
 * 0, or -1 with errno EINVAL (s NULL, n 0), EPERM, ETIMEDOUT, or an
 * interrupt's errno.
 */
CORO_API int coro_sem_acquire(coro_sem_t *s, size_t n);

/* Take n units if that needs no wait: 0, or -1 with errno EBUSY (too few
 * units, or someone waits), EINVAL (s NULL, n 0).  Works anywhere. */
CORO_API int coro_sem_try_acquire(coro_sem_t *s, size_t n);

/* Give n units back (n may be 0) and hand them to the waiters they
 * satisfy, first come first served.  Does not block; works anywhere.
 * 0, or -1 with errno EINVAL (s NULL), EOVERFLOW (the count would pass
 * SIZE_MAX). */
CORO_API int coro_sem_release(coro_sem_t *s, size_t n);

/* Units available now (0 for NULL). */
CORO_API size_t coro_sem_value(const coro_sem_t *s);

/* An inverted semaphore: a count that coroutines wait to see fall (to 0,
 * or to a level), e.g. outstanding jobs.  CORO_ISEM_INIT(n) or
 * coro_isem_init(). */
typedef struct coro_isem {
    uintptr_t opaque_[3]; /* private */
} coro_isem_t;
#define CORO_ISEM_INIT(n) {{(uintptr_t)(n)}}

/* Make *s an inverted semaphore with count n.  0, or -1 with errno
 * EINVAL. */
CORO_API int coro_isem_init(coro_isem_t *s, size_t n);

/* Add n to the count.  Never blocks; works anywhere.  0, or -1 with errno
 * EINVAL (s NULL), EOVERFLOW (the count would pass SIZE_MAX). */
CORO_API int coro_isem_acquire(coro_isem_t *s, size_t n);

/* Subtract n from the count and wake every waiter whose level it now
 * reaches.  Never blocks; works anywhere.  0, or -1 with errno EINVAL (s
 * NULL, or n larger than the count). */
CORO_API int coro_isem_release(coro_isem_t *s, size_t n);

/*
 * Wait until the count is at most level (0 for Shrapnel's
 * block_till_zero).  Blocks while it is above; returns at once when it is
 * not.  A waiter woken by a release returns 0 even if the count has risen
 * again before it runs.  Returns 0, or -1 with errno EINVAL (s NULL),
 * EPERM, ETIMEDOUT, or an interrupt's errno.
 */
CORO_API int coro_isem_wait(coro_isem_t *s, size_t level);

/* The count now (0 for NULL). */
CORO_API size_t coro_isem_value(const coro_isem_t *s);

/* A condition variable without a mutex: coroutines switch only in
 * blocking calls, so a test followed by coro_cond_wait() cannot miss a
 * wake-up.  CORO_COND_INIT or coro_cond_init(). */
typedef struct coro_cond {
    uintptr_t opaque_[2]; /* private */
} coro_cond_t;
#define CORO_COND_INIT {{0}}

/* Make *c a condition variable nobody waits on.  0, or -1 with errno
 * EINVAL. */
CORO_API int coro_cond_init(coro_cond_t *c);

/*
 * Wait until a wake call chooses the caller; *value (if value is not NULL)
 * receives the value passed to it.  Blocks.  Returns 0, or -1 with errno
 * EINVAL (c NULL), EPERM, ETIMEDOUT, an interrupt's errno, or the err of
 * coro_cond_interrupt_all().  A waiter that wake_one or wake_n chose and
 * that is interrupted before it runs passes that wake-up and its value to
 * the next waiter, if any.
 */
CORO_API int coro_cond_wait(coro_cond_t *c, intptr_t *value);

/* Wake the first waiter with value.  Returns 1, 0 when nobody waits, or
 * -1 with errno EINVAL (c NULL).  Never blocks; works anywhere. */
CORO_API int coro_cond_wake_one(coro_cond_t *c, intptr_t value);

/* Wake up to n (>= 0) waiters in arrival order with value.  Returns the
 * number woken, or -1 with errno EINVAL (c NULL, n < 0). */
CORO_API int coro_cond_wake_n(coro_cond_t *c, int n, intptr_t value);

/* Wake every waiter with value.  A waiter so woken that is interrupted
 * before it runs passes nothing on: every waiter of that moment was woken.
 * Returns the number woken, or -1 with errno EINVAL (c NULL). */
CORO_API int coro_cond_wake_all(coro_cond_t *c, intptr_t value);

/* Make every waiter's coro_cond_wait() fail with err (> 0), like
 * Shrapnel's raise_all.  Returns the number woken, or -1 with errno EINVAL
 * (c NULL, err <= 0). */
CORO_API int coro_cond_interrupt_all(coro_cond_t *c, int err);

/*
 * A read-write lock that prefers writers: a reader waits while a writer
 * holds the lock or waits for it; a writer waits while anyone holds it.
 * Unlocking hands the lock on directly: a writer's unlock to the first
 * waiting writer, else to every waiting reader at once; the last reader's
 * unlock to the first waiting writer.  Not recursive: a reader that read
 * locks again while a writer waits deadlocks.  CORO_RWLOCK_INIT or
 * coro_rwlock_init().
 */
typedef struct coro_rwlock {
    uintptr_t opaque_[6]; /* private */
} coro_rwlock_t;
#define CORO_RWLOCK_INIT {{0}}

/* Make *rw an unlocked lock.  0, or -1 with errno EINVAL. */
CORO_API int coro_rwlock_init(coro_rwlock_t *rw);

/* Lock rw for reading, shared with other readers.  Blocks.  Returns 0, or
 * -1 with errno EINVAL (rw NULL), EDEADLK (the caller holds it for
 * writing), EPERM, ETIMEDOUT, or an interrupt's errno. */
CORO_API int coro_rwlock_rdlock(coro_rwlock_t *rw);

/* Lock rw for writing, alone.  Blocks.  Returns 0, or -1 with errno
 * EINVAL, EDEADLK (the caller holds it for writing), EPERM, ETIMEDOUT, or
 * an interrupt's errno. */
CORO_API int coro_rwlock_wrlock(coro_rwlock_t *rw);

/* As coro_rwlock_rdlock() and coro_rwlock_wrlock(), without waiting:
 * -1 with errno EBUSY where those would wait; also EINVAL, EDEADLK, and
 * EPERM outside a coroutine. */
CORO_API int coro_rwlock_try_rdlock(coro_rwlock_t *rw);
CORO_API int coro_rwlock_try_wrlock(coro_rwlock_t *rw);

/* Drop a read lock.  0, or -1 with errno EINVAL (rw NULL), EPERM (nobody
 * holds it for reading).  Which coroutines read is not recorded: the
 * caller must be one of them. */
CORO_API int coro_rwlock_rdunlock(coro_rwlock_t *rw);

/* Drop the caller's write lock.  0, or -1 with errno EINVAL (rw NULL),
 * EPERM (the caller does not hold it for writing). */
CORO_API int coro_rwlock_wrunlock(coro_rwlock_t *rw);

/*
 * An unbounded FIFO queue of pointers (Shrapnel's fifo).  Each item pushed
 * costs one small allocation, freed when it is popped; the items
 * themselves are borrowed.  CORO_FIFO_INIT or coro_fifo_init();
 * coro_fifo_destroy() frees what is left, and says whether the fifo is
 * still in use.
 */
typedef struct coro_fifo {
    uintptr_t opaque_[5]; /* private */
} coro_fifo_t;
#define CORO_FIFO_INIT {{0}}

/* Make *f an empty fifo.  0, or -1 with errno EINVAL.  *f is not looked
 * at: on a fifo that holds items, init leaks them (destroy first). */
CORO_API int coro_fifo_init(coro_fifo_t *f);

/* Drop every item left (without touching what they point to) and free
 * the fifo's memory; *f is then empty and usable, and once destroy has
 * succeeded no call made before it touches *f again, so it may be freed.
 * 0, or -1 with errno EINVAL (f NULL), EBUSY (a coroutine is inside
 * coro_fifo_pop() or coro_fifo_pop_all() on it: waiting, or handed an
 * item or woken by an interrupt and not yet run; nothing is freed). */
CORO_API int coro_fifo_destroy(coro_fifo_t *f);

/* Append item (NULL too) at the tail, or hand it to the first waiter.
 * Never blocks; works anywhere.  0, or -1 with errno EINVAL (f NULL),
 * ENOMEM. */
CORO_API int coro_fifo_push(coro_fifo_t *f, void *item);

/* As coro_fifo_push(), at the head: item is the next one popped. */
CORO_API int coro_fifo_push_front(coro_fifo_t *f, void *item);

/* Take the item at the head into *item (if item is not NULL).  Blocks
 * while the fifo is empty.  Returns 0, or -1 with errno EINVAL (f NULL),
 * EPERM, ETIMEDOUT, or an interrupt's errno. */
CORO_API int coro_fifo_pop(coro_fifo_t *f, void **item);

/* Wait as coro_fifo_pop(), then take every item, up to max, into
 * items[0..].  Returns the number taken (>= 1), or -1 with the errors of
 * coro_fifo_pop() (EINVAL also for items NULL or max 0). */
CORO_API int coro_fifo_pop_all(coro_fifo_t *f, void **items, int max);

/* Take the head item if there is one: 0, or -1 with errno EBUSY (empty),
 * EINVAL (f NULL).  Works anywhere. */
CORO_API int coro_fifo_try_pop(coro_fifo_t *f, void **item);

/* Number of items queued (0 for NULL). */
CORO_API size_t coro_fifo_len(const coro_fifo_t *f);

/*
 * A bounded channel of pointers: coro_chan_send() waits while it holds
 * capacity items, coro_chan_recv() while it is empty.  It owns a buffer
 * from coro_chan_init() until coro_chan_destroy(); there is no static
 * initializer.  Closing it ends the stream: senders fail with EPIPE,
 * receivers take what is left, then fail with EPIPE.  A channel that is
 * not initialised (zero-filled, or destroyed) is refused: every call on it
 * but coro_chan_destroy() and coro_chan_len() fails at once with EINVAL.
 */
typedef struct coro_chan {
    uintptr_t opaque_[12]; /* private */
} coro_chan_t;

/* Make *ch an open, empty channel for capacity (>= 1) items.  0, or -1
 * with errno EINVAL (ch NULL, capacity 0), ENOMEM.  *ch is not looked at:
 * on an initialised channel, init leaks its buffer (destroy first). */
CORO_API int coro_chan_init(coro_chan_t *ch, size_t capacity);

/* Free the buffer; items left are dropped, and *ch is left not
 * initialised.  Once destroy has succeeded no call made before it touches
 * *ch again, so it may be freed.  On a channel not initialised, does
 * nothing and returns 0.  0, or -1 with errno EINVAL (ch NULL), EBUSY (a
 * coroutine is inside coro_chan_send() or coro_chan_recv() on it:
 * waiting, or served, failed by close or woken by an interrupt and not
 * yet run; nothing is freed). */
CORO_API int coro_chan_destroy(coro_chan_t *ch);

/*
 * Put item (NULL too) in the channel.  Blocks while it is full or earlier
 * senders wait.  Returns 0, or -1 with errno EINVAL (ch NULL or not
 * initialised), EPIPE (the channel is closed, or was closed before the
 * waiting sender ran again: its item was not sent), EPERM, ETIMEDOUT, or
 * an interrupt's errno.
 */
CORO_API int coro_chan_send(coro_chan_t *ch, void *item);

/* Take the oldest item into *item (if item is not NULL).  Blocks while the
 * channel is empty and open.  Returns 0, or -1 with errno EINVAL (ch
 * NULL or not initialised), EPIPE (closed and nothing left), EPERM,
 * ETIMEDOUT, or an interrupt's errno. */
CORO_API int coro_chan_recv(coro_chan_t *ch, void **item);

/* As coro_chan_send() and coro_chan_recv(), without waiting: -1 with errno
 * EBUSY where those would wait; also EINVAL, EPIPE.  Work anywhere. */
CORO_API int coro_chan_try_send(coro_chan_t *ch, void *item);
CORO_API int coro_chan_try_recv(coro_chan_t *ch, void **item);

/* Close ch and wake every waiter (see above).  0, or -1 with errno EINVAL
 * (ch NULL or not initialised), EALREADY (already closed). */
CORO_API int coro_chan_close(coro_chan_t *ch);

/* Number of items in ch (0 for NULL). */
CORO_API size_t coro_chan_len(const coro_chan_t *ch);

/* A one-shot event that carries a value: a future.  It is set once; every
 * waiter, before or after, gets the value.  CORO_EVENT_INIT or
 * coro_event_init(). */
typedef struct coro_event {
    uintptr_t opaque_[4]; /* private */
} coro_event_t;
#define CORO_EVENT_INIT {{0}}

/* Make *ev an event that is not set.  0, or -1 with errno EINVAL. */
CORO_API int coro_event_init(coro_event_t *ev);

/* Set ev to value (borrowed) and wake every waiter, handing each the
 * value: once set has returned, none of them touches ev again, even those
 * not yet run, so ev may be reused or freed when no later coro_event_wait()
 * will come.  Never blocks; works anywhere.  0, or -1 with errno EINVAL
 * (ev NULL), EALREADY (already set: the first value stays). */
CORO_API int coro_event_set(coro_event_t *ev, void *value);

/* Wait until ev is set; *value (if value is not NULL) receives its value.
 * Blocks while it is not set.  Returns 0, or -1 with errno EINVAL (ev
 * NULL), EPERM, ETIMEDOUT, or an interrupt's errno. */
CORO_API int coro_event_wait(coro_event_t *ev, void **value);

/* Whether ev is set (false for NULL); if so and value is not NULL, *value
 * receives its value. */
CORO_API bool coro_event_is_set(const coro_event_t *ev, void **value);

/* The wait-site forms of the blocking calls above (see "Wait sites"). */
CORO_API int coro_mutex_lock_at(coro_mutex_t *m, const coro_site_t *site);
CORO_API int coro_sem_acquire_at(coro_sem_t *s, size_t n,
                                 const coro_site_t *site);
CORO_API int coro_isem_wait_at(coro_isem_t *s, size_t level,
                               const coro_site_t *site);
CORO_API int coro_cond_wait_at(coro_cond_t *c, intptr_t *value,
                               const coro_site_t *site);
CORO_API int coro_rwlock_rdlock_at(coro_rwlock_t *rw,
                                   const coro_site_t *site);
CORO_API int coro_rwlock_wrlock_at(coro_rwlock_t *rw,
                                   const coro_site_t *site);
CORO_API int coro_fifo_pop_at(coro_fifo_t *f, void **item,
                              const coro_site_t *site);
CORO_API int coro_fifo_pop_all_at(coro_fifo_t *f, void **items, int max,
                                  const coro_site_t *site);
CORO_API int coro_chan_send_at(coro_chan_t *ch, void *item,
                               const coro_site_t *site);
CORO_API int coro_chan_recv_at(coro_chan_t *ch, void **item,
                               const coro_site_t *site);
CORO_API int coro_event_wait_at(coro_event_t *ev, void **value,
                                const coro_site_t *site);

/* ---------------------------------------------------------------------
 * Signals
 *
 * A signal becomes an event that coroutines wait for, handled by ordinary
 * code instead of an async handler.  The loop's thread blocks each signal
 * the runtime watches and reads it through the poller: from a signalfd on
 * Linux, from a self-pipe written by a handler elsewhere (a small portable
 * path, untested on our Linux CI; one scheduler per process may watch
 * signals there, and a fork() child shares the pipe with its parent).
 *
 * A process-directed signal (kill(), a terminal's ^C) goes to any thread
 * that does not block it.  So every thread the application creates must
 * block the signals coro watches (create threads with them blocked, e.g.
 * from the loop's thread while the loop runs, or block them first thing);
 * coro's own threads block every signal.  Watch each signal in one
 * thread's scheduler only.  Children started with coro_cmd_spawn() get the
 * signal mask the application had, without coro's blocks; other ways of
 * starting a child inherit the blocks (and exec keeps them).
 *
 * Who gets a signal: every coroutine waiting for it when it is read gets
 * it (one arrival wakes them all).  One that arrives while nobody waits
 * is kept pending, once per signal number like the kernel's standard
 * signals (a second arrival before the next wait is merged into the
 * first), and the next wait for it returns at once.  A signal is watched
 * from its first coro_signal_watch() or wait until coro_signal_unwatch()
 * or coro_fini(), so none is lost between two waits.
 *
 * By default, while coro_event_loop() runs, SIGINT and SIGTERM end the
 * loop cleanly: it returns 128 + signo (130, 143), as a shell reports a
 * death by signal, with every coroutine left as it was (run the loop
 * again to let them go on, or interrupt them first).  This applies only
 * while the application neither watches nor waits for that signal, and
 * only while the loop runs: the loop blocks them when it starts and
 * restores the mask when it returns.  coro_set_default_signals() turns
 * it off.
 */

/* What is known about one signal's arrival; 0 where unknown. */
typedef struct coro_siginfo {
    int signo;   /* the signal number */
    int code;    /* si_code: SI_USER (kill), SI_QUEUE, CLD_EXITED... */
    pid_t pid;   /* sender's pid (kill, sigqueue), the child (SIGCHLD) */
    uid_t uid;   /* sender's real uid */
    int value;   /* sigqueue()'s int value; SIGCHLD: exit status/signal */
} coro_siginfo_t;

/*
 * Wait for signal signo (see "Who gets a signal" above).  Watches signo
 * first, as coro_signal_watch() does, and the watch stays after the call
 * returns, whatever its result.  Blocks, and while it waits it keeps the
 * event loop waiting too (no EDEADLK: only the outside world can end the
 * wait).  *info (if not NULL) receives what is known of the arrival.
 *
 * Returns signo, or -1 with errno EINVAL (signo is not a signal that can
 * be watched, see coro_signal_watch()), EPERM, ETIMEDOUT, an interrupt's
 * errno, or an errno of coro_signal_watch().
 */
CORO_API int coro_wait_signal(int signo, coro_siginfo_t *info);

/*
 * Wait for any of the n signals in signos[] (borrowed); as
 * coro_wait_signal().  Returns the signal that came (the lowest-numbered
 * pending one if several are pending), or -1 with errno as above, and
 * EINVAL when signos is NULL or n is 0.  A failed call watches nothing
 * new when it fails with EINVAL.
 */
CORO_API int coro_wait_signals(const int *signos, size_t n,
                               coro_siginfo_t *info);

/*
 * Start watching signo now, without waiting: from here on it is blocked
 * in the calling thread and kept pending for the next coro_wait_signal()
 * instead of taking its default action (or, for SIGINT and SIGTERM,
 * ending the loop).  Use it before the loop starts or before a child is
 * told to signal us, so that no early arrival is lost.  Does not block;
 * callable outside coroutines.  Watching a watched signal does nothing.
 *
 * Returns 0, or -1 with errno EINVAL (signo out of range, SIGKILL,
 * SIGSTOP, a fault signal: SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, or a
 * signal the C library reserves), ENOMEM, EMFILE or ENFILE (no signalfd
 * or pipe could be created).
 */
CORO_API int coro_signal_watch(int signo);

/*
 * Stop watching signo: a pending arrival is dropped, and the signal gets
 * back the mask (and disposition) it had before coro watched it, so one
 * the kernel still holds for us is delivered then, with its usual action.
 * Returns 0 (also when signo was not watched), or -1 with errno EINVAL
 * (as coro_signal_watch()) or EBUSY (a coroutine waits for signo).
 */
CORO_API int coro_signal_unwatch(int signo);

/*
 * Whether SIGINT and SIGTERM end the event loop while it runs (true by
 * default; see above).  Takes effect at once, also while the loop runs.
 * The setting belongs to the thread's scheduler (coro_fini() resets it).
 * If the signals cannot be caught when the loop starts (no fd left), a
 * warning is printed on stderr and the loop runs without them.  Returns
 * the previous setting; never fails (if the scheduler cannot be created,
 * it changes nothing and returns true).
 */
CORO_API bool coro_set_default_signals(bool on);

/* ---------------------------------------------------------------------
 * Child processes
 *
 * Waiting for a child blocks the coroutine, never the loop, and reports
 * the end at once: on Linux through a pidfd (pidfd_open) that the poller
 * watches; where there is none (older kernels, other systems), or with
 * the environment variable CORO_WAITPID=sigchld, by watching SIGCHLD and
 * trying waitpid(WNOHANG) for each waiter when it comes.  On that path
 * SIGCHLD is watched while someone waits, and the rule above about
 * blocking watched signals in every thread applies to it.
 *
 * Status values use the wait(2) encoding: WIFEXITED(), WEXITSTATUS(),
 * WIFSIGNALED(), WTERMSIG() from <sys/wait.h> apply; a child that exits
 * with status 0 is reported like any other.  A child must not be reaped
 * behind coro's back (another waitpid(), SIGCHLD set to SIG_IGN): its
 * waiters then fail with ECHILD.
 */

/*
 * Wait for child pid to end and reap it; *status (if not NULL) receives
 * its wait(2) status.  Blocks (the loop keeps running the others, and it
 * keeps waiting for the child rather than reporting EDEADLK).  Several
 * coroutines may wait for one child at once: all get the same status.  A
 * wait that fails (deadline, interrupt) leaves the child unreaped, so
 * it can be waited for again.
 *
 * Returns pid, or -1 with errno EINVAL (pid <= 0: waiting for any child
 * or a process group is not offered), ECHILD (pid is not a child of this
 * process, or was reaped already), EPERM, ETIMEDOUT, an interrupt's
 * errno, ENOMEM, EMFILE or ENFILE.
 */
CORO_API pid_t coro_waitpid(pid_t pid, int *status);

/*
 * A command started by coro_cmd_spawn(): caller storage, filled by the
 * call.  It owns the pipe ends it holds (in, out, err) until
 * coro_cmd_close(); take one over by copying it and setting the field to
 * -1.  Our ends are non-blocking and close-on-exec: read and write them
 * with plain read()/write(), and coro_wait_readable()/coro_wait_writable()
 * on EAGAIN, or with coro's socket calls.
 */
typedef struct coro_cmd {
    pid_t pid;   /* the child; valid until reaped */
    int in;      /* write end of the child's stdin, or -1 */
    int out;     /* read end of the child's stdout, or -1 */
    int err;     /* read end of the child's stderr, or -1 */
    int status;  /* its wait(2) status once reaped */
    bool reaped; /* coro_cmd_wait() has reaped it: status is valid */
} coro_cmd_t;

/* Flags for coro_cmd_spawn(); a stream without a flag is inherited. */
#define CORO_CMD_STDIN 0x1   /* a pipe to the child's stdin: cmd->in */
#define CORO_CMD_STDOUT 0x2  /* a pipe from its stdout: cmd->out */
#define CORO_CMD_STDERR 0x4  /* a pipe from its stderr: cmd->err */
#define CORO_CMD_MERGE 0x8   /* its stderr goes to the stdout pipe too
                                (needs CORO_CMD_STDOUT, excludes STDERR) */

/*
 * Start argv[0] (searched in PATH unless it contains a '/') with the
 * arguments argv[] (NULL-terminated, borrowed) and the environment of
 * this process, with pipes as flags asks, through posix_spawn.  Does not
 * block (posix_spawn returns once the child has called exec); callable
 * outside coroutines.  The child gets the signal mask the application
 * had before coro blocked any signal, and no fd of ours but its pipes.
 *
 * Returns 0 with *cmd filled, or -1 with errno EINVAL (cmd or argv NULL,
 * argv[0] NULL, unknown flags, CORO_CMD_MERGE without CORO_CMD_STDOUT or
 * with CORO_CMD_STDERR), the errno of the exec where the C library
 * reports it (ENOENT for a program that does not exist, EACCES, ENOEXEC:
 * glibc, musl, the BSDs and macOS do; a library that does not lets the
 * child exit with status 127 instead), EMFILE, ENFILE, ENOMEM, EAGAIN
 * (process limit).  A failed call leaves no fd open and no child behind.
 */
CORO_API int coro_cmd_spawn(coro_cmd_t *cmd, const char *const argv[],
                            int flags);

/*
 * Wait for cmd's child to end and reap it (coro_waitpid()), keeping the
 * status in cmd; once reaped, return the kept status at once, to any
 * number of callers.  The pipes stay open: output still buffered in them
 * can be read after the wait.  Blocks.  0 and *status (if not NULL) set,
 * or -1 with errno EINVAL (cmd NULL) or an errno of coro_waitpid().
 */
CORO_API int coro_cmd_wait(coro_cmd_t *cmd, int *status);

/*
 * Send signo to cmd's child, unless it has been reaped (then its pid may
 * belong to another process already).  Does not block.  0, or -1 with
 * errno EINVAL (cmd NULL, bad signo, or cmd holds no child: zeroed, or
 * its coro_cmd_spawn() failed), ESRCH (reaped).
 */
CORO_API int coro_cmd_kill(coro_cmd_t *cmd, int signo);

/*
 * Close the pipe ends cmd still holds with coro_close() (coroutines
 * waiting on them wake with EBADF) and set them to -1.  Neither waits
 * for the child nor kills it: reap it with coro_cmd_wait(), or it stays
 * a zombie.  Close just stdin (to send EOF) with coro_close(cmd->in) and
 * cmd->in = -1.  Does not block.  0, or -1 with errno EINVAL (cmd NULL)
 * or the first error of coro_close() (every fd is closed anyway).
 */
CORO_API int coro_cmd_close(coro_cmd_t *cmd);

/* ---------------------------------------------------------------------
 * Wait sites.  In C, the blocking calls above are also macros that record
 * the caller's file, line and function for coro_where(); (coro_sleep)(x)
 * calls the plain function, which records only its return address.
 */
CORO_API int coro_yield_at(const coro_site_t *site);
CORO_API int coro_sleep_at(double sec, const coro_site_t *site);
CORO_API int coro_sleep_until_at(int64_t deadline, const coro_site_t *site);
CORO_API int coro_join_at(coro_t *co, int *status, int *err,
                          const coro_site_t *site);
CORO_API int coro_in_parallel_at(coro_task_t *tasks, size_t n,
                                 const coro_site_t *site);
CORO_API int coro_wait_fd_at(int fd, int events, const coro_site_t *site);
CORO_API int coro_wait_readable_at(int fd, const coro_site_t *site);
CORO_API int coro_wait_writable_at(int fd, const coro_site_t *site);
CORO_API int coro_wait_signal_at(int signo, coro_siginfo_t *info,
                                 const coro_site_t *site);
CORO_API int coro_wait_signals_at(const int *signos, size_t n,
                                  coro_siginfo_t *info,
                                  const coro_site_t *site);
CORO_API pid_t coro_waitpid_at(pid_t pid, int *status,
                               const coro_site_t *site);
CORO_API int coro_cmd_wait_at(coro_cmd_t *cmd, int *status,
                              const coro_site_t *site);

#ifndef __cplusplus
/* The caller's site as a compound literal: it lives as long as the block
 * that makes the blocking call, which is as long as the call waits. */
#define CORO_HERE (&(const coro_site_t){__FILE__, __LINE__, __func__})
#define coro_yield() coro_yield_at(CORO_HERE)
#define coro_sleep(sec) coro_sleep_at((sec), CORO_HERE)
#define coro_sleep_until(d) coro_sleep_until_at((d), CORO_HERE)
#define coro_join(co, st, er) coro_join_at((co), (st), (er), CORO_HERE)
#define coro_in_parallel(t, n) coro_in_parallel_at((t), (n), CORO_HERE)
#define coro_wait_fd(fd, ev) coro_wait_fd_at((fd), (ev), CORO_HERE)
#define coro_wait_readable(fd) coro_wait_readable_at((fd), CORO_HERE)
#define coro_wait_writable(fd) coro_wait_writable_at((fd), CORO_HERE)
#define coro_mutex_lock(m) coro_mutex_lock_at((m), CORO_HERE)
#define coro_sem_acquire(s, n) coro_sem_acquire_at((s), (n), CORO_HERE)
#define coro_isem_wait(s, l) coro_isem_wait_at((s), (l), CORO_HERE)
#define coro_cond_wait(c, v) coro_cond_wait_at((c), (v), CORO_HERE)
#define coro_rwlock_rdlock(rw) coro_rwlock_rdlock_at((rw), CORO_HERE)
#define coro_rwlock_wrlock(rw) coro_rwlock_wrlock_at((rw), CORO_HERE)
#define coro_fifo_pop(f, it) coro_fifo_pop_at((f), (it), CORO_HERE)
#define coro_fifo_pop_all(f, its, max)                                     \
    coro_fifo_pop_all_at((f), (its), (max), CORO_HERE)
#define coro_chan_send(ch, it) coro_chan_send_at((ch), (it), CORO_HERE)
#define coro_chan_recv(ch, it) coro_chan_recv_at((ch), (it), CORO_HERE)
#define coro_event_wait(ev, v) coro_event_wait_at((ev), (v), CORO_HERE)
#define coro_wait_signal(sig, info) coro_wait_signal_at((sig), (info), CORO_HERE)
#define coro_wait_signals(sigs, n, info)                                    \
    coro_wait_signals_at((sigs), (n), (info), CORO_HERE)
#define coro_waitpid(pid, st) coro_waitpid_at((pid), (st), CORO_HERE)
#define coro_cmd_wait(cmd, st) coro_cmd_wait_at((cmd), (st), CORO_HERE)
#endif

#ifdef __cplusplus
}
#endif

#endif /* CORO_CORO_H */
