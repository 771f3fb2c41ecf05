/*
 * tsc_time: the tick clock, its calibration and its conversions.
 *
 * This is the platform file of the module: the only architecture #ifs are
 * the hw_probe() section below and the raw reads in tsc_time_internal.h.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tsc_time/tsc_time.h"
#include "tsc_time/tsc_time_internal.h"

#define NSEC_PER_SEC 1000000000LL
#define USEC_PER_SEC 1000000LL

/*
 * Calibration length.  Each end is read within a bracket of two counter
 * reads (tens of ns with a vDSO clock_gettime), so 4 ms gives about 1e-5
 * relative error while keeping start-up, paid by every process, short.
 */
#define CAL_NSEC (4 * 1000000LL)

/* Bracketed samples per anchor; the tightest one wins, so a preemption
 * in one try costs nothing unless all of them are hit. */
#define SAMPLE_TRIES 5

/* tsc_resync() re-measures the rate only over at least this much time,
 * or its bracket error could be worse than the 4 ms calibration's. */
#define RESYNC_MIN_NSEC (100 * 1000000LL)

/* A re-measured rate further than this (1/100) from the current one means
 * the baseline is broken (suspend, VM migration), not that we drifted. */
#define RESYNC_MAX_DRIFT 100

/* Plausible counter rates; outside them the counter is not trusted. */
#define HZ_MIN 1000000LL
#define HZ_MAX 100000000000LL

/*
 * x * num / den for |x| < 2^64, as a 64-bit fixed-point multiply:
 * mult = floor(num * 2^shift / den) with mult in [2^63, 2^64).  Rounding
 * mult down leaves the product at most 2 short of the exact quotient in the
 * range that does not saturate, and num/den let conv_apply() correct that
 * with multiplications only, so results are exact.  All fields are words so
 * that struct params is an array of words for the seqlock.
 */
struct conv {
    uint64_t mult;  /* fixed-point ratio, top bit set */
    uint64_t shift; /* binary point of mult, < 128 */
    uint64_t num;   /* exact ratio numerator, < 2^37 */
    uint64_t den;   /* exact ratio denominator, < 2^37, > 0 */
};

enum { CONV_T2NS, CONV_NS2T, CONV_T2US, CONV_US2T, CONV_COUNT };

/* One consistent parameter set, as readers see it. */
struct params {
    int64_t hz;                   /* ticks per second, HZ_MIN..HZ_MAX */
    int64_t ticks0;               /* tick count at the POSIX anchor */
    int64_t posix0_usec;          /* CLOCK_REALTIME at ticks0, usec */
    struct conv conv[CONV_COUNT]; /* built from hz, indexed by CONV_ */
};

_Static_assert(sizeof(struct params) % sizeof(uint64_t) == 0,
               "struct params must be a whole number of words");
#define PARAMS_WORDS (sizeof(struct params) / sizeof(uint64_t))

/*
 * Readers never see a torn set because the parameters sit behind a seqlock
 * (the sequence is odd while a writer is inside).  It beats swapping a
 * pointer to immutable blocks: nothing is allocated, nothing leaks however
 * often coro resyncs, and no reader can hold a block that gets reused.  The
 * words are atomics read with relaxed loads (plain moves on x86-64 and
 * aarch64), which makes the racing reads of a retried copy defined in C11.
 */
static _Atomic uint64_t params_seq;
static _Atomic uint64_t params_words[PARAMS_WORDS];

/* A tick count paired with a clock reading taken inside its bracket. */
struct sample {
    int64_t ticks; /* midpoint of the two counter reads */
    int64_t nsec;  /* the clock_gettime() value, ns */
};

/*
 * Writer state.  source, env_errno and fixed_hz are written once by
 * calibrate() and read after pthread_once(); hz and cal are also written
 * by tsc_resync() under writer_lock.
 */
static struct {
    tsc_source_t source; /* the counter in use */
    int env_errno;       /* EINVAL if TSC_TIME_SOURCE was not understood */
    int fixed_hz;        /* hz is exact (clock, cntfrq): never re-measure */
    int64_t hz;          /* the published rate, ticks per second */
    struct sample cal;   /* CLOCK_MONOTONIC baseline for re-measuring hz */
} state;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t writer_lock = PTHREAD_MUTEX_INITIALIZER;

int tsc__hw;

/*
 * Platform section: which hardware counter is usable, and its rate if the
 * hardware states one (0 when it must be measured).  Returns 0 if none.
 */
