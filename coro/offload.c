/*
 * Blocking offload: a small pthread pool per scheduler runs the calls that
 * would block the event loop (getaddrinfo, file reads and writes, CPU-heavy
 * work) while the calling coroutine parks in the one wait primitive.
 *
 * A job cannot be cancelled once a thread runs it, yet its caller may stop
 * waiting (a deadline, an interrupt).  So the job record lives on the heap,
 * never on the caller's stack, and goes through a state machine guarded by
 * the pool's mutex; whichever side finishes last frees it:
 *
 *   QUEUED --worker pops--> RUNNING --fn returns--> DONE --loop--> DELIVERED
 *      |                       |                      |
 *   caller gives up:        caller gives up:       caller gives up:
 *   unlinked, freed by      ABANDONED: the worker  unlinked, freed by
 *   the caller              frees it when fn ends  the caller
 *
 * Finished jobs wait in the pool's done list; the first one to land there
 * posts the pool's single remote record to the loop (coro__remote_post),
 * whose callback wakes every waiter of the list.  A pool has one record to
 * post, not one per job, so that the pool alone owns every job record and
 * coro_fini() can account for all of them.  While a coroutine waits for a
 * job, it holds the loop (coro__io_hold): the loop then waits in the
 * poller instead of reporting EDEADLK.
 */
#include "io_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* Threads a pool may start when coro_offload_set_threads() was not called:
 * enough for a few slow lookups and file reads at once, few enough to be
 * harmless on a small machine. */
#define DEFAULT_THREADS 4
/* Upper bound of coro_offload_set_threads(): fixes the slot table size. */
#define MAX_THREADS CORO_OFFLOAD_THREADS_MAX

enum job_state {
    JOB_QUEUED,    /* in the pool's queue; no thread has seen it */
    JOB_RUNNING,   /* a worker runs it; in the running list */
    JOB_ABANDONED, /* running, its caller gave up: the worker frees it */
    JOB_DONE,      /* finished; in the done list, not yet delivered */
    JOB_DELIVERED  /* taken off the done list by the loop: the loop
                      thread alone owns it now */
};

struct job;

/* A list of jobs, linked through job->next/prev. */
struct job_list {
    struct job *head, *tail;
    size_t len;
};

/* One job.  Wrappers embed it as the first member of a larger record that
 * holds copies of their arguments, so fn never reads the caller's stack. */
struct job {
    struct job *next, *prev;   /* link in one pool list; pool mutex */
    enum job_state state;      /* pool mutex */
    void (*run)(struct job *j); /* on a worker: do the work, set result,
                                   err */
    void (*release)(struct job *j); /* frees what the record owns beyond
                                       itself (fds, results); may be NULL */
    intptr_t result;           /* written by run() before DONE */
    int err;                   /* errno after run(), written likewise */
    struct coro__wait *waiter; /* the caller's wait; the loop thread reads
                                  it to deliver, never once given up */
    int fail_err;              /* set with DELIVERED when the job cannot
                                  finish here (fork child): ECANCELED */
};

/* One pool thread's slot. */
struct slot {
    struct coro__offload *pool; /* back pointer for the thread */
    pthread_t tid;              /* valid while started */
    bool started;               /* created and not yet joined */
    bool alive;                 /* in its work loop (pool mutex) */
};

/* The offload state of one scheduler (s->offload). */
struct coro__offload {
    pthread_mutex_t mu;         /* guards everything below but waiting */
    pthread_cond_t work;        /* a job was queued, or stop or shrink */
    struct sched *s;            /* owner, for remote posts */
    struct job_list queue;      /* QUEUED jobs, FIFO */
    struct job_list running;    /* RUNNING and ABANDONED jobs */
    struct job_list done;       /* DONE jobs, in finishing order */
    int max_threads;            /* coro_offload_set_threads() */
    int live;                   /* threads in their work loop */
    int idle;                   /* of those, waiting for work */
    bool stop;                  /* shutdown: every thread leaves */
    bool posted;                /* remote is queued on the loop */
    struct coro__remote remote; /* posted when done becomes non-empty */
    size_t waiting;             /* loop thread only: coroutines parked
                                   on a job (each holds the loop once) */
    struct slot slots[MAX_THREADS];
};

/* ------------------------------------------------------------------ */
/* Lists                                                              */

static void list_push(struct job_list *l, struct job *j)
{
    j->next = NULL;
    j->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->len++;
}

static void list_remove(struct job_list *l, struct job *j)
{
    if (j->prev != NULL)
        j->prev->next = j->next;
    else
        l->head = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    else
        l->tail = j->prev;
    j->next = j->prev = NULL;
    l->len--;
}

