/*
 * error.c: error codes, shl_strerror(), and the per-thread diagnostic
 * message (a bounded TLS buffer; never allocates).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static _Thread_local char tls_msg[512];

const char *
shl_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case SHL_EVERSION:
        return "segment has another major format version";
    case SHL_EFORMAT:
        return "segment layout differs from this build";
    case SHL_EOWNER:
        return "segment belongs to another user or PID namespace";
    case SHL_ECORRUPT:
        return "segment is truncated or corrupt";
    case SHL_ENOTREADY:
        return "segment is not initialised yet";
    case SHL_EFULL:
        return "table is full";
    case SHL_ESTALE:
        return "record is gone or was reused";
    case SHL_EPANIC:
        return "segment is poisoned";
    case SHL_ESTATE:
        return "not allowed in the current state";
    case SHL_ENOTFOUND:
        return "no such operation";
    case SHL_EBADID:
        return "malformed id";
    case SHL_EFAILED:
        return "operation failed";
    case SHL_EABORTED:
        return "operation aborted";
    case SHL_EFENCED:
        return "participant was declared crashed";
    case SHL_EUNSAFE:
        return "segment permissions are unsafe (world-writable or unexpected "
               "group access)";
    case SHL_EIO:
        return "files could not be written whole";
    case SHL_ECALLFAILED:
        return "call failed";
    case SHL_ECANCELLED:
        return "call cancelled";
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        /* strerror is not async-signal-safe in general; strerrordesc_np is
         * a static table lookup (glibc >= 2.32). */
        const char *d = strerrordesc_np(-err);
        return d ? d : "unknown error";
    }
    return "unknown error";
}

const char *
shl_strerror_name(int err)
{
    switch (err) {
    case 0:
        return "OK";
#define SHL__NAME(c)                                                           \
    case c:                                                                    \
        return #c
        SHL__NAME(SHL_EVERSION);
        SHL__NAME(SHL_EFORMAT);
        SHL__NAME(SHL_EOWNER);
        SHL__NAME(SHL_ECORRUPT);
        SHL__NAME(SHL_ENOTREADY);
        SHL__NAME(SHL_EFULL);
        SHL__NAME(SHL_ESTALE);
        SHL__NAME(SHL_EPANIC);
        SHL__NAME(SHL_ESTATE);
        SHL__NAME(SHL_ENOTFOUND);
        SHL__NAME(SHL_EBADID);
        SHL__NAME(SHL_EFAILED);
        SHL__NAME(SHL_EABORTED);
        SHL__NAME(SHL_EFENCED);
        SHL__NAME(SHL_EUNSAFE);
        SHL__NAME(SHL_EIO);
        SHL__NAME(SHL_ECALLFAILED);
        SHL__NAME(SHL_ECANCELLED);
#undef SHL__NAME
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        /* a static table lookup (glibc >= 2.32), as strerrordesc_np */
        const char *n = strerrorname_np(-err);
        return n ? n : "UNKNOWN";
    }
    return "UNKNOWN";
}

const char *
shl_errmsg(void)
{
    return tls_msg;
}

void
shl__clear_err(void)
{
    tls_msg[0] = 0;
}

int
shl__set_err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_msg, sizeof(tls_msg), fmt, ap);
    va_end(ap);
    return code;
}

int
shl__append_err(int code, const char *fmt, ...)
{
    char frame[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(frame, sizeof(frame), fmt, ap);
    va_end(ap);
    size_t n = strlen(tls_msg);
    if (n == 0)
        snprintf(tls_msg, sizeof(tls_msg), "%s: %s", frame,
                 shl_strerror(code));
    else if (n + 3 < sizeof(tls_msg)) {
        /* prepend the outer frame: "outer: inner" */
        char inner[sizeof(tls_msg)];
        memcpy(inner, tls_msg, n + 1);
        size_t fl = strnlen(frame, sizeof(frame));
        if (fl + 2 < sizeof(tls_msg)) {
            memcpy(tls_msg, frame, fl);
            memcpy(tls_msg + fl, ": ", 2);
            size_t room = sizeof(tls_msg) - fl - 3;
            size_t il = n < room ? n : room;
            memcpy(tls_msg + fl + 2, inner, il);
            tls_msg[fl + 2 + il] = 0;
        }
    }
    return code;
}

_Noreturn void
shl__die(const char *file, int line, const char *msg)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "shmledger: %s:%d: assertion failed: %s\n",
                     file, line, msg);
    if (n > 0)
        (void)!write(2, buf, (size_t)n);
    abort();
}

const char *
shl_version_string(void)
{
#define SHL__STR2(x) #x
#define SHL__STR(x) SHL__STR2(x)
    return SHL__STR(SHL_VERSION_MAJOR) "." SHL__STR(
        SHL_VERSION_MINOR) "." SHL__STR(SHL_VERSION_PATCH);
}
