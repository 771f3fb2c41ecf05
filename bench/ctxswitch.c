/*
 * ctxswitch: the cost of one context switch, four ways, in one run.
 *
 *   asm          the hand-written x86-64 backend (context_x86_64.S), raw;
 *                measured only where CMake found an asm backend
 *   ucontext     the portable backend (context_ucontext.c), raw
 *   swapcontext  two glibc ucontext_t ping-ponging, no coro code at all
 *   coro_yield   two coroutines yielding to each other under
 *                coro_event_loop(), with whichever backend libcoro was
 *                built with: the price a program actually pays.  Twice:
 *                with latency warnings on (factor 1, the default) and
 *                off (factor 0), to show what the warnings cost when
 *                none fires
 *
 * Each raw measurement ping-pongs between the main context and one peer
 * context; each switch in either direction counts as one.  Both sides
 * switch from one shared loop function, as every coroutine does in the
 * scheduler (all switches happen in its do_switch()): the return predictor
 * then sees the pattern it sees in a real program.  Both backends
 * define the same symbols, so the build compiles them into this program a
 * second time under the prefixes asm_ and uc_ (see CMakeLists.txt).  The
 * measurements are interleaved (a, b, c, d, a, b, ...) BENCH_RUNS times so
 * that frequency changes hit all of them alike, and the median is shown.
 *
 * Run: build/bench/ctxswitch [SWITCHES]    (default 10,000,000)
 */
#include "bench.h"

#include <coro/coro.h>

#include "context_internal.h"

#include <limits.h>
#include <stdalign.h>
#include <stdbool.h>
#include <ucontext.h>

#define DEFAULT_SWITCHES 10000000L
#define PEER_STACK_BYTES (64 * 1024)

static const char usage[] =
    "usage: ctxswitch [SWITCHES]\n"
    "Time SWITCHES context switches (default 10000000, at least 2) with the\n"
    "asm backend, the ucontext backend, plain swapcontext and coro_yield()\n"
    "(with latency warnings on and off), and print the median ns per switch\n"
    "of 5 interleaved runs.\n";

/* Switches before each timed loop, so caches and predictors are warm. */
static long warmup_switches(long switches)
{
    return switches / 10 + 2;
}

/* ------------------------------------------------------------------
 * Raw backends.  Entry functions take no arguments, so each backend's two
 * contexts live in globals.
 */

/* The ucontext backend keeps the main context's ucontext_t here; the asm
 * backend saves everything on the stack it leaves and ignores it. */
static alignas(16) unsigned char main_storage[CORO__CTX_SELF_STORAGE];

#ifdef BENCH_ASM
void asm_ctx_prepare(struct coro__ctx *ctx, void *lo, void *hi);
void asm_ctx_start(struct coro__ctx *from, struct coro__ctx *to, void *lo,
                   void *hi, struct coro__ctx *(*entry)(void));
void asm_ctx_init_self(struct coro__ctx *ctx, void *storage);
void asm_ctx_switch(struct coro__ctx *from, struct coro__ctx *to);
const char *asm_ctx_name(void);

static struct coro__ctx asm_main, asm_peer;
static alignas(64) char asm_stack[PEER_STACK_BYTES];

/* The one place both asm contexts switch from. */
static __attribute__((noinline)) void asm_ping(struct coro__ctx *self,
                                               struct coro__ctx *other,
                                               long n)
{
    for (long i = n; i > 0; i--)
        asm_ctx_switch(self, other);
}

static __attribute__((noreturn)) struct coro__ctx *asm_peer_entry(void)
{
    for (;;)
        asm_ping(&asm_peer, &asm_main, LONG_MAX);
}

/* Time `switches` switches (rounded down to round trips); ns each. */
static double run_asm(long switches)
{
    static bool made;
    if (!made) {
        asm_ctx_init_self(&asm_main, main_storage);
        /* The peer starts and switches straight back. */
        asm_ctx_prepare(&asm_peer, asm_stack, asm_stack + sizeof asm_stack);
        asm_ctx_start(&asm_main, &asm_peer, asm_stack,
                      asm_stack + sizeof asm_stack, asm_peer_entry);
        made = true;
    }
    asm_ping(&asm_main, &asm_peer, warmup_switches(switches) / 2);
    long trips = switches / 2;
    int64_t t0 = bench_now_nsec();
    asm_ping(&asm_main, &asm_peer, trips);
    return (double)(bench_now_nsec() - t0) / (2.0 * (double)trips);
}
#endif /* BENCH_ASM */