/* Take the whole list. */
static struct job *list_take(struct job_list *l)
{
    struct job *head = l->head;
    *l = (struct job_list){0};
    return head;
}

/* Free a job and what it owns; errno is kept (cleanup must not replace
 * the cause).  Any thread may call it for a job it owns. */
static void job_free(struct job *j)
{
    int saved = errno;
    if (j->release != NULL)
        j->release(j);
    coro__sys_free(j);
    errno = saved;
}

/* ------------------------------------------------------------------ */
/* Pool threads                                                        */

/* A thread's life: take jobs until told to stop and the queue is empty,
 * or until the pool has more threads than it may keep (the others take
 * the rest of the queue). */
static void *worker(void *arg)
{
    struct slot *slot = arg;
    struct coro__offload *p = slot->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->queue.head == NULL && !p->stop &&
               p->live <= p->max_threads) {
            p->idle++;
            pthread_cond_wait(&p->work, &p->mu);
            p->idle--;
        }
        if (p->queue.head == NULL || p->live > p->max_threads)
            break;
        struct job *j = p->queue.head;
        list_remove(&p->queue, j);
        j->state = JOB_RUNNING;
        list_push(&p->running, j);
        pthread_mutex_unlock(&p->mu);

        j->run(j);

        pthread_mutex_lock(&p->mu);
        list_remove(&p->running, j);
        if (j->state == JOB_ABANDONED) {
            pthread_mutex_unlock(&p->mu);
            job_free(j); /* nobody waits: we finish last */
            pthread_mutex_lock(&p->mu);
            continue;
        }
        j->state = JOB_DONE;
        list_push(&p->done, j);
        if (!p->posted) {
            /* The first finished job since the last delivery wakes the
             * loop; later ones ride along.  Posting outside the mutex
             * keeps the loop's callback from waiting for us. */
            p->posted = true;
            pthread_mutex_unlock(&p->mu);
            coro__remote_post(p->s, &p->remote);
            pthread_mutex_lock(&p->mu);
        }
    }
    p->live--;
    slot->alive = false;
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Start one more thread (pool mutex held).  0, or -1 with errno. */
static int thread_start(struct coro__offload *p)
{
    struct slot *slot = NULL;
    for (int i = 0; i < MAX_THREADS && slot == NULL; i++)
        if (!p->slots[i].alive)
            slot = &p->slots[i];
    if (slot->started) {
        /* It left its loop after a shrink; collect it (it holds no lock
         * on its way out, so this cannot wait for us). */
        pthread_join(slot->tid, NULL);
        slot->started = false;
    }
    /* Pool threads must never receive the application's signals. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    slot->pool = p;
    int rc = pthread_create(&slot->tid, NULL, worker, slot);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    slot->started = slot->alive = true;
    p->live++;
    return 0;
}

/* Make every thread leave and join it (loop thread, mutex not held).
 * Threads finish the job they run first, abandoned ones included. */
static void threads_stop(struct coro__offload *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < MAX_THREADS; i++) {
        struct slot *slot = &p->slots[i];
        if (slot->started) {
            pthread_join(slot->tid, NULL);
            slot->started = slot->alive = false;
        }
    }
    pthread_mutex_lock(&p->mu);
    p->stop = false;
    pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------------------ */
/* Delivery on the loop thread                                         */

/* The pool's remote record ran on the loop: wake the waiter of every job
 * finished since the last delivery. */
static void deliver(struct coro__remote *r)
{
    struct coro__offload *p =
        (struct coro__offload *)((char *)r -
                                 offsetof(struct coro__offload, remote));
    pthread_mutex_lock(&p->mu);
    struct job *list = list_take(&p->done);
    p->posted = false; /* the next finished job posts again */
    for (struct job *j = list; j != NULL; j = j->next)
        j->state = JOB_DELIVERED;
    pthread_mutex_unlock(&p->mu);
    /* An interrupted waiter (woken already) finds DELIVERED and takes
     * the result anyway, as coro_join() keeps a status that came. */
    for (struct job *j = list, *next; j != NULL; j = next) {
        next = j->next;
        coro__wake(j->waiter, 0);
    }
}

/* ------------------------------------------------------------------ */
/* fork()                                                              */

/* The pool the forking thread locked in prepare, so no list is half
 * changed at the fork; NULL when it has none. */
static __thread struct coro__offload *fork_pool;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    struct sched *s = coro__tls_sched;
    fork_pool = s != NULL ? s->offload : NULL;
    if (fork_pool != NULL)
        pthread_mutex_lock(&fork_pool->mu);
}

