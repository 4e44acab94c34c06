/*
 * util.c: time formatting, deadlines, bounded string copies, id validation,
 * eventfd signalling.
 */
#include <ctype.h>
#include <errno.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* localtime_r takes the time-zone lock and is slow; the snapshotter formats
 * one timestamp per line, so each thread caches the text of the current
 * second ("YYYY-MM-DDTHH:MM:SS" and the "+HH:MM" offset). */
static _Thread_local int64_t iso_sec = INT64_MIN;
static _Thread_local long iso_tz = -1;            /* `timezone` then */
static _Thread_local const char *iso_tzname = NULL; /* tzname[0] then */
static _Thread_local char iso_date[80];
static _Thread_local char iso_zone[16];

int
shl__format_iso(int64_t wall_us, char *buf, size_t cap)
{
    int64_t secs = wall_us / 1000000;
    long us = (long)(wall_us % 1000000);
    if (us < 0) {
        us += 1000000;
        secs--;
    }
    /* a tzset() with another TZ changes these: then format afresh */
    if (secs != iso_sec || timezone != iso_tz || tzname[0] != iso_tzname) {
        time_t t = (time_t)secs;
        struct tm tm;
        if (!localtime_r(&t, &tm))
            return -EINVAL;
        long off = tm.tm_gmtoff;
        char sign = off < 0 ? '-' : '+';
        if (off < 0)
            off = -off;
        snprintf(iso_date, sizeof(iso_date), "%04d-%02d-%02dT%02d:%02d:%02d",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
        snprintf(iso_zone, sizeof(iso_zone), "%c%02ld:%02ld", sign,
                 (off / 3600) % 100, (off % 3600) / 60);
        iso_sec = secs;
        iso_tz = timezone;
        iso_tzname = tzname[0];
    }
    size_t dl = strlen(iso_date), zl = strlen(iso_zone);
    size_t n = dl + 7 + zl;
    if (n + 1 > cap)
        return -ENOSPC;
    memcpy(buf, iso_date, dl);
    char *p = buf + dl;
    *p++ = '.';
    for (int i = 5; i >= 0; i--) {
        p[i] = (char)('0' + us % 10);
        us /= 10;
    }
    p += 6;
    memcpy(p, iso_zone, zl + 1);
    return (int)n;
}

int
shl__format_elapsed(int64_t ns, char *buf, size_t cap)
{
    if (ns < 0)
        ns = 0;
    long long ms = ns / 1000000;
    int n = snprintf(buf, cap, "%03lld.%03lld", ms / 1000, ms % 1000);
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    return n;
}

int
shl__strlcpy_checked(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap);
    if (n >= cap)
        return -ENAMETOOLONG;
    memcpy(dst, src, n + 1);
    return 0;
}

void
shl__copy_field(char *dst, const char *src, size_t cap)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

static int
validate_id(const char *id, size_t max)
{
    if (!id || !*id)
        return SHL_EBADID;
    size_t n = strnlen(id, max + 1);
    if (n > max)
        return SHL_EBADID;
    if (strstr(id, "..") || strchr(id, '/'))
        return SHL_EBADID;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!(isalnum(c) || c == '_' || c == '-' || c == ':' || c == '.'))
            return SHL_EBADID;
    }
    return 0;
}

int
shl_validate_operation_id(const char *id)
{
    shl__clear_err();
    int rc = validate_id(id, SHL_OPERATION_ID_MAX);
    if (rc)
        return SHL_SET_ERR(rc,
                           "invalid operation id: must be 1..%d characters of "
                           "[A-Za-z0-9_:.-] without \"..\"",
                           SHL_OPERATION_ID_MAX);
    return 0;
}

int
shl_validate_participant_id(const char *id)
{
    shl__clear_err();
    int rc = validate_id(id, SHL_PARTICIPANT_ID_MAX);
    if (rc)
        return SHL_SET_ERR(rc,
                           "invalid participant id: must be 1..%d characters "
                           "of [A-Za-z0-9_:.-] without \"..\"",
                           SHL_PARTICIPANT_ID_MAX);
    return 0;
}

