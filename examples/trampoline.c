/*
 * trampoline: a long-poll relay.  A device long-polls
 * GET /query/<id>; a client's POST /query/<id> is handed to that waiting
 * GET (its body becomes the GET's response) and itself blocks until the
 * device answers with PUT /query/<id>, whose body becomes the POST's
 * response.  "/query" alone is the device with the empty id.
 *
 *   device:  GET /query/d1  ...waits...            -> 200 "ping"
 *   client:  POST /query/d1 "ping"  ...waits...                -> 200 "pong"
 *   device:                                PUT /query/d1 "pong" -> 204
 *
 * Timeouts (--timeout, default 30 s) give 504: a GET that no POST came
 * for, a POST that no device took, or whose reply did not come.  A query
 * a device took belongs to that device's connection until a PUT for the
 * same id answers it (on any connection; PUTs answer a device's queries
 * oldest first); if the connection closes first, the POST gets 502 at
 * once.  A device that hangs up while its GET waits, or a client while
 * its POST waits, is noticed at once too: no query is handed to a device
 * that left, and no device gets the query of a client that left.  PUT with
 * nothing to answer gets 409.
 *
 * The whole rendezvous is a list and a condition variable per device, and
 * a one-shot event per query: in tornado's terms, the GET's
 * "yield queue.get()" is a coro_cond_wait() loop and the POST's "yield"
 * on the answer is coro_event_wait(), both plain blocking calls under a
 * deadline (see device_wait(), client_post(), device_put()).
 *
 * Run: build/examples/trampoline [--listen ADDR] [--timeout SEC]
 * Try: curl http://127.0.0.1:8080/query/d1                  # device
 *      curl -d ping http://127.0.0.1:8080/query/d1          # client
 *      curl -X PUT -d pong http://127.0.0.1:8080/query/d1   # device
 * (one device keep-alive connection for GET and PUT, see docs/examples.md)
 */
#include "http.h"
#include "server.h"

#include <coro/coro.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

/* An intrusive circular list; a node alone points at itself, so
 * removing a node twice is harmless. */
struct link {
    struct link *prev, *next;
};

static void link_init(struct link *l)
{
    l->prev = l->next = l;
}

static bool link_empty(const struct link *l)
{
    return l->next == l;
}

static void link_push(struct link *head, struct link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

static void link_remove(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    link_init(l);
}

#define CONTAINER(ptr, type, member)                                           \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Longest device id, in bytes: [A-Za-z0-9._~-]. */
#define ID_MAX 64
/* Buckets of the device table (chained): devices exist only while some
 * request uses them, so this is sized for the concurrent ones. */
#define DEVICE_BUCKETS 1024

/* One device id, alive while some request uses it. */
struct device {
    struct device *next; /* hash chain */
    char id[ID_MAX + 1]; /* NUL-terminated */
    struct link waiting; /* queries no device took yet, oldest first */
    struct link taken;   /* queries taken, awaiting a PUT, oldest first */
    coro_cond_t arrived; /* device GETs wait here for a query */
    int users;           /* requests using it; freed when it drops to 0
                            (every query belongs to a POST, a user) */
};

/* One connection. */
struct client {
    struct http_conn http; /* buffers and socket */
    struct link taken;     /* queries this connection's GETs took that
                              no PUT answered yet: 502 if it closes */
};

/* A POST's query.  Lives on the POST's coroutine stack; it is in the
 * lists only while that POST waits, which unlinks it before returning. */
struct query {
    struct link in_dev;    /* in dev->waiting, then in dev->taken */
    struct link in_client; /* in the taking client's taken list */
    char *body;            /* the POST's body, owned; the GET that takes
                              it takes it over (NULL then) */
    size_t len;            /* bytes of body */
    int status;            /* answer: 200 (reply below) or 502 */
    char *reply;           /* the PUT's body, owned (freed by the POST) */
    size_t reply_len;      /* bytes of reply */
    coro_event_t done;     /* set once status is known */
};

static double idle_sec = 60.0;    /* --idle: keep-alive timeout */
static double timeout_sec = 30.0; /* --timeout: each rendezvous wait */
static bool stopping;             /* the loop returned: wind down */
static struct device *devices[DEVICE_BUCKETS];

/* ---------------------------------------------------------------------
 * Devices by id
 */

static struct device **bucket(const char *id, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)id[i]) * 16777619u;
    return &devices[h % DEVICE_BUCKETS];
}