static void fork_parent(void)
{
    if (fork_pool != NULL)
        pthread_mutex_unlock(&fork_pool->mu);
}

/*
 * In the child, the pool threads are gone and the jobs in flight belong to
 * the parent, which runs them.  A waiter of a queued or running job fails
 * with ECANCELED; a finished job is delivered; abandoned ones are freed.
 * New threads start with the next job.
 */
static void fork_child(void)
{
    struct coro__offload *p = fork_pool;
    if (p == NULL)
        return;
    pthread_mutex_unlock(&p->mu);
    /* Idle workers were parked in it: its waiter counts are stale. */
    pthread_cond_destroy(&p->work);
    pthread_cond_init(&p->work, NULL);
    for (int i = 0; i < MAX_THREADS; i++)
        p->slots[i].started = p->slots[i].alive = false;
    p->live = p->idle = 0;
    p->posted = false; /* the loop's remote queue is reset too (fd.c) */
    struct job *lists[3] = {list_take(&p->queue), list_take(&p->running),
                            list_take(&p->done)};
    for (int l = 0; l < 3; l++) {
        for (struct job *j = lists[l], *next; j != NULL; j = next) {
            next = j->next;
            if (j->state == JOB_ABANDONED) {
                job_free(j);
                continue;
            }
            if (j->state != JOB_DONE)
                j->fail_err = ECANCELED;
            j->state = JOB_DELIVERED;
            coro__wake(j->waiter, 0);
        }
    }
}

static void atfork_register(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ------------------------------------------------------------------ */
/* The pool of a scheduler                                             */

/* s's pool, made (without threads) on first use.  NULL with errno. */
static struct coro__offload *pool_get(struct sched *s)
{
    if (CORO__LIKELY(s->offload != NULL))
        return s->offload;
    pthread_once(&atfork_once, atfork_register);
    struct coro__offload *p = coro__sys_calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    int rc = pthread_mutex_init(&p->mu, NULL);
    if (rc == 0 && (rc = pthread_cond_init(&p->work, NULL)) != 0)
        pthread_mutex_destroy(&p->mu);
    if (rc != 0) {
        coro__sys_free(p);
        errno = rc;
        return NULL;
    }
    p->s = s;
    p->max_threads = DEFAULT_THREADS;
    p->remote.run = deliver;
    s->offload = p;
    return p;
}

/*
 * Queue j (its caller's wait w has passed coro__wait_begin()) and park
 * until it is done.  On 0 the job has run and was delivered: the caller
 * takes j->result and j->err, then frees j.  On -1 (errno) j is freed or
 * left to the worker running it; the caller must not touch it.
 */
static int job_wait(struct sched *s, struct job *j, struct coro__wait *w)
{
    struct coro__offload *p = pool_get(s);
    if (p == NULL || coro__remote_enable(s) != 0) {
        job_free(j);
        return -1;
    }
    j->waiter = w;
    w->obj = j;
    pthread_mutex_lock(&p->mu);
    /* A thread for each job beyond the idle ones, up to the limit. */
    if (p->queue.len + 1 > (size_t)p->idle && p->live < p->max_threads &&
        thread_start(p) != 0 && p->live == 0) {
        pthread_mutex_unlock(&p->mu);
        job_free(j); /* no thread at all: fail; otherwise queue anyway */
        return -1;
    }
    j->state = JOB_QUEUED;
    list_push(&p->queue, j);
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);

    p->waiting++;
    coro__io_hold(s, +1);
    coro__wait_park(w); /* its errno matters only if not delivered */
    int err = errno;
    coro__io_hold(s, -1);
    p->waiting--;
    /* Woken by the job, a deadline or an interrupt: unless the job was
     * delivered already, give it up. */
    pthread_mutex_lock(&p->mu);
    enum job_state st = j->state;
    if (st == JOB_QUEUED)
        list_remove(&p->queue, j);
    else if (st == JOB_DONE)
        list_remove(&p->done, j);
    else if (st == JOB_RUNNING)
        j->state = JOB_ABANDONED;
    pthread_mutex_unlock(&p->mu);
    if (st == JOB_DELIVERED && j->fail_err != 0) {
        /* Cancelled in a fork() child: the job is the parent's. */
        if (w->cause == CORO__WOKEN_BY_OBJECT)
            err = j->fail_err;
        job_free(j);
        errno = err;
        return -1;
    }
    if (st == JOB_DELIVERED) {
        /* The result came first: keep it.  An interrupt that replaced the
         * wake-up fails the next blocking call instead; a passed deadline
         * needs nothing kept, as the next wait sees it (as coro_join()). */
        if (w->cause == CORO__WOKEN_BY_INTERRUPT)
            s->current->pending_err = err;
        return 0;
    }
    if (st != JOB_RUNNING)
        job_free(j); /* never ran, or its result is not wanted */
    errno = err;
    return -1;
}