const char *
shl_op_state_name(shl_op_state s)
{
    switch (s) {
    case SHL_OP_RUNNING:
        return "running";
    case SHL_OP_CLEANUP:
        return "cleanup";
    case SHL_OP_FAILED:
        return "failed";
    case SHL_OP_COMPLETED:
        return "completed";
    }
    return "unknown";
}

const char *
shl_frame_state_name(shl_frame_state s)
{
    switch (s) {
    case SHL_FRAME_ACTIVE:
        return "active";
    case SHL_FRAME_CRASHED:
        return "crashed";
    case SHL_FRAME_CLEANING_UP:
        return "cleaningUp";
    case SHL_FRAME_CLEANED_UP:
        return "cleanedUp";
    }
    return "unknown";
}

struct timespec
shl__deadline(clockid_t clock, int64_t timeout_ms)
{
    struct timespec dl;
    clock_gettime(clock, &dl);
    if (timeout_ms > 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (timeout_ms % 1000) * 1000000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
    }
    return dl;
}

void
shl__efd_signal(int fd)
{
    if (fd >= 0) {
        uint64_t one = 1;
        (void)!write(fd, &one, sizeof(one));
    }
}

void
shl__efd_drain(int fd)
{
    uint64_t v;
    (void)!read(fd, &v, sizeof(v));
}

/* ---- text from participants ---- */

size_t
shl__utf8_seq(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = s[0];
    if (c == 0)
        return 0; /* NUL is not text: replaced like an invalid byte */
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool
shl__utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] && p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = shl__utf8_seq(p + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

size_t
shl__utf8_fix(const char *s, size_t n, char *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k =
            p[i] && p[i] < 0x80 ? 1 : shl__utf8_seq(p + i, n - i);
        if (k == 0) {
            out[o++] = (char)0xef;
            out[o++] = (char)0xbf;
            out[o++] = (char)0xbd;
            i++;
            continue;
        }
        memcpy(out + o, s + i, k);
        o += k;
        i += k;
    }
    out[o] = 0;
    return o;
}

size_t
shl__logsafe(const char *s, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '\n' || c == '\r') {
            out[o++] = '\\';
            out[o++] = c == '\n' ? 'n' : 'r';
            i++;
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
            i++;
        } else if (c < 0x80) {
            out[o++] = (char)c;
            i++;
        } else {
            size_t k = shl__utf8_seq(p + i, n - i);
            /* C1 controls (U+0080..U+009F, e.g. CSI) act on terminals too */
            if (k == 2 && c == 0xc2 && p[i + 1] < 0xa0)
                k = 0;
            if (k == 0) {
                out[o++] = (char)0xef;
                out[o++] = (char)0xbf;
                out[o++] = (char)0xbd;
                i++;
            } else {
                memcpy(out + o, s + i, k);
                o += k;
                i += k;
            }
        }
    }
    out[o] = 0;
    return o;
}

/* ---- library threads ---- */

struct thread_start {
    void *(*fn)(void *);
    void *arg;
    sem_t started;
};

static void *
thread_trampoline(void *p)
{
    struct thread_start *ts = p;
    void *(*fn)(void *) = ts->fn;
    void *arg = ts->arg;
    sem_post(&ts->started); /* ts lives on the creator's stack: not after */
    return fn(arg);
}

int
shl__thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    struct thread_start ts = {.fn = fn, .arg = arg};
    if (sem_init(&ts.started, 0, 0) != 0)
        return errno;
    int rc = pthread_create(t, NULL, thread_trampoline, &ts);
    if (rc == 0)
        while (sem_wait(&ts.started) != 0 && errno == EINTR) {
        }
    sem_destroy(&ts.started);
    return rc;
}
