/*
 * What the profiler's tests check in its output: a saved profile read
 * back (the documented text format), well-formed XML, and folded lines.
 */
#ifndef CORO_TEST_PROF_CHECK_H
#define CORO_TEST_PROF_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* n multiply-adds on a volatile seed: work of a known relative cost.  A
 * macro, so that the time is the calling function's own. */
#define PROF_BURN(sink, n)                                                 \
    do {                                                                   \
        uint64_t x_ = (sink);                                              \
        for (long i_ = 0; i_ < (n); i_++)                                  \
            x_ = x_ * 6364136223846793005u + 1442695040888963407u;         \
        (sink) = x_;                                                       \
    } while (0)

#define PC_MAX 512 /* functions, edges and coroutine rows kept */

struct pc_fn {
    char name[128];
    uint64_t calls;
    int64_t incl, excl;
    int64_t ru[6];
};

struct pc_edge {
    int caller, callee;
    uint64_t count;
};

struct pc_coro {
    char name[64];
    int id;
    uint64_t ended, switches, selfish;
    int64_t run_ticks, max_slice, charged;
};

struct pc_profile {
    char mode[16];
    int hz;
    int64_t ticks_per_sec, duration;
    struct pc_fn fns[PC_MAX];
    int nfns;
    struct pc_edge edges[PC_MAX];
    int nedges;
    struct pc_coro coros[PC_MAX];
    int ncoros;
    int nstacks;
    int64_t stack_total; /* sum of the stacks' weights */
};

/* Parse a profile in the saved format; false (with a message on stderr)
 * if it does not follow the format.  p is large: make it static. */
bool pc_parse(const char *text, struct pc_profile *p);
/* The function called name, or NULL. */
const struct pc_fn *pc_fn(const struct pc_profile *p, const char *name);
/* Calls from caller to callee (0 if none). */
uint64_t pc_edge(const struct pc_profile *p, const char *caller,
                 const char *callee);
/* Sum of all exclusive weights. */
int64_t pc_total(const struct pc_profile *p);

/* Whether text is one well-formed XML document (optional declaration,
 * one root element, tags nested and closed, quoted attributes, only the
 * predefined or numeric entities).  On failure *why says where. */
bool xml_well_formed(const char *text, const char **why);

/* Whether every line is "frame;frame;... count" with count > 0; the
 * number of lines and the sum of counts go to *lines and *sum. */
bool folded_ok(const char *text, int *lines, int64_t *sum);

#endif
