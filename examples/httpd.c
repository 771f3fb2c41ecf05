/*
 * httpd: a small HTTP/1.1 server.  GET / answers "Hello, World!"; other
 * paths get 404, other methods 405, malformed requests 400 (or 431, 413,
 * 501, 505: see http.h), and a connection idle longer than --idle seconds
 * is closed, as is one whose request header takes longer than that to
 * arrive whole (408).  Keep-alive and pipelining: the requests of one read are
 * answered in order, in one write.
 *
 * One coroutine per connection, each running plain sequential code
 * (http_conn_next(), respond, repeat) on a small stack.  At steady state
 * a keep-alive request costs one read and one write: http_conn_next()
 * reads only when its buffer holds no complete request, and the runtime
 * knows after a short read that the socket is drained, so the next read
 * waits for epoll's edge instead of failing with EAGAIN.
 *
 * With --backdoor ADDR, a console (docs/backdoor.md) shows the
 * connections' coroutines and where they wait, and the variables below:
 * requests served and open connections (read-only), the idle timeout and
 * the greeting (writable); "stall MS" holds the CPU to show a latency
 * warning in "log".
 *
 * Run: build/examples/httpd [--listen ADDR] [--idle SEC] [--stack KIB]
 *                           [--backdoor ADDR] [--backdoor-dir DIR]
 *                           [--profile FILE] [--profile-mode MODE]
 *                           [--profile-hz HZ]
 * Try: curl -v http://127.0.0.1:8080/
 *      wrk -c100 -d10s http://127.0.0.1:8080/
 * SIGINT or SIGTERM stops it cleanly (exit status 0).  With --profile,
 * the profiler runs while it serves and the profile is saved to FILE at
 * the clean stop, for coro-prof (docs/profiler.md).
 */
#include "http.h"
#include "server.h"

#include <coro/backdoor.h>
#include <coro/coro.h>
#include <coro/profiler.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

/*
 * Stack per connection.  serve() keeps its struct http_conn (12 KiB of
 * buffers) and a parsed request (1.1 KiB) on it.  The deepest path,
 * measured by painting the stack, is the first request, whose Date header
 * initialises the C library's time zone code: under 18 KiB in all, so
 * 32 KiB leaves room.  10,000 connections reserve 320 MiB of address
 * space but touch only the pages they use: about 12 KiB each when
 * requests are small.  The runtime's default is 64 KiB.
 * AddressSanitizer's redzones make frames several times larger.
 */
#if defined(__SANITIZE_ADDRESS__)
#define STACK_KIB 256
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STACK_KIB 256
#endif
#endif
#ifndef STACK_KIB
#define STACK_KIB 32
#endif

static double idle_sec = 10.0; /* --idle: keep-alive and read timeout;
                                  the backdoor's "set idle" changes it */
static size_t stack_size = STACK_KIB * 1024; /* --stack, bytes */
static bool stopping; /* set once the loop returned: wind down */
static const char *profile_path; /* --profile: where to save it */
static coro_prof_opts_t profile_opts; /* --profile-mode, --profile-hz */

static char hello[64] = "Hello, World!"; /* the backdoor's "greeting" */
static int64_t requests;    /* responses sent, for the backdoor */
static int connections;     /* open now, for the backdoor */

/* One connection: answer requests until it closes. */
static int serve(void *arg)
{
    struct http_conn c;
    struct http_request req;
    http_conn_init(&c, (int)(intptr_t)arg, idle_sec);
    connections++;
    while (!stopping && http_conn_next(&c, &req) == 1) {
        struct http_str path = req.target;
        const char *q = memchr(path.p, '?', path.len);
        if (q != NULL)
            path.len = (size_t)(q - path.p);
        bool get =
            http_str_eq(req.method, "GET") || http_str_eq(req.method, "HEAD");
        int rc;
        if (!http_str_eq(path, "/"))
            rc = http_conn_respond(&c, &req, 404, "text/plain", NULL,
                                   "not found\n", 10, false);
        else if (!get)
            rc = http_conn_respond(&c, &req, 405, "text/plain",
                                   "Allow: GET, HEAD\r\n",
                                   "method not allowed\n", 19, false);
        else
            rc = http_conn_respond(&c, &req, 200, "text/plain", NULL, hello,
                                   strlen(hello), false);
        if (rc < 0)
            break;
        requests++;
    }
    connections--;
    http_conn_close(&c);
    return 0;
}