void uc_ctx_prepare(struct coro__ctx *ctx, void *lo, void *hi);
void uc_ctx_start(struct coro__ctx *from, struct coro__ctx *to, void *lo,
                  void *hi, struct coro__ctx *(*entry)(void));
void uc_ctx_init_self(struct coro__ctx *ctx, void *storage);
void uc_ctx_switch(struct coro__ctx *from, struct coro__ctx *to);
const char *uc_ctx_name(void);

static struct coro__ctx uc_main, uc_peer;
static alignas(64) char uc_stack[PEER_STACK_BYTES];

static __attribute__((noinline)) void uc_ping(struct coro__ctx *self,
                                              struct coro__ctx *other, long n)
{
    for (long i = n; i > 0; i--)
        uc_ctx_switch(self, other);
}

static __attribute__((noreturn)) struct coro__ctx *uc_peer_entry(void)
{
    for (;;)
        uc_ping(&uc_peer, &uc_main, LONG_MAX);
}

static double run_uc(long switches)
{
    static bool made;
    if (!made) {
        uc_ctx_init_self(&uc_main, main_storage);
        /* The peer starts and switches straight back. */
        uc_ctx_prepare(&uc_peer, uc_stack, uc_stack + sizeof uc_stack);
        uc_ctx_start(&uc_main, &uc_peer, uc_stack,
                     uc_stack + sizeof uc_stack, uc_peer_entry);
        made = true;
    }
    uc_ping(&uc_main, &uc_peer, warmup_switches(switches) / 2);
    long trips = switches / 2;
    int64_t t0 = bench_now_nsec();
    uc_ping(&uc_main, &uc_peer, trips);
    return (double)(bench_now_nsec() - t0) / (2.0 * (double)trips);
}

/* ------------------------------------------------------------------
 * Plain glibc swapcontext: the baseline the backends are judged by.
 */

static ucontext_t sc_main, sc_peer;
static alignas(64) char sc_stack[PEER_STACK_BYTES];

static void sc_swap(ucontext_t *from, ucontext_t *to)
{
    if (swapcontext(from, to) != 0)
        bench_die("swapcontext");
}

static __attribute__((noinline)) void sc_ping(ucontext_t *self,
                                              ucontext_t *other, long n)
{
    for (long i = n; i > 0; i--)
        sc_swap(self, other);
}

static void sc_peer_entry(void)
{
    for (;;)
        sc_ping(&sc_peer, &sc_main, LONG_MAX);
}

static double run_swapcontext(long switches)
{
    static bool made;
    if (!made) {
        if (getcontext(&sc_peer) != 0)
            bench_die("getcontext");
        sc_peer.uc_stack.ss_sp = sc_stack;
        sc_peer.uc_stack.ss_size = sizeof sc_stack;
        sc_peer.uc_link = NULL;
        makecontext(&sc_peer, sc_peer_entry, 0);
        made = true;
    }
    sc_ping(&sc_main, &sc_peer, warmup_switches(switches) / 2);
    long trips = switches / 2;
    int64_t t0 = bench_now_nsec();
    sc_ping(&sc_main, &sc_peer, trips);
    return (double)(bench_now_nsec() - t0) / (2.0 * (double)trips);
}

/* ------------------------------------------------------------------
 * The public API: coro_yield() between two coroutines.
 */

/*
 * Both coroutines yield warmup times, then the timer takes t0 and yields
 * half the switches while the peer does the same.  The peer's last yield
 * switches to the timer, which takes t1: exactly `switches` switches lie
 * between t0 and t1, each one a coro_yield() call.
 */
