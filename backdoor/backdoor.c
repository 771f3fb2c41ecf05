/*
 * The backdoor: start and stop, the listeners and their placement, the
 * registry of application commands and variables, the bad-token limit.
 *
 * Lifetime: struct coro_backdoor is shared by the handle and by every
 * coroutine of ours (listeners, sessions), each holding a reference; stop
 * drops the handle's and the memory goes with the last coroutine, so a
 * session may stop its own backdoor from a command.
 */
#include "backdoor_internal.h"

#include <tsc_time/tsc_time.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

/* Defaults of coro_backdoor_opts_t. */
#define DEFAULT_SESSIONS 8
#define DEFAULT_IDLE_SEC 600.0 /* long enough to read a stack trace */
#define DEFAULT_LOGIN_SEC 30.0 /* to paste a token, not to hold a slot */
#define DEFAULT_SEND_SEC                                                       \
    10.0 /* a client that reads nothing this long                              \
            is gone or stuck */
#define SESSIONS_MAX 1024
/* Sessions run handlers of the application: room for their frames (only
 * the pages touched are resident). */
#define SESSION_STACK (256 * 1024)

/* Bad tokens: each costs its session TOKEN_DELAY_SEC (session.c), and
 * after TOKEN_FAILS_MAX of them in TOKEN_WINDOW_SEC new TCP sessions are
 * refused until the window ends.  A 128-bit token is out of reach of
 * guessing anyway; this keeps a script from filling the log. */
#define TOKEN_FAILS_MAX  5
#define TOKEN_WINDOW_SEC 10.0

/* ------------------------------------------------------------------ */
/* Removing unix sockets at exit                                       */

/* Backdoors whose unix socket is still linked.  Process-wide, as exit()
 * is: a mutex, because several threads may each run a backdoor. */
static pthread_mutex_t linked_lock = PTHREAD_MUTEX_INITIALIZER;
static coro_backdoor_t *linked[64]; /* NULL: free slot */
static struct stat linked_st[64];   /* what each socket was when made */
static bool atexit_done;

/* Remove bd's socket if the path still names the socket bd made (not one
 * that replaced it since). */
static void unlink_ours(const char *path, const struct stat *made)
{
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == made->st_dev && st.st_ino == made->st_ino)
        unlink(path);
}

static void unlink_all_at_exit(void)
{
    pthread_mutex_lock(&linked_lock);
    for (size_t i = 0; i < sizeof linked / sizeof linked[0]; i++)
        if (linked[i] != NULL)
            unlink_ours(linked[i]->unix_path, &linked_st[i]);
    pthread_mutex_unlock(&linked_lock);
}