/* The device with this id, created if needed, with one more user; NULL
 * when out of memory. */
static struct device *device_use(struct http_str id)
{
    struct device **b = bucket(id.p, id.len);
    for (struct device *d = *b; d != NULL; d = d->next)
        if (strlen(d->id) == id.len && memcmp(d->id, id.p, id.len) == 0) {
            d->users++;
            return d;
        }
    struct device *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    memcpy(d->id, id.p, id.len);
    link_init(&d->waiting);
    link_init(&d->taken);
    coro_cond_init(&d->arrived);
    d->users = 1;
    d->next = *b;
    *b = d;
    return d;
}

static void device_release(struct device *d)
{
    if (--d->users > 0)
        return;
    struct device **p = bucket(d->id, strlen(d->id));
    while (*p != d)
        p = &(*p)->next;
    *p = d->next;
    free(d);
}

/* ---------------------------------------------------------------------
 * The rendezvous
 */

/* Answer query q and wake its POST.  q leaves every list. */
static void query_answer(struct query *q, int status, char *reply, size_t len)
{
    link_remove(&q->in_dev);
    link_remove(&q->in_client);
    q->status = status;
    q->reply = reply;
    q->reply_len = len;
    coro_event_set(&q->done, NULL);
}

/* Device side: wait until a query waits for dev.  Under a deadline. */
static int device_wait(void *arg)
{
    struct device *dev = arg;
    while (link_empty(&dev->waiting))
        if (coro_cond_wait(&dev->arrived, NULL) < 0)
            return -1;
    return 0;
}

/* Client side: wait for the answer to q.  Under a deadline. */
static int query_wait(void *arg)
{
    struct query *q = arg;
    return coro_event_wait(&q->done, NULL);
}

/*
 * Watch a connection while its GET or POST waits: when the peer hangs up,
 * interrupt the wait (ECONNRESET), so that no query is handed to a
 * device that left, and no device gets the query of a client that left.
 * Pipelined data ends the watch (the connection is alive).
 */
struct watch {
    int fd;      /* the device's connection */
    coro_t *get; /* the waiting GET's coroutine */
};

static int watch_hangup(void *arg)
{
    struct watch *w = arg;
    for (;;) {
        if (coro_wait_readable(w->fd) < 0) {
            if (errno == ETIMEDOUT)
                continue; /* the fd's idle timeout: keep watching */
            return 0;     /* interrupted: the GET is done */
        }
        char b;
        ssize_t n = recv(w->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0)
            return 0;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        coro_interrupt(w->get, ECONNRESET); /* EOF or error */
        return 0;
    }
}

/*
 * Run fn(arg) under the --timeout deadline while watching cl's
 * connection: if the peer hangs up meanwhile, fn's wait fails with
 * ECONNRESET.  Returns as coro_with_timeout(), errno set on -1.
 */
static int watched_wait(struct client *cl, int (*fn)(void *), void *arg)
{
    struct watch w = {cl->http.fd, coro_current()};
    coro_opts_t opts = {.name = "watch", .joinable = true};
    coro_t *watcher = coro_spawn_opts(watch_hangup, &w, &opts);
    int rc = coro_with_timeout(timeout_sec, fn, arg);
    int err = errno;
    if (watcher != NULL) {
        /* The watcher never outlives w: stop it and wait for its end
         * (again if an interrupt meant for us fails the first join). */
        coro_interrupt(watcher, ECANCELED);
        while (coro_join(watcher, NULL, NULL) < 0 && errno != ESRCH &&
               errno != EINVAL)
            ;
    }
    errno = err;
    return rc;
}

