/*
 * internal.h: declarations shared by the library's modules (never installed).
 *
 * Naming: shl__ for internal non-static functions, SHL__ for internal macros.
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

/* ---- errors (error.c) ---- */
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

/* ---- clocks (time.c) ---- */
static inline int64_t
shl__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t
shl__wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ISO 8601 local time with microseconds and a UTC offset:
 * 2026-01-22T12:00:00.000123+01:00. Returns length or -ENOSPC. */
int shl__format_iso(int64_t wall_us, char *buf, size_t cap);
/* "SSS.mmm" from nanoseconds. Returns length or -ENOSPC. */
int shl__format_elapsed(int64_t ns, char *buf, size_t cap);

/* ---- strings ---- */
/* Copy a NUL-terminated string into a fixed field; fails if it does not fit
 * (returns -ENAMETOOLONG). */
int shl__strlcpy_checked(char *dst, size_t cap, const char *src);
/* Copy a string field read from shared memory: bounded, always terminated,
 * never reads past `cap`. */
void shl__copy_field(char *dst, const char *src, size_t cap);

/* ---- crash-point seam (crash.c) ----
 * Named points inside every locked mutation. A test arms one by name (and a
 * mode); when execution reaches it the process dies there (SIGKILL to
 * itself, or _exit). Unarmed cost: one relaxed load and a branch. */
enum shl__crash_mode { SHL__CRASH_SIGKILL = 0, SHL__CRASH_EXIT = 1 };
extern _Atomic(const char *) shl__crash_armed;
void shl__crash_arm(const char *name, enum shl__crash_mode mode);
void shl__crash_hit(const char *name);
#define SHL_CRASH_POINT(name)                                                  \
    do {                                                                       \
        if (SHL__UNLIKELY(atomic_load_explicit(&shl__crash_armed,             \
                                               memory_order_relaxed) != NULL)) \
            shl__crash_hit(name);                                              \
    } while (0)
/* The list of every crash point, NULL-terminated (for tests). */
extern const char *const shl__crash_points[];

#endif /* SHL_INTERNAL_H */