static int link_register(coro_backdoor_t *bd, const struct stat *st)
{
    int rc = -1;
    pthread_mutex_lock(&linked_lock);
    if (!atexit_done && atexit(unlink_all_at_exit) == 0)
        atexit_done = true;
    for (size_t i = 0; i < sizeof linked / sizeof linked[0]; i++) {
        if (linked[i] == NULL) {
            linked[i] = bd;
            linked_st[i] = *st;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&linked_lock);
    if (rc != 0)
        errno = ENOMEM; /* 64 unix backdoors in one process: no room */
    return rc;
}

/* Forget bd; remove its socket if remove is set. */
static void link_drop(coro_backdoor_t *bd, bool remove)
{
    pthread_mutex_lock(&linked_lock);
    for (size_t i = 0; i < sizeof linked / sizeof linked[0]; i++) {
        if (linked[i] == bd) {
            if (remove)
                unlink_ours(bd->unix_path, &linked_st[i]);
            linked[i] = NULL;
        }
    }
    pthread_mutex_unlock(&linked_lock);
}

/* ------------------------------------------------------------------ */
/* Placing the unix socket                                             */

/* Whether a program listens on the socket at path: 1 yes, 0 no (a stale
 * socket: connect is refused), -1 with errno when it cannot tell. */
static int unix_alive(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int err = errno;
    close(fd);
    if (rc == 0 || err == EAGAIN || err == EINPROGRESS)
        return 1; /* accepted, or a full backlog: alive either way */
    if (err == ECONNREFUSED)
        return 0;
    errno = err;
    return -1;
}

/*
 * Listen on path with mode 0600 from the first moment: bind in a fresh
 * 0700 directory next to path (nobody else can reach the socket there),
 * chmod, then rename onto path, which also replaces a stale socket
 * atomically.  A live socket or any other file at path is refused.  (A
 * socket made at path between our check and the rename would be
 * replaced: a window of microseconds, for a path the user chose.)
 */
static int listen_unix(coro_backdoor_t *bd, const char *path)
{
    size_t len = strlen(path);
    if (len == 0 || len + 12 >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        errno = EINVAL;
        return -1;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            errno = EEXIST;
            return -1;
        }
        int alive = unix_alive(path);
        if (alive != 0) {
            if (alive > 0)
                errno = EADDRINUSE;
            return -1;
        }
    } else if (errno != ENOENT) {
        return -1;
    }
    char dir[128], sock[140], addr[150];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".bdXXXXXX");
    else
        snprintf(dir, sizeof dir, "%.*s/.bdXXXXXX", (int)(slash - path), path);
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(sock, sizeof sock, "%s/s", dir);
    snprintf(addr, sizeof addr, "unix:%s", sock);
    int fd = coro_listen(addr, 16);
    if (fd < 0)
        goto fail_dir;
    if (chmod(sock, 0600) != 0 || lstat(sock, &st) != 0 ||
        rename(sock, path) != 0)
        goto fail_sock;
    rmdir(dir);
    memcpy(bd->unix_path, path, len + 1);
    if (link_register(bd, &st) != 0) {
        int saved = errno;
        unlink_ours(path, &st);
        coro_close(fd);
        errno = saved;
        return -1;
    }
    bd->unix_linked = true;
    return fd;
fail_sock:;
    int saved = errno;
    unlink(sock);
    coro_close(fd);
    errno = saved;
fail_dir:
    saved = errno;
    rmdir(dir);
    errno = saved;
    return -1;
}

/* ------------------------------------------------------------------ */
/* TCP                                                                 */

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a =
            &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

/* Check tcp_addr and listen on it; the real address goes to bd. */
static int listen_tcp(coro_backdoor_t *bd, const char *addr, bool any)
{
    if (strncmp(addr, "tcp:", 4) == 0)
        addr += 4;
    char buf[80];
    if (strncmp(addr, "localhost:", 10) == 0) {
        snprintf(buf, sizeof buf, "127.0.0.1:%s", addr + 10);
        addr = buf;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    if (strncmp(addr, "udp:", 4) == 0 || strncmp(addr, "unix:", 5) == 0 ||
        coro_addr_parse(addr, &ss, &sl) != 0) {
        errno = EINVAL;
        return -1;
    }
    if (!any && !is_loopback(&ss)) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    int fd = coro_listen(addr, 16);
    if (fd < 0)
        return -1;
    sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        coro_addr_format((struct sockaddr *)&ss, sl, bd->tcp_addr,
                         sizeof bd->tcp_addr) < 0)
        snprintf(bd->tcp_addr, sizeof bd->tcp_addr, "%.63s", addr);
    return fd;
}