void coro__offload_fini(struct sched *s)
{
    struct coro__offload *p = s->offload;
    if (p == NULL)
        return;
    threads_stop(p);
    /* No coroutine is left, so no job has a waiter: the lists are empty
     * (abandoned jobs were freed by their thread or their caller).  The
     * remote record may still sit in the loop's queue, which coro_fini()
     * frees next without running it. */
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    coro__sys_free(p);
    s->offload = NULL;
}

/* ------------------------------------------------------------------ */
/* Public: the pool                                                    */

int coro_offload_set_threads(int n)
{
    if (n < 1 || n > MAX_THREADS) {
        errno = EINVAL;
        return -1;
    }
    struct sched *s = coro__sched();
    if (s == NULL)
        return -1;
    struct coro__offload *p = pool_get(s);
    if (p == NULL)
        return -1;
    pthread_mutex_lock(&p->mu);
    int old = p->max_threads;
    p->max_threads = n;
    if (p->live > n) /* idle threads beyond n leave now, busy ones later */
        pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    return old;
}

int coro_offload_shutdown(void)
{
    struct sched *s = coro__tls_sched;
    struct coro__offload *p = s != NULL ? s->offload : NULL;
    if (p == NULL)
        return 0;
    if (p->waiting > 0) {
        errno = EBUSY;
        return -1;
    }
    threads_stop(p);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Public: any function                                                */

struct fn_job {
    struct job job; /* first member */
    intptr_t (*fn)(void *arg);
    void *arg;      /* borrowed from the caller */
};

static void fn_run(struct job *j)
{
    struct fn_job *f = (struct fn_job *)j;
    errno = 0;
    j->result = f->fn(f->arg);
    j->err = errno;
}

int coro_offload_at(intptr_t (*fn)(void *arg), void *arg, intptr_t *result,
                    const coro_site_t *site)
{
    if (fn == NULL) {
        errno = EINVAL;
        return -1;
    }
    CORO__WAIT(w, "offload", site);
    if (coro__wait_begin(&w) != 0)
        return -1;
    struct fn_job *f = coro__sys_malloc(sizeof *f);
    if (f == NULL)
        return -1;
    *f = (struct fn_job){.job.run = fn_run, .fn = fn, .arg = arg};
    if (job_wait(coro__tls_sched, &f->job, &w) != 0)
        return -1;
    if (result != NULL)
        *result = f->job.result;
    int err = f->job.err;
    job_free(&f->job);
    errno = err;
    return 0;
}

int(coro_offload)(intptr_t (*fn)(void *arg), void *arg, intptr_t *result)
{
    return coro_offload_at(fn, arg, result, NULL);
}

/* ------------------------------------------------------------------ */
/* Public: getaddrinfo                                                 */

struct gai_job {
    struct job job;        /* first member */
    const char *node;      /* copy in strings[], or NULL */
    const char *service;   /* copy in strings[], or NULL */
    bool has_hints;        /* hints below are the caller's */
    struct addrinfo hints; /* the four fields getaddrinfo reads */
    struct addrinfo *res;  /* result, owned until handed over */
    char strings[];        /* node and service, NUL-terminated */
};

static void gai_run(struct job *j)
{
    struct gai_job *g = (struct gai_job *)j;
    errno = 0;
    j->result = getaddrinfo(g->node, g->service,
                            g->has_hints ? &g->hints : NULL, &g->res);
    j->err = errno;
    if (j->result != 0)
        g->res = NULL;
}

static void gai_release(struct job *j)
{
    struct gai_job *g = (struct gai_job *)j;
    if (g->res != NULL)
        freeaddrinfo(g->res);
}

int coro_getaddrinfo_at(const char *node, const char *service,
                        const struct addrinfo *hints, struct addrinfo **res,
                        const coro_site_t *site)
{
    if (res == NULL) {
        errno = EINVAL;
        return EAI_SYSTEM;
    }
    CORO__WAIT(w, "getaddrinfo", site);
    if (coro__wait_begin(&w) != 0)
        return EAI_SYSTEM;
    size_t nlen = node != NULL ? strlen(node) + 1 : 0;
    size_t slen = service != NULL ? strlen(service) + 1 : 0;
    struct gai_job *g = coro__sys_malloc(sizeof *g + nlen + slen);
    if (g == NULL)
        return EAI_SYSTEM;
    *g = (struct gai_job){.job.run = gai_run, .job.release = gai_release};
    if (node != NULL)
        g->node = memcpy(g->strings, node, nlen);
    if (service != NULL)
        g->service = memcpy(g->strings + nlen, service, slen);
    if (hints != NULL) {
        /* Only these are read; the pointers must not follow the caller. */
        g->has_hints = true;
        g->hints.ai_flags = hints->ai_flags;
        g->hints.ai_family = hints->ai_family;
        g->hints.ai_socktype = hints->ai_socktype;
        g->hints.ai_protocol = hints->ai_protocol;
    }
    if (job_wait(coro__tls_sched, &g->job, &w) != 0)
        return EAI_SYSTEM;
    int rc = (int)g->job.result;
    int err = g->job.err;
    *res = g->res;
    g->res = NULL; /* handed over */
    job_free(&g->job);
    errno = err;
    return rc;
}

int(coro_getaddrinfo)(const char *node, const char *service,
                      const struct addrinfo *hints, struct addrinfo **res)
{
    return coro_getaddrinfo_at(node, service, hints, res, NULL);
}

/* ------------------------------------------------------------------ */
/* Public: pread and pwrite                                            */

/* A file transfer.  The job works on its own duplicate of the fd and its
 * own copy of the data: after a timeout the caller may close the fd (and
 * the number be reused) or free the buffer while the job still runs. */
struct file_job {
    struct job job;  /* first member */
    int fd;          /* duplicate, owned; closed with the record */
    bool write;      /* pwrite, else pread */
    size_t len;      /* bytes to transfer */
    off_t offset;    /* file offset */
    unsigned char data[]; /* len bytes: what to write, or what was read */
};

static void file_run(struct job *j)
{
    struct file_job *f = (struct file_job *)j;
    ssize_t n;
    do {
        errno = 0;
        n = f->write ? pwrite(f->fd, f->data, f->len, f->offset)
                     : pread(f->fd, f->data, f->len, f->offset);
    } while (n < 0 && errno == EINTR);
    j->result = n;
    j->err = errno;
}

static void file_release(struct job *j)
{
    close(((struct file_job *)j)->fd);
}

static ssize_t file_io(int fd, void *rbuf, const void *wbuf, size_t len,
                       off_t offset, struct coro__wait *w)
{
    const void *buf = wbuf != NULL ? wbuf : rbuf;
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if ((buf == NULL && len > 0) || len > SSIZE_MAX || offset < 0) {
        errno = EINVAL;
        return -1;
    }
    if (coro__wait_begin(w) != 0)
        return -1;
    struct file_job *f = coro__sys_malloc(sizeof *f + len);
    if (f == NULL)
        return -1;
    *f = (struct file_job){.job.run = file_run,
                           .write = wbuf != NULL,
                           .len = len,
                           .offset = offset};
    f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (f->fd < 0) {
        coro__sys_free(f);
        return -1;
    }
    f->job.release = file_release;
    if (wbuf != NULL && len > 0)
        memcpy(f->data, wbuf, len);
    if (job_wait(coro__tls_sched, &f->job, w) != 0)
        return -1;
    ssize_t n = f->job.result;
    int err = f->job.err;
    if (rbuf != NULL && n > 0)
        memcpy(rbuf, f->data, (size_t)n);
    job_free(&f->job);
    errno = err;
    return n;
}

ssize_t coro_pread_at(int fd, void *buf, size_t len, off_t offset,
                      const coro_site_t *site)
{
    CORO__WAIT(w, "pread", site);
    return file_io(fd, buf, NULL, len, offset, &w);
}

ssize_t(coro_pread)(int fd, void *buf, size_t len, off_t offset)
{
    return coro_pread_at(fd, buf, len, offset, NULL);
}

ssize_t coro_pwrite_at(int fd, const void *buf, size_t len, off_t offset,
                       const coro_site_t *site)
{
    CORO__WAIT(w, "pwrite", site);
    if (buf == NULL && len == 0)
        buf = ""; /* a zero-length write: still a write */
    return file_io(fd, NULL, buf, len, offset, &w);
}

ssize_t(coro_pwrite)(int fd, const void *buf, size_t len, off_t offset)
{
    return coro_pwrite_at(fd, buf, len, offset, NULL);
}