#if defined(__x86_64__)
#include <cpuid.h>
static int hw_probe(int64_t *known_hz)
{
    unsigned a, b, c, d;

    /* Only an invariant TSC (CPUID 0x80000007 EDX bit 8) ticks at a fixed
     * rate through frequency changes and idle states. */
    *known_hz = 0;
    if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
        return 0;
    return TSC_SOURCE_RDTSC;
}
#elif defined(__aarch64__)
static int hw_probe(int64_t *known_hz)
{
    uint64_t freq;

    /* The generic timer always exists; firmware sets its rate register. */
    __asm__ __volatile__("mrs %0, cntfrq_el0" : "=r"(freq));
    *known_hz = freq <= (uint64_t)HZ_MAX ? (int64_t)freq : 0;
    return TSC_SOURCE_CNTVCT;
}
#else
static int hw_probe(int64_t *known_hz)
{
    *known_hz = 0;
    return 0;
}
#endif

static int64_t clock_nsec(clockid_t clock)
{
    struct timespec ts;

    if (clock_gettime(clock, &ts) != 0) {
        fprintf(stderr, "tsc_time: clock_gettime: %s\n", strerror(errno));
        abort();
    }
    return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* The counter without the calibration check, for calibration itself. */
static int64_t read_ticks(void)
{
    return tsc__hw ? tsc__read_hw() : clock_nsec(CLOCK_MONOTONIC);
}

static struct sample sample(clockid_t clock)
{
    struct sample best = {0, 0};
    int64_t best_width = INT64_MAX;

    for (int i = 0; i < SAMPLE_TRIES; i++) {
        int64_t before = read_ticks();
        int64_t nsec = clock_nsec(clock);
        int64_t width = read_ticks() - before;
        if (width < best_width) {
            best_width = width;
            best = (struct sample){before + width / 2, nsec};
        }
    }
    return best;
}

/* Ticks per second between two samples, rounded to nearest. */
static int64_t rate_hz(struct sample from, struct sample to)
{
    __int128 ticks = (__int128)to.ticks - from.ticks;
    __int128 nsec = to.nsec - from.nsec;

    if (nsec <= 0 || ticks <= 0)
        return 0;
    return (int64_t)((ticks * NSEC_PER_SEC + nsec / 2) / nsec);
}

static int64_t sat64(__int128 v)
{
    if (v > INT64_MAX)
        return INT64_MAX;
    if (v < INT64_MIN)
        return INT64_MIN;
    return (int64_t)v;
}

/* Doubles truncate toward zero like the integer conversions. */
static int64_t sat_double(double v)
{
    if (isnan(v))
        return 0;
    if (v >= 0x1p63)
        return INT64_MAX;
    if (v <= -0x1p63)
        return INT64_MIN;
    return (int64_t)v;
}

static void conv_init(struct conv *c, uint64_t num, uint64_t den)
{
    /* Start just below the normalised shift; the loop then runs <= 2x. */
    int shift = 62 + __builtin_clzll(num) - __builtin_clzll(den);
    if (shift < 0)
        shift = 0;
    while (((unsigned __int128)num << shift) / den < (unsigned __int128)1 << 63)
        shift++;
    c->mult = (uint64_t)(((unsigned __int128)num << shift) / den);
    c->shift = (uint64_t)shift;
    c->num = num;
    c->den = den;
}

/* x * num / den rounded toward zero, exact, for |x| < 2^64.  Results of
 * 2^64 or more come back as 2^64: they saturate whatever is added later. */
static __int128 conv_apply(const struct conv *c, __int128 x)
{
    uint64_t mag = (uint64_t)(x < 0 ? -x : x);
    unsigned __int128 q = ((unsigned __int128)mag * c->mult) >> c->shift;

    if (q >> 64)
        q = (unsigned __int128)1 << 64;
    else
        while ((q + 1) * c->den <= (unsigned __int128)mag * c->num)
            q++;
    return x < 0 ? -(__int128)q : (__int128)q;
}

/*
 * ThreadSanitizer does not model fences (GCC refuses them under
 * -fsanitize=thread).  There every access of the seqlock is seq_cst and
 * the fences go: a single total order then keeps a reader that saw any
 * word of a write from missing that write's odd sequence number.
 */
#if defined(__SANITIZE_THREAD__)
#define SEQ_ORDER(o) memory_order_seq_cst
#define SEQ_FENCE(o) ((void)0)
#else
#define SEQ_ORDER(o) (o)
#define SEQ_FENCE(o) atomic_thread_fence(o)
#endif

static void params_read(struct params *out)
{
    uint64_t words[PARAMS_WORDS];
    uint64_t seq;

    do {
        seq = atomic_load_explicit(&params_seq,
                                   SEQ_ORDER(memory_order_acquire));
        for (size_t i = 0; i < PARAMS_WORDS; i++)
            words[i] = atomic_load_explicit(&params_words[i],
                                            SEQ_ORDER(memory_order_relaxed));
        /* Orders the word loads before the re-check of the sequence. */
        SEQ_FENCE(memory_order_acquire);
    } while ((seq & 1) ||
             seq != atomic_load_explicit(&params_seq,
                                         SEQ_ORDER(memory_order_relaxed)));
    memcpy(out, words, sizeof *out);
}

/* Callers serialise writers: calibrate() inside the once, then the lock. */
static void params_write(const struct params *p)
{
    uint64_t words[PARAMS_WORDS];
    uint64_t seq = atomic_load_explicit(&params_seq, memory_order_relaxed);

    memcpy(words, p, sizeof words);
    atomic_store_explicit(&params_seq, seq + 1,
                          SEQ_ORDER(memory_order_relaxed));
    /* Orders the odd sequence before any word store. */
    SEQ_FENCE(memory_order_release);
    for (size_t i = 0; i < PARAMS_WORDS; i++)
        atomic_store_explicit(&params_words[i], words[i],
                              SEQ_ORDER(memory_order_relaxed));
    atomic_store_explicit(&params_seq, seq + 2,
                          SEQ_ORDER(memory_order_release));
}

/* Anchor ticks to CLOCK_REALTIME at rate hz and publish the new set. */
static void publish(int64_t hz)
{
    struct sample now = sample(CLOCK_REALTIME);
    /* The anchor sits on a whole microsecond: move ticks0 back by the
     * nanoseconds past it rather than dropping them. */
    int64_t sub_nsec = now.nsec % 1000;
    if (sub_nsec < 0)
        sub_nsec += 1000;
    struct params p = {
        .hz = hz,
        .ticks0 = now.ticks - (int64_t)((__int128)sub_nsec * hz / NSEC_PER_SEC),
        .posix0_usec = (now.nsec - sub_nsec) / 1000,
    };
    conv_init(&p.conv[CONV_T2NS], NSEC_PER_SEC, (uint64_t)hz);
    conv_init(&p.conv[CONV_NS2T], (uint64_t)hz, NSEC_PER_SEC);
    conv_init(&p.conv[CONV_T2US], USEC_PER_SEC, (uint64_t)hz);
    conv_init(&p.conv[CONV_US2T], (uint64_t)hz, USEC_PER_SEC);
    params_write(&p);
}

/* The hardware counter's rate, measured against CLOCK_MONOTONIC. */
static int64_t measure_hz(void)
{
    struct sample end;

    state.cal = sample(CLOCK_MONOTONIC);
    for (;;) {
        end = sample(CLOCK_MONOTONIC);
        int64_t left_nsec = CAL_NSEC - (end.nsec - state.cal.nsec);
        if (left_nsec <= 0)
            break;
        /* Sleeping is fine: only the two bracketed ends matter. */
        nanosleep(&(struct timespec){0, (long)left_nsec}, NULL);
    }
    return rate_hz(state.cal, end);
}

static void calibrate(void)
{
    const char *env = getenv("TSC_TIME_SOURCE");
    int force_clock = 0;
    int64_t known_hz = 0;

    /* An empty value counts as unset, as is usual for the environment. */
    if (env != NULL && *env != '\0' && strcmp(env, "auto") != 0 &&
        strcmp(env, "tsc") != 0) {
        if (strcmp(env, "clock") == 0)
            force_clock = 1;
        else
            state.env_errno = EINVAL;
    }

    int hw = force_clock ? 0 : hw_probe(&known_hz);
    int64_t hz = 0;
    if (hw) {
        tsc__hw = 1;
        hz = measure_hz();
        /* A stated rate is exact; trust it unless measuring disproves it
         * (firmware sometimes leaves cntfrq_el0 wrong). */
        if (known_hz > 0 && llabs(hz - known_hz) <= known_hz / 100) {
            hz = known_hz;
            state.fixed_hz = 1;
        }
        if (hz < HZ_MIN || hz > HZ_MAX) {
            tsc__hw = 0; /* a counter that does not tick sensibly */
            hw = 0;
        }
    }
    if (!hw) {
        hz = NSEC_PER_SEC;
        state.fixed_hz = 1;
    }
    state.source = hw ? (tsc_source_t)hw : TSC_SOURCE_CLOCK;
    state.hz = hz;
    publish(hz);
}

static void params_get(struct params *out)
{
    pthread_once(&init_once, calibrate);
    params_read(out);
}

static int64_t convert(int which, int64_t x)
{
    struct params p;

    params_get(&p);
    return sat64(conv_apply(&p.conv[which], x));
}

int64_t tsc__read_slow(void)
{
    pthread_once(&init_once, calibrate);
    return read_ticks();
}

TSC_API int tsc_init(void)
{
    pthread_once(&init_once, calibrate);
    if (state.env_errno != 0) {
        errno = state.env_errno;
        return -1;
    }
    return 0;
}

TSC_API int64_t tsc_now(void)
{
    return tsc__read_slow();
}

TSC_API int64_t tsc_ticks_per_sec(void)
{
    struct params p;

    params_get(&p);
    return p.hz;
}

TSC_API tsc_source_t tsc_source(void)
{
    pthread_once(&init_once, calibrate);
    return state.source;
}

TSC_API const char *tsc_source_name(void)
{
    switch (tsc_source()) {
    case TSC_SOURCE_RDTSC:
        return "rdtsc";
    case TSC_SOURCE_CNTVCT:
        return "cntvct";
    default:
        return "clock_gettime";
    }
}

TSC_API int64_t tsc_ticks_to_usec(int64_t ticks)
{
    return convert(CONV_T2US, ticks);
}

TSC_API int64_t tsc_usec_to_ticks(int64_t usec)
{
    return convert(CONV_US2T, usec);
}

TSC_API int64_t tsc_ticks_to_nsec(int64_t ticks)
{
    return convert(CONV_T2NS, ticks);
}

TSC_API int64_t tsc_nsec_to_ticks(int64_t nsec)
{
    return convert(CONV_NS2T, nsec);
}

TSC_API double tsc_ticks_to_sec(int64_t ticks)
{
    struct params p;

    params_get(&p);
    return (double)ticks / (double)p.hz;
}

TSC_API int64_t tsc_sec_to_ticks(double sec)
{
    struct params p;

    params_get(&p);
    return sat_double(sec * (double)p.hz);
}

/* The differences below span up to 2^64, so they are taken in 128 bits
 * and the sums saturate instead of wrapping. */
TSC_API int64_t tsc_ticks_to_posix_usec(int64_t ticks)
{
    struct params p;

    params_get(&p);
    return sat64(p.posix0_usec +
                 conv_apply(&p.conv[CONV_T2US], (__int128)ticks - p.ticks0));
}

TSC_API int64_t tsc_posix_usec_to_ticks(int64_t posix_usec)
{
    struct params p;

    params_get(&p);
    return sat64(p.ticks0 + conv_apply(&p.conv[CONV_US2T],
                                       (__int128)posix_usec - p.posix0_usec));
}

TSC_API double tsc_ticks_to_posix_sec(int64_t ticks)
{
    struct params p;

    params_get(&p);
    return (double)p.posix0_usec / USEC_PER_SEC +
           (double)((__int128)ticks - p.ticks0) / (double)p.hz;
}

TSC_API int64_t tsc_posix_sec_to_ticks(double posix_sec)
{
    struct params p;

    params_get(&p);
    if (isnan(posix_sec))
        return 0;
    /* Subtract the anchor first so the product stays human-scale. */
    double delta =
        (posix_sec - (double)p.posix0_usec / USEC_PER_SEC) * (double)p.hz;
    return sat64((__int128)p.ticks0 + sat_double(delta));
}

TSC_API int64_t tsc_now_posix_usec(void)
{
    return tsc_ticks_to_posix_usec(tsc_now());
}

TSC_API int tsc_resync(void)
{
    pthread_once(&init_once, calibrate);
    pthread_mutex_lock(&writer_lock);
    if (!state.fixed_hz) {
        struct sample now = sample(CLOCK_MONOTONIC);
        if (now.nsec - state.cal.nsec >= RESYNC_MIN_NSEC) {
            int64_t hz = rate_hz(state.cal, now);
            if (llabs(hz - state.hz) <= state.hz / RESYNC_MAX_DRIFT)
                state.hz = hz;
            else
                state.cal = now; /* start a fresh baseline from here */
        }
    }
    publish(state.hz);
    pthread_mutex_unlock(&writer_lock);
    return 0;
}
