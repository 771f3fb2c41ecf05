/* See criterion.h: the ThreadSanitizer build's stand-in for Criterion. */
#include "criterion.h"