/* The accept loop: a coroutine per connection. */
static int acceptor(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    coro_opts_t opts = {.name = "conn", .stack_size = stack_size};
    int one = 1;
    for (;;) {
        int fd = server_accept(lfd, &stopping);
        if (fd < 0)
            return fd == -1 ? 0 : -1;
        /* Responses go out in one write per batch: Nagle would only
         * delay the rare second one. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (coro_spawn_opts(serve, (void *)(intptr_t)fd, &opts) == NULL)
            coro_close(fd); /* no memory: drop this one, keep serving */
    }
}

/* ------------------------------------------------------------------ */
/* The backdoor's view of httpd                                        */

/* Hold the CPU for *arg ms without yielding: what a bug would do. */
__attribute__((noinline)) int httpd_stall(void *arg)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 <
           (intptr_t)arg);
    return 0;
}

static int cmd_stall(coro_backdoor_session_t *s, int argc, char **argv,
                     void *ud)
{
    (void)ud;
    long ms = argc == 2 ? strtol(argv[1], NULL, 10) : 0;
    if (argc != 2 || ms < 1 || ms > 5000) {
        coro_backdoor_printf(s, "error: usage: stall MS (1..5000)\n");
        return 0;
    }
    if (coro_spawn(httpd_stall, (void *)(intptr_t)ms, "stall") == NULL)
        return -1;
    coro_backdoor_printf(s, "a coroutine will hold the CPU for %ld ms\n",
                         ms);
    return 0;
}

/* What the console shows and may change: plain variables of this file,
 * read and written on the loop's thread like everything else here. */
static int add_backdoor_view(coro_backdoor_t *bd)
{
    coro_backdoor_var_t vars[] = {
        {.name = "requests", .help = "responses sent",
         .type = CORO_BACKDOOR_INT64, .ptr = &requests,
         .flags = CORO_BACKDOOR_READONLY},
        {.name = "connections", .help = "connections open",
         .type = CORO_BACKDOOR_INT, .ptr = &connections,
         .flags = CORO_BACKDOOR_READONLY},
        {.name = "idle", .help = "seconds a new connection may idle",
         .type = CORO_BACKDOOR_DOUBLE, .ptr = &idle_sec, .dmin = 0.001,
         .dmax = 3600},
        {.name = "greeting", .help = "the body of GET /",
         .type = CORO_BACKDOOR_STRING, .ptr = hello, .size = sizeof hello},
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (coro_backdoor_add_var(bd, &vars[i]) != 0)
            return -1;
    return coro_backdoor_add_command(
        bd, "stall", "stall MS",
        "hold the CPU for MS ms in a new coroutine (see log)", cmd_stall,
        NULL);
}

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [--listen ADDR] [--idle SECONDS] [--stack KIB]\n"
            "          [--profile FILE] [--profile-mode MODE] "
            "[--profile-hz N]\n"
            "          [--backdoor ADDR] [--backdoor-dir DIR]\n"
            "  --listen ADDR   address to serve (default 127.0.0.1:8080;\n"
            "                  port 0 picks a free port)\n"
            "  --idle SECONDS  close connections idle this long "
            "(default 10)\n"
            "  --stack KIB     stack per connection (default %d)\n"
            "  --profile FILE  profile while serving, save to FILE at "
            "the stop\n"
            "  --profile-mode sample|instrument\n"
            "                  sampling (default) or, for a build with\n"
            "                  -finstrument-functions (httpd-instrumented),\n"
            "                  per-call timing\n"
            "  --profile-hz N  samples per second of CPU (default 1000)\n"
            "  --backdoor ADDR a console on unix:PATH or "
            "tcp:127.0.0.1:PORT\n"
            "  --backdoor-dir DIR\n"
            "                  where console commands may write files\n"
            "                  (profile flamegraph NAME)\n"
            "  --help          show this and exit\n"
            "Prints \"listening on ADDR\" once ready; SIGINT or SIGTERM "
            "stop it.\n",
            prog, STACK_KIB);
}