static bool token_ok(const char *t)
{
    size_t n = strlen(t);
    if (n < 8 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (t[i] <= ' ' || t[i] > '~')
            return false;
    return true;
}

/* 32 hex digits from the system's entropy. */
static char *make_token(void)
{
    unsigned char raw[16];
    if (getentropy(raw, sizeof raw) != 0)
        return NULL;
    char *t = malloc(2 * sizeof raw + 1);
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(t + 2 * i, 3, "%02x", raw[i]);
    return t;
}

bool coro__bd_tcp_locked(coro_backdoor_t *bd, double *wait_sec)
{
    double age = tsc_ticks_to_sec(coro_now() - bd->fail_window_start);
    if (bd->fail_count < TOKEN_FAILS_MAX || age >= TOKEN_WINDOW_SEC)
        return false;
    *wait_sec = TOKEN_WINDOW_SEC - age;
    if (!bd->refusal_logged) {
        bd->refusal_logged = true;
        coro_print_stderr("backdoor: %d bad tokens: refusing TCP sessions "
                          "for %.0f s",
                          bd->fail_count, ceil(*wait_sec));
    }
    return true;
}

void coro__bd_tcp_failed(coro_backdoor_t *bd, const char *peer)
{
    int64_t now = coro_now();
    if (bd->fail_count == 0 ||
        tsc_ticks_to_sec(now - bd->fail_window_start) >= TOKEN_WINDOW_SEC) {
        bd->fail_window_start = now;
        bd->fail_count = 0;
        bd->refusal_logged = false;
    }
    bd->fail_count++;
    coro_print_stderr("backdoor: bad token from %s (%d in %.0f s)", peer,
                      bd->fail_count, TOKEN_WINDOW_SEC);
}

/* ------------------------------------------------------------------ */
/* Listeners and sessions                                              */

/* Tell the client on fd that every session is taken (never waits). */
static void refuse_full(const coro_backdoor_t *bd, int fd)
{
    char msg[96];
    int n = snprintf(msg, sizeof msg,
                     "error: too many sessions (%d open); try later\r\n",
                     bd->nsessions);
    /* Best effort, never waiting: nothing else is queued on fd. */
    (void)!send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Make room for one more TCP client waiting to give the token: the one
 * that has waited longest is told so and closed (its session ends quietly,
 * without counting a bad token). */
static void push_out_oldest_pending(coro_backdoor_t *bd)
{
    coro_backdoor_session_t *old = NULL;
    for (coro_backdoor_session_t *s = bd->sessions; s != NULL; s = s->next)
        if (s->pending && !s->pushed_out)
            old = s; /* newest first: the last one found is the oldest */
    if (old == NULL)
        return;
    old->pushed_out = true;
    bd->npending--;
    coro_interrupt(old->co, ECONNABORTED);
}

static void open_session(coro_backdoor_t *bd, int fd, bool tcp,
                         const struct sockaddr_storage *ss, socklen_t sl)
{
    if (bd->nsessions >= bd->max_sessions) {
        refuse_full(bd, fd);
        coro_close(fd);
        return;
    }
    if (tcp && bd->npending >= bd->max_sessions)
        push_out_oldest_pending(bd);
    coro_backdoor_session_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        coro_close(fd);
        return;
    }
    s->bd = bd;
    s->fd = fd;
    s->tcp = tcp;
    if (!tcp || coro_addr_format((const struct sockaddr *)ss, sl, s->peer,
                                 sizeof s->peer) < 0)
        snprintf(s->peer, sizeof s->peer, "%s",
                 tcp ? "tcp" : "the unix socket");
    coro_opts_t o = {.name = "backdoor session", .stack_size = SESSION_STACK};
    s->co = coro_spawn_opts(coro__bd_session_main, s, &o);
    if (s->co == NULL) {
        coro_print_stderr("backdoor: no session for %s: %s", s->peer,
                          strerror(errno));
        free(s);
        coro_close(fd);
        return;
    }
    s->next = bd->sessions;
    if (s->next != NULL)
        s->next->prev = s;
    bd->sessions = s;
    if (tcp) {
        s->pending = true;
        bd->npending++;
    } else {
        s->counted = true;
        bd->nsessions++;
    }
    bd->refs++;
}

static int accept_loop(void *arg)
{
    struct coro__bd_listener *l = arg;
    coro_backdoor_t *bd = l->bd;
    while (!bd->stopping) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = coro_accept(l->fd, (struct sockaddr *)&ss, &sl);
        if (bd->stopping) { /* stop closed the listener */
            if (fd >= 0)
                coro_close(fd);
            break;
        }
        if (fd >= 0) {
            open_session(bd, fd, l->tcp, &ss, sl);
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM) {
            coro_sleep(0.1); /* the client stays queued */
            continue;
        }
        if (errno == ECANCELED) /* the program winds down: so do we */
            break;
        if (errno != EINTR && errno != ETIMEDOUT) {
            coro_print_stderr("backdoor: accept: %s", strerror(errno));
            break;
        }
    }
    if (!bd->stopping && l->fd >= 0) {
        coro_close(l->fd);
        l->fd = -1;
    }
    l->co = NULL;
    coro__bd_unref(bd);
    return 0;
}

