/*
 * Diagnostics: print_stderr/write_stderr, log sinks, where, info, the exit
 * notifier and the on-signal dump of every coroutine.
 *
 * The dump runs inside a signal handler, possibly while a coroutine hogs
 * the CPU, so it formats with the coro__buf helpers (no stdio, no malloc)
 * and only reads the scheduler's lists.
 */
#include "coro_internal.h"

#include <dlfcn.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void coro__buf_str(struct coro__buf *b, const char *s)
{
    while (*s != '\0' && b->len < b->cap)
        b->p[b->len++] = *s++;
}

void coro__buf_num(struct coro__buf *b, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        tmp[n++] = '-';
    while (n > 0 && b->len < b->cap)
        b->p[b->len++] = tmp[--n];
}

void coro__buf_hex(struct coro__buf *b, uintptr_t v)
{
    char tmp[2 + 2 * sizeof v];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v != 0);
    coro__buf_str(b, "0x");
    while (n > 0 && b->len < b->cap)
        b->p[b->len++] = tmp[--n];
}

void coro__buf_write(const struct coro__buf *b, int fd)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = write(fd, b->p + off, b->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

void coro__buf_coro(struct coro__buf *b, const struct coro *co)
{
    coro__buf_str(b, "#");
    coro__buf_num(b, co->id);
    coro__buf_str(b, " '");
    coro__buf_str(b, co->name);
    coro__buf_str(b, "'");
}

const char *coro_state_name(int state)
{
    switch (state) {
    case CORO_NEW:
        return "new";
    case CORO_RUNNABLE:
        return "runnable";
    case CORO_RUNNING:
        return "running";
    case CORO_WAITING:
        return "waiting";
    case CORO_DEAD:
        return "dead";
    }
    return "?";
}

void coro__buf_site(struct coro__buf *b, const char *what, const void *addr,
                    const char *file, int line, const char *func,
                    bool symbolize)
{
    coro__buf_str(b, what);
    coro__buf_str(b, " at ");
    if (file != NULL) {
        coro__buf_str(b, file);
        coro__buf_str(b, ":");
        coro__buf_num(b, line);
        coro__buf_str(b, " in ");
        coro__buf_str(b, func != NULL ? func : "?");
        coro__buf_str(b, "()");
        return;
    }
    Dl_info di;
    coro__buf_hex(b, (uintptr_t)addr);
    /* dladdr is not async-signal-safe: skipped in the dump. */
    if (symbolize && dladdr(addr, &di) && di.dli_sname) {
        coro__buf_str(b, " in ");
        coro__buf_str(b, di.dli_sname);
        coro__buf_str(b, "()");
    }
}

/* Append where co waits: "what at file:line in func()" or an address. */
static void buf_where(struct coro__buf *b, const struct coro *co,
                      bool symbolize)
{
    const struct coro__wait *w = co->wait;
    if (w != NULL) {
        const coro_site_t *site = w->site;
        bool known = site != NULL && site->file != NULL;
        coro__buf_site(b, w->what, w->addr, known ? site->file : NULL,
                       known ? site->line : 0, known ? site->func : NULL,
                       symbolize);
        coro__buf_str(b, " ");
    }
    coro__buf_str(b, "(");
    coro__buf_str(b, coro_state_name(co->state));
    coro__buf_str(b, ")");
}

static int format_where(const struct coro *co, char *buf, size_t len)
{
    char mem[512];
    struct coro__buf b = {mem, 0, sizeof mem};
    buf_where(&b, co, true);
    if (len > 0) {
        size_t n = b.len < len - 1 ? b.len : len - 1;
        memcpy(buf, mem, n);
        buf[n] = '\0';
    }
    return (int)b.len;
}

int coro_where(const coro_t *c, char *buf, size_t len)
{
    struct coro *co = coro__check(c);
    if (co == NULL)
        return -1;
    if (buf == NULL && len > 0) {
        errno = EINVAL;
        return -1;
    }
    return format_where(co, buf, len);
}

/* One "#id 'name': where" line per coroutine to fd. */
static int dump_all(int fd, bool symbolize)
{
    struct sched *s = coro__tls_sched;
    int n = 0;
    for (const struct coro *co = s ? s->all_head : NULL; co;
         co = co->all_next, n++) {
        char mem[600];
        struct coro__buf b = {mem, 0, sizeof mem - 1};
        coro__buf_coro(&b, co);
        coro__buf_str(&b, ": ");
        buf_where(&b, co, symbolize);
        b.p[b.len++] = '\n'; /* cap leaves room for it */
        coro__buf_write(&b, fd);
    }
    return n;
}

int coro_where_all(int fd)
{
    return dump_all(fd, true);
}

int coro_info(const coro_t *c, coro_info_t *out)
{
    struct coro *co = coro__check(c);
    if (co == NULL)
        return -1;
    if (out == NULL) {
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->id = co->id;
    memcpy(out->name, co->name, sizeof out->name);
    out->state = co->state;
    if (co->wait != NULL) {
        out->wait_what = co->wait->what;
        if (co->wait->site != NULL)
            out->wait_site = *co->wait->site;
        out->wait_addr = co->wait->addr;
    }
    out->switches = co->switches;
    out->run_ticks = co->run_ticks;
    out->max_slice_ticks = co->max_slice_ticks;
    out->max_selfish_acts = co->max_selfish_acts;
    out->selfish_yields = co->selfish_yields;
    out->stack_size = (size_t)(co->stack.hi - co->stack.lo);
    out->stack_guarded = co->stack.guarded;
    return 0;
}

/* ------------------------------------------------------------------ */

void coro_write_stderr(const char *buf, size_t len)
{
    if (buf == NULL)
        return;
    struct coro__buf b = {(char *)buf, len, len};
    coro__buf_write(&b, 2);
}

size_t coro__stamp(char *buf, size_t len)
{
    int64_t usec = tsc_now_posix_usec();
    time_t sec = (time_t)(usec / 1000000);
    struct tm tm;
    localtime_r(&sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    coro_t *co = coro_current();
    int k = snprintf(buf + n, len - n, ".%06d #%d: ", (int)(usec % 1000000),
                     co ? coro_id(co) : 0);
    if (k > 0)
        n += (size_t)k < len - n ? (size_t)k : len - n - 1;
    return n;
}

/* ------------------------------------------------------------------ */
/* Log sinks                                                           */

/* One registered sink.  Per thread: a line reaches the sinks of the thread
 * that printed it, so a sink needs no lock and sees only its loop's
 * coroutines (the offload pool's threads have none). */
struct log_sink {
    coro_log_sink_fn fn; /* NULL: free slot */
    void *ud;            /* passed back to fn */
};
static __thread struct log_sink log_sinks[CORO_LOG_SINKS_MAX];
static __thread int log_sink_count; /* slots in use */
static __thread bool log_in_sink;   /* delivering: no recursion */

int coro_log_sink_add(coro_log_sink_fn fn, void *ud)
{
    if (fn == NULL) {
        errno = EINVAL;
        return -1;
    }
    int free_slot = -1;
    for (int i = 0; i < CORO_LOG_SINKS_MAX; i++) {
        if (log_sinks[i].fn == fn && log_sinks[i].ud == ud) {
            errno = EEXIST;
            return -1;
        }
        if (log_sinks[i].fn == NULL && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0) {
        errno = EAGAIN;
        return -1;
    }
    log_sinks[free_slot] = (struct log_sink){fn, ud};
    log_sink_count++;
    return 0;
}

int coro_log_sink_remove(coro_log_sink_fn fn, void *ud)
{
    for (int i = 0; fn != NULL && i < CORO_LOG_SINKS_MAX; i++) {
        if (log_sinks[i].fn == fn && log_sinks[i].ud == ud) {
            log_sinks[i].fn = NULL;
            log_sink_count--;
            return 0;
        }
    }
    errno = ENOENT;
    return -1;
}

void coro__log_emit(const char *text, size_t len)
{
    struct coro__buf b = {(char *)text, len, len};
    coro__buf_write(&b, 2);
    if (log_sink_count == 0 || log_in_sink)
        return; /* a sink that prints reaches stderr only */
    /* A snapshot, so a sink may remove itself (or another) safely. */
    struct log_sink snap[CORO_LOG_SINKS_MAX];
    memcpy(snap, log_sinks, sizeof snap);
    int saved = errno;
    log_in_sink = true;
    for (int i = 0; i < CORO_LOG_SINKS_MAX; i++)
        if (snap[i].fn != NULL)
            snap[i].fn(text, len, snap[i].ud);
    log_in_sink = false;
    errno = saved;
}

void coro_print_stderr(const char *fmt, ...)
{
    if (fmt == NULL)
        return;
    char line[1024];
    size_t n = coro__stamp(line, sizeof line);
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (k > 0)
        n += (size_t)k < sizeof line - n ? (size_t)k : sizeof line - n - 1;
    if (n > 0 && line[n - 1] != '\n' && n < sizeof line)
        line[n++] = '\n';
    else if (n == sizeof line)
        line[n - 1] = '\n';
    coro__log_emit(line, n);
}

void coro__default_notifier(coro_t *c, int status, int err)
{
    if (err == ECANCELED)
        return; /* cancelled on purpose: not worth a line */
    const struct coro *co = c;
    coro_print_stderr("coroutine #%d '%s' failed: status %d (%s)", co->id,
                      co->name, status, err ? strerror(err) : "no errno");
}

/* ------------------------------------------------------------------ */
/* Dump on a signal                                                    */

static void dump_handler(int sig)
{
    (void)sig;
    int saved = errno;
    char mem[128];
    struct coro__buf b = {mem, 0, sizeof mem};
    struct sched *s = coro__tls_sched;
    coro__buf_str(&b, "coro: ");
    coro__buf_num(&b, s ? (int64_t)s->count : 0);
    coro__buf_str(&b, " coroutines; running: ");
    if (s != NULL && s->current != NULL)
        coro__buf_coro(&b, s->current);
    else
        coro__buf_str(&b, "none (event loop)");
    coro__buf_str(&b, "\n");
    coro__buf_write(&b, 2);
    dump_all(2, false);
    errno = saved;
}

static int dump_signo;              /* signal the dump is installed on */
static struct sigaction dump_old;   /* its handler before ours */

int coro_dump_on_signal(int signo)
{
    if (signo < 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP ||
        signo == SIGSEGV) {
        errno = EINVAL;
        return -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (signo == dump_signo)
        return 0;
    /* Install on the new signal first, then give the old one its handler
     * back, undoing the first step if the second fails. */
    struct sigaction prev;
    sa.sa_handler = dump_handler;
    if (signo != 0 && sigaction(signo, &sa, &prev) != 0)
        return -1;
    if (dump_signo != 0 && sigaction(dump_signo, &dump_old, NULL) != 0) {
        int saved = errno;
        if (signo != 0)
            sigaction(signo, &prev, NULL);
        errno = saved;
        return -1;
    }
    dump_signo = signo;
    if (signo != 0)
        dump_old = prev;
    return 0;
}