/* Let as many connections in as the hard limit on open files allows. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1:8080";
    const char *backdoor_addr = NULL;
    const char *backdoor_dir = NULL; /* --backdoor-dir */
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"idle", required_argument, NULL, 'i'},
        {"stack", required_argument, NULL, 's'},
        {"profile", required_argument, NULL, 'p'},
        {"profile-mode", required_argument, NULL, 'm'},
        {"profile-hz", required_argument, NULL, 'z'},
        {"backdoor", required_argument, NULL, 'b'},
        {"backdoor-dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 'l':
            addr = optarg;
            break;
        case 'i':
            idle_sec = strtod(optarg, &end);
            if (*end != '\0' || !(idle_sec >= 0) || isinf(idle_sec)) {
                fprintf(stderr, "%s: bad --idle: %s\n", argv[0], optarg);
                return 2;
            }
            break;
        case 's': {
            unsigned long kib = strtoul(optarg, &end, 10);
            if (*end != '\0' || kib < CORO_STACK_MIN / 1024 ||
                kib > 1024 * 1024) {
                fprintf(stderr, "%s: bad --stack: %s\n", argv[0], optarg);
                return 2;
            }
            stack_size = kib * 1024;
            break;
        }
        case 'p':
            profile_path = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "sample") == 0) {
                profile_opts.mode = CORO_PROF_SAMPLE;
            } else if (strcmp(optarg, "instrument") == 0) {
                profile_opts.mode = CORO_PROF_INSTRUMENT;
            } else {
                fprintf(stderr, "%s: bad --profile-mode: %s\n", argv[0],
                        optarg);
                return 2;
            }
            break;
        case 'z': {
            long hz = strtol(optarg, &end, 10);
            if (*end != '\0' || hz < 1 || hz > 10000) {
                fprintf(stderr, "%s: bad --profile-hz: %s\n", argv[0],
                        optarg);
                return 2;
            }
            profile_opts.hz = (int)hz;
            break;
        }
        case 'b':
            backdoor_addr = optarg;
            break;
        case 'd':
            backdoor_dir = optarg;
            break;
        case 'h':
            usage(stdout, argv[0]);
            return 0;
        default:
            usage(stderr, argv[0]);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr, argv[0]);
        return 2;
    }

    raise_nofile();
    char name[128];
    int lfd = server_listen(addr, 0, name, sizeof name);
    if (lfd < 0) {
        fprintf(stderr, "%s: listen %s: %s\n", argv[0], addr, strerror(errno));
        return 1;
    }
    coro_backdoor_t *bd = NULL;
    if (backdoor_addr != NULL &&
        ((bd = server_backdoor(backdoor_addr, backdoor_dir)) == NULL ||
         add_backdoor_view(bd) != 0)) {
        fprintf(stderr, "%s: backdoor %s: %s\n", argv[0], backdoor_addr,
                strerror(errno));
        return 1;
    }
    /* Last: whoever reads this line may use the server (and console). */
    printf("listening on %s\n", name);
    fflush(stdout);

    if (coro_spawn(acceptor, (void *)(intptr_t)lfd, "acceptor") == NULL) {
        perror("coro_spawn");
        return 1;
    }
    if (profile_path != NULL && coro_prof_start(&profile_opts) != 0) {
        fprintf(stderr, "%s: profiler: %s\n", argv[0], strerror(errno));
        return 1;
    }
    int rc = coro_event_loop(); /* 130/143 after SIGINT/SIGTERM */
    if (profile_path != NULL) {
        /* The profile covers serving, not the shutdown below. */
        coro_prof_stop();
        if (coro_prof_save(profile_path) != 0)
            fprintf(stderr, "%s: saving the profile to %s: %s\n", argv[0],
                    profile_path, strerror(errno));
        coro_prof_reset();
    }

    /* Shut down: stop accepting, wake every connection with ECANCELED,
     * and run the loop until each has closed its socket and ended. */
    stopping = true;
    coro_close(lfd);
    if (bd != NULL)
        coro_backdoor_stop(bd);
    server_stop_all();
    return rc == 128 + SIGINT || rc == 128 + SIGTERM || rc == 0 ? 0 : 1;
}