static int spawn_listener(coro_backdoor_t *bd, struct coro__bd_listener *l)
{
    l->co =
        coro_spawn(accept_loop, l, l->tcp ? "backdoor tcp" : "backdoor unix");
    if (l->co == NULL)
        return -1;
    bd->refs++;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                      */

static bool opts_ok(const coro_backdoor_opts_t *o)
{
    if (o->unix_path == NULL && o->tcp_addr == NULL)
        return false;
    if (o->max_sessions < 0 || o->max_sessions > SESSIONS_MAX)
        return false;
    if (!(o->idle_timeout_sec >= 0) || !(o->send_timeout_sec >= 0) ||
        isinf(o->send_timeout_sec) || !(o->login_timeout_sec >= 0))
        return false;
    if (o->banner != NULL && strlen(o->banner) > 1024)
        return false;
    return o->token == NULL || token_ok(o->token);
}

/* Undo a partial start; errno is kept. */
static void start_failed(coro_backdoor_t *bd)
{
    int saved = errno;
    for (int i = 0; i < 2; i++)
        if (bd->lst[i].fd >= 0)
            coro_close(bd->lst[i].fd);
    if (bd->unix_linked)
        link_drop(bd, true);
    if (bd->out_dirfd >= 0)
        close(bd->out_dirfd);
    free(bd->token);
    free(bd);
    errno = saved;
}

coro_backdoor_t *coro_backdoor_start(const coro_backdoor_opts_t *o)
{
    if (o == NULL || !opts_ok(o)) {
        errno = EINVAL;
        return NULL;
    }
    coro_backdoor_t *bd = calloc(1, sizeof *bd);
    if (bd == NULL)
        return NULL;
    bd->refs = 1;
    bd->lst[0] = (struct coro__bd_listener){.bd = bd, .fd = -1};
    bd->lst[1] = (struct coro__bd_listener){.bd = bd, .fd = -1, .tcp = true};
    bd->out_dirfd = -1;
    bd->max_sessions = o->max_sessions ? o->max_sessions : DEFAULT_SESSIONS;
    bd->idle_sec = o->idle_timeout_sec ? o->idle_timeout_sec : DEFAULT_IDLE_SEC;
    if (isinf(bd->idle_sec))
        bd->idle_sec = 0; /* coro_fd_set_timeout()'s "none" */
    bd->send_sec = o->send_timeout_sec ? o->send_timeout_sec : DEFAULT_SEND_SEC;
    bd->login_sec =
        o->login_timeout_sec ? o->login_timeout_sec : DEFAULT_LOGIN_SEC;
    if (isinf(bd->login_sec) ||
        (bd->idle_sec > 0 && bd->login_sec > bd->idle_sec))
        bd->login_sec = bd->idle_sec; /* the idle timeout is the bound */
    if (o->banner != NULL)
        snprintf(bd->banner, sizeof bd->banner, "%s", o->banner);
    else
        snprintf(bd->banner, sizeof bd->banner,
                 "coro backdoor, pid %ld; 'help' lists the commands",
                 (long)getpid());
    bd->start_ticks = coro_now();
    if (o->output_dir != NULL) {
        bd->out_dirfd = open(o->output_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (bd->out_dirfd < 0)
            goto fail;
    }
    if (o->tcp_addr != NULL) {
        bd->token = o->token ? strdup(o->token) : make_token();
        if (bd->token == NULL)
            goto fail;
        bd->token_len = strlen(bd->token);
        bd->lst[1].fd = listen_tcp(bd, o->tcp_addr, o->allow_non_loopback);
        if (bd->lst[1].fd < 0)
            goto fail;
    }
    if (o->unix_path != NULL) {
        bd->lst[0].fd = listen_unix(bd, o->unix_path);
        if (bd->lst[0].fd < 0)
            goto fail;
    }
    for (int i = 0; i < 2; i++) {
        if (bd->lst[i].fd >= 0 && spawn_listener(bd, &bd->lst[i]) != 0) {
            if (i == 1 && bd->lst[0].co != NULL) {
                /* The first listener must not outlive the failed start:
                 * stopped, it ends when the loop next runs it. */
                int err = errno;
                coro_backdoor_stop(bd);
                errno = err;
                return NULL;
            }
            goto fail;
        }
    }
    if (o->tcp_addr != NULL && o->token == NULL)
        coro_print_stderr("backdoor: tcp:%s token %s", bd->tcp_addr, bd->token);
    return bd;
fail:
    start_failed(bd);
    return NULL;
}

int coro_backdoor_stop(coro_backdoor_t *bd)
{
    if (bd == NULL || bd->stopping) {
        errno = EINVAL;
        return -1;
    }
    bd->stopping = true;
    for (int i = 0; i < 2; i++) {
        if (bd->lst[i].fd >= 0) {
            coro_close(bd->lst[i].fd); /* wakes the accept loop: EBADF */
            bd->lst[i].fd = -1;
        }
    }
    if (bd->unix_linked) {
        link_drop(bd, true);
        bd->unix_linked = false;
    }
    /* A session that stops us from a command ends when the command
     * returns, after sending its output. */
    for (coro_backdoor_session_t *s = bd->sessions; s != NULL; s = s->next)
        if (s->co != coro_current())
            coro_interrupt(s->co, ECANCELED);
    coro__bd_unref(bd);
    return 0;
}

void coro__bd_unref(coro_backdoor_t *bd)
{
    if (--bd->refs > 0)
        return;
    if (bd->unix_linked)
        link_drop(bd, false); /* only stop removes the socket */
    for (size_t i = 0; i < bd->ncmds; i++) {
        free((char *)bd->cmds[i].name);
        free((char *)bd->cmds[i].usage);
        free((char *)bd->cmds[i].help);
    }
    free(bd->cmds);
    for (size_t i = 0; i < bd->nvars; i++) {
        free((char *)bd->vars[i].name);
        free((char *)bd->vars[i].help);
    }
    free(bd->vars);
    if (bd->out_dirfd >= 0)
        close(bd->out_dirfd);
    free(bd->token);
    free(bd);
}

/* s, or NULL with errno EINVAL (bd NULL) or ENOENT (s NULL or empty). */
static const char *present(const coro_backdoor_t *bd, const char *s)
{
    if (bd == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (s == NULL || s[0] == '\0') {
        errno = ENOENT;
        return NULL;
    }
    return s;
}

const char *coro_backdoor_tcp_addr(const coro_backdoor_t *bd)
{
    return present(bd, bd != NULL ? bd->tcp_addr : NULL);
}

const char *coro_backdoor_unix_path(const coro_backdoor_t *bd)
{
    return present(bd, bd != NULL ? bd->unix_path : NULL);
}

const char *coro_backdoor_token(const coro_backdoor_t *bd)
{
    return present(bd, bd != NULL ? bd->token : NULL);
}

bool coro__bd_owns(const coro_backdoor_t *bd, const coro_t *co)
{
    for (int i = 0; i < 2; i++)
        if (bd->lst[i].co == co)
            return true;
    for (const coro_backdoor_session_t *s = bd->sessions; s; s = s->next)
        if (s->co == co || s->pump == co)
            return true;
    return false;
}

/* ------------------------------------------------------------------ */
/* The registry                                                        */

const struct coro__bd_cmd *coro__bd_find_cmd(const coro_backdoor_t *bd,
                                             const char *name)
{
    for (size_t i = 0; i < coro__bd_builtin_count; i++)
        if (strcmp(coro__bd_builtins[i].name, name) == 0)
            return &coro__bd_builtins[i];
    for (size_t i = 0; i < bd->ncmds; i++)
        if (strcmp(bd->cmds[i].name, name) == 0)
            return &bd->cmds[i];
    return NULL;
}

static ssize_t find_var(const coro_backdoor_t *bd, const char *name)
{
    for (size_t i = 0; i < bd->nvars; i++)
        if (strcmp(bd->vars[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

/* 0 if name is free for a new command or variable, else -1 and errno. */
static int name_free(const coro_backdoor_t *bd, const char *name)
{
    if (!coro__bd_name_ok(name)) {
        errno = EINVAL;
        return -1;
    }
    if (coro__bd_find_cmd(bd, name) != NULL || find_var(bd, name) >= 0) {
        errno = EEXIST;
        return -1;
    }
    return 0;
}

int coro_backdoor_add_command(coro_backdoor_t *bd, const char *name,
                              const char *usage, const char *help,
                              coro_backdoor_cmd_fn fn, void *ud)
{
    if (bd == NULL || name == NULL || usage == NULL || help == NULL ||
        fn == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (name_free(bd, name) != 0)
        return -1;
    struct coro__bd_cmd *cmds =
        realloc(bd->cmds, (bd->ncmds + 1) * sizeof *cmds);
    if (cmds == NULL)
        return -1;
    bd->cmds = cmds;
    struct coro__bd_cmd c = {strdup(name), strdup(usage), strdup(help), fn, ud};
    if (c.name == NULL || c.usage == NULL || c.help == NULL) {
        free((char *)c.name);
        free((char *)c.usage);
        free((char *)c.help);
        errno = ENOMEM;
        return -1;
    }
    bd->cmds[bd->ncmds++] = c;
    return 0;
}

int coro_backdoor_add_var(coro_backdoor_t *bd, const coro_backdoor_var_t *var)
{
    if (bd == NULL || var == NULL || var->name == NULL ||
        !coro__bd_var_ok(var)) {
        errno = EINVAL;
        return -1;
    }
    if (name_free(bd, var->name) != 0)
        return -1;
    coro_backdoor_var_t *vars =
        realloc(bd->vars, (bd->nvars + 1) * sizeof *vars);
    if (vars == NULL)
        return -1;
    bd->vars = vars;
    coro_backdoor_var_t v = *var;
    v.name = strdup(var->name);
    v.help = strdup(var->help != NULL ? var->help : "");
    if (v.name == NULL || v.help == NULL) {
        free((char *)v.name);
        free((char *)v.help);
        errno = ENOMEM;
        return -1;
    }
    bd->vars[bd->nvars++] = v;
    return 0;
}

int coro_backdoor_remove(coro_backdoor_t *bd, const char *name)
{
    if (bd == NULL || name == NULL) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < coro__bd_builtin_count; i++) {
        if (strcmp(coro__bd_builtins[i].name, name) == 0) {
            errno = EINVAL;
            return -1;
        }
    }
    for (size_t i = 0; i < bd->ncmds; i++) {
        struct coro__bd_cmd *c = &bd->cmds[i];
        if (strcmp(c->name, name) == 0) {
            free((char *)c->name);
            free((char *)c->usage);
            free((char *)c->help);
            memmove(c, c + 1, (bd->ncmds - i - 1) * sizeof *c);
            bd->ncmds--;
            return 0;
        }
    }
    ssize_t v = find_var(bd, name);
    if (v < 0) {
        errno = ENOENT;
        return -1;
    }
    free((char *)bd->vars[v].name);
    free((char *)bd->vars[v].help);
    memmove(&bd->vars[v], &bd->vars[v + 1],
            (bd->nvars - (size_t)v - 1) * sizeof bd->vars[0]);
    bd->nvars--;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Files                                                               */

int coro_backdoor_open_output(coro_backdoor_session_t *s, const char *name)
{
    if (s == NULL || name == NULL) {
        errno = EINVAL;
        return -1;
    }
    char b[48];
    if (s->bd->out_dirfd < 0) {
        coro__bd_error(s, "this program lets no command write files");
        errno = EPERM;
        return -1;
    }
    if (!coro__bd_file_name_ok(name)) {
        coro__bd_error(s,
                       "'%s' is not a plain file name ([A-Za-z0-9._+-], "
                       "no leading '.')",
                       coro__bd_shown(name, b, sizeof b));
        errno = EINVAL;
        return -1;
    }
    int fd = openat(s->bd->out_dirfd, name,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int saved = errno;
        coro__bd_error(s, "%s: %s", name, strerror(saved));
        errno = saved;
    }
    return fd;
}
