/*
 * A stand-in for the part of Criterion the tests use, for the
 * ThreadSanitizer build only (CORO_TSAN).  Criterion cannot start under
 * TSan: its BoxFort arena is mapped with MAP_FIXED at a random address
 * between 0x2000'0000'0000 and 0x7f00'0000'0000, where TSan keeps its
 * shadow memory, and it aborts with "Could not initialize inheritable
 * arena" (Criterion issue #274).  The tests compile unchanged against this
 * header; tests/tsan/runner.c runs each one in its own forked process, as
 * Criterion does, with the suite's .init, .fini and .timeout.
 *
 * Differences kept small on purpose: tests run in registration order,
 * one at a time; a failed cr_assert ends the test's process at once
 * (without .fini); messages are evaluated only on failure.
 */
#ifndef CORO_TSAN_CRITERION_H
#define CORO_TSAN_CRITERION_H

/* What the real header brings in and the tests rely on. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The attributes of a TestSuite() or Test() that the tests use. */
struct cri_opts {
    void (*init)(void); /* before the test, in its process */
    void (*fini)(void); /* after it, unless an assertion ended it */
    double timeout;     /* seconds; 0: the suite's, else 600 */
};

struct cri_test {
    const char *suite, *name;
    void (*fn)(void);
    struct cri_opts opts;
    struct cri_test *next; /* registration list, owned by the runner */
};

struct cri_suite {
    const char *name;
    struct cri_opts opts;
    struct cri_suite *next;
};

void cri_register_test(struct cri_test *t);
void cri_register_suite(struct cri_suite *s);
/* Report a failed check; fatal ends the test's process. */
void cri_fail(bool fatal, const char *file, int line, const char *expr,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define TestSuite(sname, ...)                                              \
    __attribute__((constructor)) static void cri_suite_##sname(void)       \
    {                                                                      \
        static struct cri_suite s = {#sname, {__VA_ARGS__}, NULL};         \
        cri_register_suite(&s);                                            \
    }                                                                      \
    struct cri_semicolon_##sname

#define Test(sname, tname, ...)                                            \
    static void cri_fn_##sname##_##tname(void);                            \
    __attribute__((constructor)) static void cri_reg_##sname##_##tname(    \
        void)                                                              \
    {                                                                      \
        static struct cri_test t = {#sname, #tname,                        \
                                    cri_fn_##sname##_##tname,              \
                                    {__VA_ARGS__}, NULL};                  \
        cri_register_test(&t);                                             \
    }                                                                      \
    static void cri_fn_##sname##_##tname(void)

/* The message, when given, is a format literal and its arguments; the
 * leading space keeps an absent one from being an empty format. */
#define CRI_CHECK(fatal, cond, expr, ...)                                  \
    do {                                                                   \
        if (!(cond))                                                       \
            cri_fail((fatal), __FILE__, __LINE__, (expr), " " __VA_ARGS__);\
    } while (0)

#define CRI_CMP(fatal, a, op, b, ...)                                      \
    CRI_CHECK(fatal, (a)op(b), #a " " #op " " #b, __VA_ARGS__)

#define cr_assert(x, ...) CRI_CHECK(true, (x), #x, __VA_ARGS__)
#define cr_expect(x, ...) CRI_CHECK(false, (x), #x, __VA_ARGS__)
#define cr_assert_not(x, ...) CRI_CHECK(true, !(x), "!(" #x ")", __VA_ARGS__)
#define cr_expect_not(x, ...) CRI_CHECK(false, !(x), "!(" #x ")", __VA_ARGS__)
#define cr_assert_fail(...) CRI_CHECK(true, 0, "fail", __VA_ARGS__)
#define cr_assert_eq(a, b, ...) CRI_CMP(true, a, ==, b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...) CRI_CMP(false, a, ==, b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) CRI_CMP(true, a, !=, b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...) CRI_CMP(false, a, !=, b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) CRI_CMP(true, a, <, b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...) CRI_CMP(false, a, <, b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) CRI_CMP(true, a, <=, b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...) CRI_CMP(false, a, <=, b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) CRI_CMP(true, a, >, b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...) CRI_CMP(false, a, >, b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) CRI_CMP(true, a, >=, b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...) CRI_CMP(false, a, >=, b, __VA_ARGS__)
#define cr_assert_null(p, ...)                                             \
    CRI_CHECK(true, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_expect_null(p, ...)                                             \
    CRI_CHECK(false, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...)                                         \
    CRI_CHECK(true, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_expect_not_null(p, ...)                                         \
    CRI_CHECK(false, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...)                                        \
    CRI_CHECK(true, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...)                                        \
    CRI_CHECK(false, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)

/* End the test as passed, saying why it was skipped. */
#define cr_skip_test(...)                                                  \
    (fprintf(stderr, "[SKIP] " __VA_ARGS__), fputc('\n', stderr),         \
     fflush(NULL), _exit(0))

#define cr_log_info(...)                                                   \
    (fprintf(stderr, "[LOG] " __VA_ARGS__), fputc('\n', stderr))

#endif
