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
#include <sys/types.h>

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
 * Run the event loop on the calling thread until coro_set_exit() is called
 * or no coroutine (and no fd handler, see coro_set_handler()) is left.  Returns the exit code given to coro_set_exit()
 * (0 when the loop ran out of coroutines).  May be called again after it
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
 * its offload pool (joining the threads after the jobs they still run).
 * The next call of any function creates a fresh one.  Returns 0, or -1
 * with errno EBUSY when coroutines still exist or the loop is running.
 */
CORO_API int coro_fini(void);

/* Counters of this thread's scheduler, for tests and consoles. */
typedef struct coro_stats {
    size_t coroutines;      /* that exist (see coro_count()) */
    size_t runnable;        /* in the run queue */
    size_t timers;          /* pending timers */
    size_t stacks_in_use;   /* stacks held by coroutines */
    size_t stacks_cached;   /* free stacks kept resident for reuse */
    size_t stacks_guarded;  /* stacks (in use or free) with a guard page */
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

/* Hooks for profilers and tracers; any member may be NULL.  They run on
 * the hot path: keep them short, and never block or switch in them. */
typedef struct coro_hooks {
    void (*switch_in)(coro_t *co, void *ud);  /* co is about to run */
    void (*switch_out)(coro_t *co, void *ud); /* co stopped running */
    void (*spawn)(coro_t *co, void *ud);      /* co was created */
    void (*exit)(coro_t *co, void *ud);       /* co ended (still valid) */
    void *ud;                                 /* passed to each hook */
} coro_hooks_t;

/* Install hooks (copied; NULL removes them).  Returns 0, or -1 with errno
 * ENOMEM when the thread's scheduler cannot be created. */
CORO_API int coro_set_hooks(const coro_hooks_t *hooks);

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
#endif

#ifdef __cplusplus
}
#endif

#endif /* CORO_CORO_H */
