/*
 * fuzz_common.h: helpers of the libFuzzer targets (tests/fuzz/fuzz_*.c).
 *
 * Every target checks memory safety (ASan, UBSan). Targets also check
 * invariants of their function (one line per log event, a normalised path
 * really normalised, JSON that reads back...): a broken invariant aborts
 * through FUZZ_CHECK, so libFuzzer saves the input. SHL_FUZZ_INVARIANTS=0
 * turns those checks off (memory safety only), e.g. to measure how far a
 * target gets while an invariant is known broken.
 */
#ifndef SHL_FUZZ_COMMON_H
#define SHL_FUZZ_COMMON_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static inline bool
fuzz_invariants(void)
{
    static int on = -1;
    if (on < 0) {
        const char *v = getenv("SHL_FUZZ_INVARIANTS");
        on = !(v && v[0] == '0');
    }
    return on;
}

#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (fuzz_invariants() && !(cond)) {                                    \
            fprintf(stderr, "fuzz invariant broken at %s:%d: %s: ", __FILE__,  \
                    __LINE__, #cond);                                          \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

#endif