/* GET: long-poll for a query; its body is the response. */
static int device_get(struct client *cl, struct http_request *req,
                      struct device *dev)
{
    if (http_conn_flush(&cl->http) < 0)
        return -1;
    int rc = watched_wait(cl, device_wait, dev);
    int err = errno;
    if (rc < 0) {
        if (err == ETIMEDOUT)
            return http_conn_respond(&cl->http, req, 504, "text/plain", NULL,
                                     "no query came\n", 14, false);
        errno = err;
        return -1; /* hung up (ECONNRESET) or shutting down */
    }
    struct query *q = CONTAINER(dev->waiting.next, struct query, in_dev);
    link_remove(&q->in_dev);
    link_push(&dev->taken, &q->in_dev);
    link_push(&cl->taken, &q->in_client);
    char *body = q->body;
    q->body = NULL;
    rc = http_conn_respond(&cl->http, req, 200, "application/octet-stream",
                           NULL, body, q->len, false);
    free(body);
    return rc;
}

/* POST: hand the body to a device and wait for its reply. */
static int client_post(struct client *cl, struct http_request *req,
                       struct device *dev)
{
    if (http_conn_flush(&cl->http) < 0)
        return -1;
    struct query q = {.len = req->body_len, .status = 0};
    q.body = malloc(req->body_len + 1);
    if (q.body == NULL)
        return http_conn_respond(&cl->http, req, 503, "text/plain", NULL,
                                 "out of memory\n", 14, false);
    memcpy(q.body, req->body == NULL ? "" : req->body, req->body_len);
    link_init(&q.in_client);
    coro_event_init(&q.done);
    link_push(&dev->waiting, &q.in_dev);
    coro_cond_wake_one(&dev->arrived, 0);

    int rc = watched_wait(cl, query_wait, &q);
    int err = errno;
    link_remove(&q.in_dev); /* if not answered: leave the device's lists */
    link_remove(&q.in_client);
    free(q.body);
    if (rc < 0 && err != ETIMEDOUT) {
        free(q.reply);
        errno = err;
        return -1; /* the client left, or shutting down */
    }
    if (rc < 0)
        rc = http_conn_respond(&cl->http, req, 504, "text/plain", NULL,
                               "no reply came\n", 14, false);
    else if (q.status == 502)
        rc = http_conn_respond(&cl->http, req, 502, "text/plain", NULL,
                               "the device went away\n", 21, false);
    else
        rc = http_conn_respond(&cl->http, req, 200, "application/octet-stream",
                               NULL, q.reply, q.reply_len, false);
    free(q.reply);
    return rc;
}

/* PUT: the reply to the device's oldest query awaiting one. */
static int device_put(struct client *cl, struct http_request *req,
                      struct device *dev)
{
    if (link_empty(&dev->taken))
        return http_conn_respond(&cl->http, req, 409, "text/plain", NULL,
                                 "no query awaits a reply\n", 24, false);
    char *reply = malloc(req->body_len + 1);
    if (reply == NULL)
        return http_conn_respond(&cl->http, req, 503, "text/plain", NULL,
                                 "out of memory\n", 14, false);
    memcpy(reply, req->body == NULL ? "" : req->body, req->body_len);
    query_answer(CONTAINER(dev->taken.next, struct query, in_dev), 200, reply,
                 req->body_len);
    return http_conn_respond(&cl->http, req, 204, NULL, NULL, NULL, 0, false);
}

/* ---------------------------------------------------------------------
 * Connections
 */

/* The device id of a /query or /query/<id> path; false for other
 * paths. */
static bool query_id(struct http_str target, struct http_str *id)
{
    struct http_str path = target;
    const char *qm = memchr(path.p, '?', path.len);
    if (qm != NULL)
        path.len = (size_t)(qm - path.p);
    if (path.len < 6 || memcmp(path.p, "/query", 6) != 0)
        return false;
    if (path.len == 6) {
        *id = (struct http_str){path.p + 6, 0};
        return true;
    }
    if (path.p[6] != '/' || path.len == 7 || path.len - 7 > ID_MAX)
        return false;
    *id = (struct http_str){path.p + 7, path.len - 7};
    for (size_t i = 0; i < id->len; i++) {
        char ch = id->p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || strchr("._~-", ch) != NULL))
            return false;
    }
    return true;
}

