/*
 * base/error.h: error codes' messages and the per-thread diagnostic
 * (shl_errmsg); shl__die for broken process-private invariants.
 */
#ifndef SHL_BASE_ERROR_H
#define SHL_BASE_ERROR_H

#include "shmledger/shmledger.h"

int shl__set_err(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int shl__append_err(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void shl__clear_err(void);
#define SHL_SET_ERR(code, ...) shl__set_err((code), __VA_ARGS__)
#define SHL_APPEND_ERR(code, ...) shl__append_err((code), __VA_ARGS__)

/* Abort for a broken invariant in process-private memory only. Never for
 * anything read from shared memory. */
_Noreturn void shl__die(const char *file, int line, const char *msg);
#define SHL_ASSERT(c)                                                          \
    do {                                                                       \
        if (SHL__UNLIKELY(!(c)))                                               \
            shl__die(__FILE__, __LINE__, #c);                                  \
    } while (0)

#endif /* SHL_BASE_ERROR_H */
