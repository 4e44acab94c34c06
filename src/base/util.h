/*
 * base/util.h: clocks, deadlines, strings, time formatting, eventfds.
 */
#ifndef SHL_BASE_UTIL_H
#define SHL_BASE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- clocks ---- */
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

/* ---- deadlines ----
 * The one place that turns "timeout_ms from now" into an absolute time.
 * timeout_ms < 0 means no deadline: the result is then `now` and callers
 * wait without one (pthread_cond_wait, not timedwait). */
struct timespec shl__deadline(clockid_t clock, int64_t timeout_ms);
/* ---- eventfds ---- */
/* Add 1 to an eventfd (ignored when fd < 0); drain one (non-blocking). */
void shl__efd_signal(int fd);
void shl__efd_drain(int fd);

#endif /* SHL_BASE_UTIL_H */