static int handle(struct client *cl, struct http_request *req)
{
    struct http_str id;
    if (!query_id(req->target, &id))
        return http_conn_respond(&cl->http, req, 404, "text/plain", NULL,
                                 "not found\n", 10, false);
    int (*fn)(struct client *, struct http_request *, struct device *);
    if (http_str_eq(req->method, "GET"))
        fn = device_get;
    else if (http_str_eq(req->method, "POST"))
        fn = client_post;
    else if (http_str_eq(req->method, "PUT"))
        fn = device_put;
    else
        return http_conn_respond(&cl->http, req, 405, "text/plain",
                                 "Allow: GET, POST, PUT\r\n",
                                 "method not allowed\n", 19, false);
    struct device *dev = device_use(id);
    if (dev == NULL)
        return http_conn_respond(&cl->http, req, 503, "text/plain", NULL,
                                 "out of memory\n", 14, false);
    int rc = fn(cl, req, dev);
    device_release(dev);
    return rc;
}

static int serve(void *arg)
{
    struct client cl;
    struct http_request req;
    http_conn_init(&cl.http, (int)(intptr_t)arg, idle_sec);
    link_init(&cl.taken);
    while (!stopping && http_conn_next(&cl.http, &req) == 1)
        if (handle(&cl, &req) < 0)
            break;
    /* The device is gone: queries it took and never answered fail. */
    while (!link_empty(&cl.taken))
        query_answer(CONTAINER(cl.taken.next, struct query, in_client), 502,
                     NULL, 0);
    http_conn_close(&cl.http);
    return 0;
}

static int acceptor(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = server_accept(lfd, &stopping);
        if (fd < 0)
            return fd == -1 ? 0 : -1;
        if (coro_spawn(serve, (void *)(intptr_t)fd, "conn") == NULL)
            coro_close(fd);
    }
}

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [--listen ADDR] [--timeout SECONDS] "
            "[--idle SECONDS]\n"
            "  --listen ADDR      address to serve (default "
            "127.0.0.1:8080;\n"
            "                     port 0 picks a free port)\n"
            "  --timeout SECONDS  longest wait for a query or a reply "
            "(504 after;\n"
            "                     default 30)\n"
            "  --idle SECONDS     close connections idle this long "
            "(default 60)\n"
            "  --help             show this and exit\n"
            "Devices GET /query/<id> (long poll) and PUT /query/<id> the "
            "reply;\n"
            "clients POST /query/<id> and get the reply.  Prints "
            "\"listening on ADDR\"\n"
            "once ready; SIGINT or SIGTERM stop it.\n",
            prog);
}

static bool parse_sec(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*end != '\0' || end == s || !(v >= 0) || isinf(v))
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1:8080";
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"timeout", required_argument, NULL, 't'},
        {"idle", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            addr = optarg;
            break;
        case 't':
        case 'i':
            if (!parse_sec(optarg, opt == 't' ? &timeout_sec : &idle_sec)) {
                fprintf(stderr, "%s: bad number of seconds: %s\n", argv[0],
                        optarg);
                return 2;
            }
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

    char name[128];
    int lfd = server_listen(addr, 0, name, sizeof name);
    if (lfd < 0) {
        fprintf(stderr, "%s: listen %s: %s\n", argv[0], addr, strerror(errno));
        return 1;
    }
    printf("listening on %s\n", name);
    fflush(stdout);

    if (coro_spawn(acceptor, (void *)(intptr_t)lfd, "acceptor") == NULL) {
        perror("coro_spawn");
        return 1;
    }
    int rc = coro_event_loop();

    /* Shut down as httpd does: every waiting GET and POST wakes with
     * ECANCELED, leaves its lists and closes its connection. */
    stopping = true;
    coro_close(lfd);
    server_stop_all();
    return rc == 128 + SIGINT || rc == 128 + SIGTERM || rc == 0 ? 0 : 1;
}
