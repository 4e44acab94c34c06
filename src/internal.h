/*
 * internal.h: declarations shared by the library's modules (never installed).
 *
 * Naming: shl__ for internal non-static functions, SHL__ for internal macros.
 * The base layer's own declarations live in base/error.h, base/util.h and
 * base/crash.h; every module gets them through this header.
 * Error helpers: SHL_SET_ERR records a message for shl_errmsg() and evaluates
 * to the code, so a failure site reads `return SHL_SET_ERR(code, "...")`.
 */
#ifndef SHL_INTERNAL_H
#define SHL_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "shmledger/shmledger.h"

#define SHL__UNUSED(x) ((void)(x))
#define SHL__LIKELY(x) __builtin_expect(!!(x), 1)
#define SHL__UNLIKELY(x) __builtin_expect(!!(x), 0)
#if defined(__x86_64__) || defined(__i386__)
#define SHL__CPU_RELAX() __builtin_ia32_pause()
#else
#define SHL__CPU_RELAX() ((void)0)
#endif
#define SHL__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#include "base/crash.h"
#include "base/error.h"
#include "base/util.h"

#endif /* SHL_INTERNAL_H */
