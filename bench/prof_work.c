/*
 * The function prof_instrument times, compiled twice: once plainly and
 * once with -finstrument-functions.  PROF_WORK names each copy.
 */
#include <stdint.h>

uint64_t PROF_WORK(uint64_t x);

/* A call that does almost nothing, so that the cost measured is the
 * call's and its instrumentation's. */
__attribute__((noinline)) uint64_t PROF_WORK(uint64_t x)
{
    return x * 2862933555777941757u + 3037000493u;
}
