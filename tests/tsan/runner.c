/*
 * The runner of the ThreadSanitizer build's Criterion stand-in (see
 * tests/tsan/criterion/criterion.h): each test runs in a process of its
 * own, forked from this one before any test code ran, with an alarm for
 * its timeout.  Arguments are accepted and ignored (ctest passes
 * "--jobs 1"), except a test name: then only tests whose "suite::name"
 * contains it run.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static struct cri_test *tests, **tests_tail = &tests;
static struct cri_suite *suites;
static bool failed; /* the running test (in its process) failed a check */

void cri_register_test(struct cri_test *t)
{
    *tests_tail = t; /* keep the order of the source */
    tests_tail = &t->next;
}

void cri_register_suite(struct cri_suite *s)
{
    s->next = suites;
    suites = s;
}

void cri_fail(bool fatal, const char *file, int line, const char *expr,
              const char *fmt, ...)
{
    fprintf(stderr, "[----] %s:%d: %s failed: %s", file, line,
            fatal ? "Assertion" : "Expectation", expr);
    if (fmt[1] != '\0') { /* fmt is " " and the caller's message */
        va_list ap;
        va_start(ap, fmt);
        fputc(':', stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    failed = true;
    if (fatal) {
        fflush(NULL);
        _exit(1);
    }
}

static const struct cri_opts *suite_opts(const char *name)
{
    static const struct cri_opts none;
    for (struct cri_suite *s = suites; s != NULL; s = s->next)
        if (strcmp(s->name, name) == 0)
            return &s->opts;
    return &none;
}

/* Run t in a child; 0 passed, 1 failed, 2 crashed (or timed out). */
static int run(const struct cri_test *t)
{
    const struct cri_opts *so = suite_opts(t->suite);
    void (*init)(void) = t->opts.init ? t->opts.init : so->init;
    void (*fini)(void) = t->opts.fini ? t->opts.fini : so->fini;
    double timeout = t->opts.timeout > 0   ? t->opts.timeout
                     : so->timeout > 0     ? so->timeout
                                           : 600;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        alarm((unsigned)ceil(timeout));
        if (init != NULL)
            init();
        t->fn();
        if (fini != NULL)
            fini();
        fflush(NULL);
        _exit(failed ? 1 : 0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st))
        return WEXITSTATUS(st) == 0 ? 0 : 1;
    fprintf(stderr, "[----] %s::%s: %s\n", t->suite, t->name,
            WTERMSIG(st) == SIGALRM ? "timed out" : strsignal(WTERMSIG(st)));
    return 2;
}

int main(int argc, char **argv)
{
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--jobs") == 0 || strcmp(argv[i], "-j") == 0)
            i++;
        else if (argv[i][0] != '-')
            only = argv[i];
    }
    int counts[3] = {0};
    static const char *const verdict[] = {"PASS", "FAIL", "CRASH"};
    for (const struct cri_test *t = tests; t != NULL; t = t->next) {
        char full[256];
        snprintf(full, sizeof full, "%s::%s", t->suite, t->name);
        if (only != NULL && strstr(full, only) == NULL)
            continue;
        int r = run(t);
        counts[r]++;
        fprintf(stderr, "[%s] %s\n", verdict[r], full);
    }
    fprintf(stderr,
            "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | "
            "Crashing: %d\n",
            counts[0] + counts[1] + counts[2], counts[0], counts[1],
            counts[2]);
    return counts[1] + counts[2] == 0 ? 0 : 1;
}
