/*
 * Signals inside the runtime: the contract of the signal sources
 * (signal_signalfd.c on Linux, signal_pipe.c elsewhere) and what
 * signal.c offers the other files (process.c, sched.c).  Never installed.
 *
 * A source turns caught signals into calls of coro__signal_arrived() on
 * the loop's thread, through an internal fd the poller watches.  It
 * catches exactly the set signal.c gives it and nothing else; which
 * coroutine gets what is decided in signal.c, for every source alike.
 */
#ifndef CORO_SIGNAL_INTERNAL_H
#define CORO_SIGNAL_INTERNAL_H

#include "coro_internal.h"

#include <signal.h>

/* Signal numbers 1 .. CORO__NSIG - 1 fit one uint64_t set, bit signo - 1
 * (Linux has 64 signals; the BSDs and macOS fewer). */
#define CORO__NSIG 65
#define CORO__SIGBIT(signo) (UINT64_C(1) << ((signo) - 1))

struct coro__sigsrc; /* private to a source */

/* Create the source for s: its fd is registered with the poller as an
 * internal fd at once.  Catches nothing yet.  0, or -1 with errno. */
int coro__sigsrc_open(struct sched *s, struct coro__sigsrc **out);
/* Stop catching everything (masks and dispositions as they were before),
 * unregister and close the fd, free the source. */
void coro__sigsrc_close(struct sched *s, struct coro__sigsrc *src);
/* Catch exactly the signals in set from now on.  0, or -1 with errno and
 * nothing changed. */
int coro__sigsrc_set(struct coro__sigsrc *src, uint64_t set);
/* In a fork() child: give the source an fd of its own, catching the same
 * set, and forget the inherited one without touching it (it is shared
 * with the parent, and changing it would change what the parent gets).
 * 0, or -1 with errno (the inherited fd is kept). */
int coro__sigsrc_after_fork(struct sched *s, struct coro__sigsrc *src);
/* Read and route every signal caught so far, now (the loop is ending and
 * will not poll again). */
void coro__sigsrc_drain(struct sched *s, struct coro__sigsrc *src);
/* Whether the source changes the thread's signal mask (the ucontext
 * switch must then carry the new mask into every context). */
bool coro__sigsrc_blocks(void);
/* Whether signo can be caught at all (not reserved by the C library). */
bool coro__sigsrc_usable(int signo);
/* The mask a new child process should start with: the calling thread's,
 * without the signals the source blocked. */
void coro__sigsrc_child_mask(const struct coro__sigsrc *src, sigset_t *out);

/* signal.c: a source read one signal; route it.  Loop's thread only. */
void coro__signal_arrived(struct sched *s, const coro_siginfo_t *info);

/* An internal subscriber of a signal (process.c's SIGCHLD): called on the
 * loop's thread for each arrival, before any coroutine gets it. */
typedef void (*coro__signal_fn)(struct sched *s, const coro_siginfo_t *info);

/* Subscribe fn to signo (one subscriber per signal; catches it while
 * subscribed).  0, or -1 with errno. */
int coro__signal_subscribe(struct sched *s, int signo, coro__signal_fn fn);
/* Drop signo's subscriber; the signal is released unless watched. */
void coro__signal_unsubscribe(struct sched *s, int signo);
/* The signal mask for a child process (see coro__sigsrc_child_mask). */
void coro__signal_child_mask(struct sched *s, sigset_t *out);

/* sched.c: the loop starts (catch SIGINT/SIGTERM if enabled) and ends
 * (give them back).  loop_end takes the loop's return value rc and
 * returns it, or 128 + signo when SIGINT or SIGTERM came during the run
 * but was not read yet (the loop ran out of coroutines first). */
void coro__signal_loop_start(struct sched *s);
int coro__signal_loop_end(struct sched *s, int rc);
/* coro_fini: stop catching, close the source, free the state. */
void coro__signal_fini(struct sched *s);
/* In a fork() child (the poller's fork handling): see
 * coro__sigsrc_after_fork(). */
void coro__signal_after_fork(struct sched *s);

#endif /* CORO_SIGNAL_INTERNAL_H */
