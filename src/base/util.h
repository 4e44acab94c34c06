/*
 * base/util.h: clocks, deadlines, strings, time formatting, eventfds.
 */
#ifndef SHL_BASE_UTIL_H
#define SHL_BASE_UTIL_H

#include <pthread.h>
#include <stdbool.h>
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

/* ---- text from participants ----
 * Every string a participant gives (descriptions, errors, log messages)
 * reaches files through one of these two helpers:
 *
 * JSON-safe UTF-8: the length of the longest valid UTF-8 sequence starting
 * at s (1..4), or 0 when s[0] does not start one (a stray continuation
 * byte, an overlong form, a surrogate, a code point above U+10FFFF, a
 * sequence cut by the end, or NUL: JSON readers such as jansson refuse
 * \u0000, so it is replaced like an invalid byte). */
size_t shl__utf8_seq(const unsigned char *s, size_t n);
/* true when all n bytes are valid UTF-8. */
bool shl__utf8_valid(const char *s, size_t n);
/* Copy s to out with every invalid byte replaced by U+FFFD (EF BF BD);
 * out needs room for 3 * n + 1 bytes. Returns the length written (out is
 * terminated). */
size_t shl__utf8_fix(const char *s, size_t n, char *out);
/* Log-line-safe: copy s to out with '\n' as "\\n", '\r' as "\\r",
 * every other control byte (< 0x20 but '\t', and 0x7f) as "\\xNN", and
 * invalid UTF-8 as U+FFFD, so a message can never start a second line nor
 * send escape sequences to a terminal that shows the log. out needs room
 * for 4 * n + 1 bytes. Returns the length written (out is terminated). */
size_t shl__logsafe(const char *s, size_t n, char *out);

/* ---- deadlines ----
 * The one place that turns "timeout_ms from now" into an absolute time.
 * timeout_ms < 0 means no deadline: the result is then `now` and callers
 * wait without one (pthread_cond_wait, not timedwait). */
struct timespec shl__deadline(clockid_t clock, int64_t timeout_ms);
/* ---- eventfds ---- */
/* Add 1 to an eventfd (ignored when fd < 0); drain one (non-blocking). */
void shl__efd_signal(int fd);
void shl__efd_drain(int fd);

/* ---- library threads ----
 * pthread_create, then wait until the new thread runs its start routine.
 * A sanitizer's runtime sets a new thread up (its registry, its allocator
 * cache) after pthread_create has returned; a fork() by the caller in that
 * window can leave the child a runtime lock held by a thread it does not
 * have (gcc 12's ASan: the child's first allocation of that kind hangs).
 * Once the routine runs, the fork guard (shl__busy_enter) covers it.
 * Returns 0 or the error of pthread_create. */
int shl__thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

#endif /* SHL_BASE_UTIL_H */