static struct {
    long warmup;    /* yields each coroutine makes before t0 */
    long trips;     /* timed yields each coroutine makes */
    int64_t t0, t1; /* CLOCK_MONOTONIC ns, written by yield_timer */
} yb;

static void yield_n(long n)
{
    for (long i = 0; i < n; i++)
        if (coro_yield() != 0)
            bench_die("coro_yield");
}

static int yield_timer(void *arg)
{
    (void)arg;
    yield_n(yb.warmup);
    yb.t0 = bench_now_nsec();
    yield_n(yb.trips);
    yb.t1 = bench_now_nsec();
    return 0;
}

static int yield_peer(void *arg)
{
    (void)arg;
    yield_n(yb.warmup + yb.trips);
    return 0;
}

static double run_coro_yield(long switches)
{
    yb.warmup = warmup_switches(switches) / 2;
    yb.trips = switches / 2;
    /* Spawned in this order, the timer runs first. */
    if (coro_spawn(yield_timer, NULL, "timer") == NULL ||
        coro_spawn(yield_peer, NULL, "peer") == NULL)
        bench_die("coro_spawn");
    if (coro_event_loop() != 0)
        bench_die("coro_event_loop");
    return (double)(yb.t1 - yb.t0) / (2.0 * (double)yb.trips);
}

static double run_coro_yield_quiet(long switches)
{
    double old = coro_set_latency_warning(0);
    if (old < 0)
        bench_die("coro_set_latency_warning");
    double ns = run_coro_yield(switches);
    coro_set_latency_warning(old);
    return ns;
}

/* ------------------------------------------------------------------ */

struct measurement {
    char label[64];
    double (*run)(long switches); /* returns ns per switch */
    double ns[BENCH_RUNS];        /* one result per run */
    struct bench_summary sum;     /* of ns, once all runs are done */
};

int main(int argc, char **argv)
{
    long switches = bench_parse_count(argc, argv, DEFAULT_SWITCHES, 2, usage);
    struct measurement m[5];
    size_t n = 0, i_asm = SIZE_MAX;
#ifdef BENCH_ASM
    i_asm = n;
    m[n] = (struct measurement){.run = run_asm};
    snprintf(m[n++].label, sizeof m[0].label, "%s (raw switch)",
             asm_ctx_name());
#endif
    m[n] = (struct measurement){.run = run_uc};
    snprintf(m[n++].label, sizeof m[0].label, "%s (raw switch)", uc_ctx_name());
    size_t i_swap = n;
    m[n++] = (struct measurement){.label = "glibc swapcontext",
                                  .run = run_swapcontext};
    size_t i_yield = n;
    m[n++] = (struct measurement){.label = "coro_yield (library backend)",
                                  .run = run_coro_yield};
    size_t i_quiet = n;
    m[n++] = (struct measurement){.label = "coro_yield, latency warnings off",
                                  .run = run_coro_yield_quiet};

    for (int r = 0; r < BENCH_RUNS; r++)
        for (size_t i = 0; i < n; i++)
            m[i].ns[r] = m[i].run(switches);

    printf("ctxswitch: %ld switches per run, median of %d interleaved "
           "runs\n\n",
           switches / 2 * 2, BENCH_RUNS);
    printf("%-32s %10s %10s %10s\n", "", "ns/switch", "min", "max");
    for (size_t i = 0; i < n; i++) {
        m[i].sum = bench_summarize(m[i].ns);
        printf("%-32s %10.2f %10.2f %10.2f\n", m[i].label, m[i].sum.median,
               m[i].sum.min, m[i].sum.max);
    }
    printf("\n");
    if (i_asm != SIZE_MAX)
        printf("%-32s %10.1fx\n", "swapcontext / asm",
               m[i_swap].sum.median / m[i_asm].sum.median);
    printf("%-32s %10.1fx\n", "swapcontext / coro_yield",
           m[i_swap].sum.median / m[i_yield].sum.median);
    printf("%-32s %+10.2f ns\n", "latency warnings on - off",
           m[i_yield].sum.median - m[i_quiet].sum.median);
    if (coro_fini() != 0)
        bench_die("coro_fini");
    return 0;
}
