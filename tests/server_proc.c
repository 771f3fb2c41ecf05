/* See server_proc.h. */
#include "server_proc.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Generous bounds: the sanitizer build is several times slower. */
#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS  20000
#define IO_TIMEOUT_SEC   10

/* fork + exec of argv, its stdout (and stderr if both) to a pipe whose
 * read end goes to *out_fd; returns the pid. */
static pid_t spawn(const char *const *argv, int *out_fd, bool both)
{
    int pfd[2];
    cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0, "pipe: %s", strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Die with the test: an assertion that ends it early must not
         * leave a server behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        /* Criterion's worker may block signals; the server gets a clean
         * mask and the default dispositions, as from a shell. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        dup2(pfd[1], STDOUT_FILENO);
        if (both)
            dup2(pfd[1], STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    *out_fd = pfd[0];
    return pid;
}

void server_start(struct server *s, const char *bin, const char *const *args)
{
    const char *argv[16];
    size_t n = 0;
    argv[n++] = bin;
    for (; args != NULL && args[n - 1] != NULL && n < 12; n++)
        argv[n] = args[n - 1];
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n] = NULL;

    int fd;
    *s = (struct server){.pid = spawn(argv, &fd, false)};
    char line[256];
    size_t len = 0;
    while (len < sizeof line - 1 && memchr(line, '\n', len) == NULL) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, START_TIMEOUT_MS);
        cr_assert_eq(r, 1, "%s printed no address in time", bin);
        ssize_t got = read(fd, line + len, sizeof line - 1 - len);
        cr_assert_gt(got, 0, "%s ended before printing its address", bin);
        len += (size_t)got;
    }
    close(fd); /* later output goes nowhere; the servers print no more */
    line[len] = '\0';
    char *nl = strchr(line, '\n');
    cr_assert_not_null(nl, "no line from %s: %s", bin, line);
    *nl = '\0';
    char *word = strrchr(line, ' ');
    word = word != NULL ? word + 1 : line;
    cr_assert_lt(strlen(word), sizeof s->addr, "address too long: %s", word);
    memcpy(s->addr, word, strlen(word) + 1);
    char *colon = strrchr(s->addr, ':');
    cr_assert_not_null(colon, "no address in \"%s\"", line);
    size_t host_len = (size_t)(colon - s->addr);
    cr_assert_lt(host_len, sizeof s->host);
    memcpy(s->host, s->addr, host_len);
    s->host[host_len] = '\0';
    s->port = atoi(colon + 1);
    cr_assert(s->port > 0 && s->port < 65536, "bad port in \"%s\"", line);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Wait up to ms for pid; its status, or -1 if it is still running. */
static int wait_exit(pid_t pid, double ms)
{
    double end = now_ms() + ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        cr_assert_eq(r, 0, "waitpid: %s", strerror(errno));
        if (now_ms() > end)
            return -1;
        usleep(2000);
    }
}

int server_stop(struct server *s, int signo)
{
    cr_assert_gt(s->pid, 0, "server not running");
    cr_assert_eq(kill(s->pid, signo), 0, "kill: %s", strerror(errno));
    int status = wait_exit(s->pid, STOP_TIMEOUT_MS);
    if (status == -1) {
        kill(s->pid, SIGKILL);
        status = wait_exit(s->pid, STOP_TIMEOUT_MS);
        cr_assert_neq(status, -1);
        cr_assert_fail("server did not exit after signal %d", signo);
    }
    s->pid = 0;
    return status;
}

int server_wait(struct server *s)
{
    cr_assert_gt(s->pid, 0, "server not running");
    int status = wait_exit(s->pid, STOP_TIMEOUT_MS);
    if (status == -1) {
        kill(s->pid, SIGKILL);
        wait_exit(s->pid, STOP_TIMEOUT_MS);
        cr_assert_fail("server did not exit");
    }
    s->pid = 0;
    return status;
}

void server_stop_clean(struct server *s)
{
    int status = server_stop(s, SIGTERM);
    cr_assert(WIFEXITED(status), "server died by signal %d", WTERMSIG(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "server exit status %d",
                 WEXITSTATUS(status));
}

int run_capture(const char *bin, const char *const *args, char *out, size_t len)
{
    const char *argv[16];
    size_t n = 0;
    argv[n++] = bin;
    for (; args != NULL && args[n - 1] != NULL && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    int fd;
    pid_t pid = spawn(argv, &fd, true);
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        cr_assert_eq(poll(&p, 1, START_TIMEOUT_MS), 1, "%s hangs", bin);
        ssize_t r = read(fd, out + got, len - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == len - 1)
            break;
    }
    out[got] = '\0';
    close(fd);
    int status = wait_exit(pid, STOP_TIMEOUT_MS);
    cr_assert_neq(status, -1, "%s did not exit", bin);
    return status;
}

int server_dial(const struct server *s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    struct timeval tv = {.tv_sec = IO_TIMEOUT_SEC};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)s->port)};
    cr_assert_eq(inet_pton(AF_INET, s->host, &sin.sin_addr), 1);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0,
                 "connect %s: %s", s->addr, strerror(errno));
    return fd;
}

void send_bytes(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        cr_assert_gt(w, 0, "send: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

void send_str(int fd, const char *s)
{
    send_bytes(fd, s, strlen(s));
}

size_t recv_upto(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, (char *)buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* Printable form of a reply for failure messages: CR LF as \r \n. */
static const char *show(const char *p, size_t n, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\r' || ch == '\n') {
            out[o++] = '\\';
            out[o++] = ch == '\r' ? 'r' : 'n';
        } else if (ch < 32 || ch > 126) {
            o += (size_t)snprintf(out + o, len - o, "\\x%02x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return out;
}

void expect_bytes(int fd, const void *want, size_t n)
{
    char *got = malloc(n + 1);
    cr_assert_not_null(got);
    size_t r = recv_upto(fd, got, n);
    bool same = r == n && memcmp(got, want, n) == 0;
    char a[600], b[600];
    show(got, r, a, sizeof a);
    free(got);
    cr_assert(same,
              "reply:\n  got  \"%s\" (%zu bytes)\n  want \"%s\" (%zu bytes)", a,
              r, show(want, n, b, sizeof b), n);
}

void expect_str(int fd, const char *want)
{
    expect_bytes(fd, want, strlen(want));
}

void expect_eof(int fd)
{
    char c;
    ssize_t r;
    do
        r = recv(fd, &c, 1, 0);
    while (r < 0 && errno == EINTR);
    cr_assert(r == 0 || (r < 0 && errno == ECONNRESET),
              "expected the server to close: recv %zd (%s)", r,
              r < 0 ? strerror(errno) : "a byte");
}

void close_abruptly(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}
