/*
 * log.c: the producers of events: the log API (log, debugLog, logMessage),
 * the library's own lines (CALL_*, OPERATION_*, CRASH_*) and trail-only
 * events. Each describes its event as a struct shl__event and posts it to
 * the event ring (events.c); render.c has the text formats.
 *
 * Line formats are the original's (reference §1.8):
 *   operation log  "<ISO> [<LEVEL>] <message>"
 *   debug log      "<ISO> <message>"        (no callback, not mirrored)
 *   logMessage     "<elapsed> | " + 4 spaces per depth + "[<pid>] <msg>",
 *                  logged at INFO and printed bare to stdout
 * The ISO timestamp is shl__format_iso (local time, microseconds, offset),
 * taken when the event happened, not when the snapshotter writes it.
 */
#include "files/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files/events.h"
#include "files/render.h"
#include "files/snapshotter.h"
#include "internal.h"

/* ---- producers ---- */

static void
event_init(shl_ledger *l, struct shl__event *ev, uint32_t kind,
           uint32_t level, const char *op_id)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = kind;
    ev->level = level;
    ev->wall_us = shl__wall_us();
    ev->pid = l->pid; /* getpid() is a syscall: keep it off the hot path */
    ev->op_id = op_id;
}

static void oplog_kind(shl_ledger *l, const char *op_id, uint32_t kind,
                       int level, const char *fmt, va_list ap0)
    __attribute__((format(printf, 5, 0)));

void
shl__optrail(shl_ledger *l, const char *op_id, const char *fmt, ...)
{
    if (!l || !op_id || !fmt)
        return;
    va_list ap;
    va_start(ap, fmt);
    oplog_kind(l, op_id, SHL__EV_TRAIL, SHL_LOG_INFO, fmt, ap);
    va_end(ap);
}

void
shl__optrail_participant(shl_ledger *l, const char *op_id, bool joined)
{
    if (!l || !op_id)
        return;
    static const char jn[] = "PARTICIPANT_JOINED participant=";
    static const char lf[] = "PARTICIPANT_LEFT participant=";
    char msg[sizeof(jn) + SHL_PARTICIPANT_ID_MAX + 32];
    size_t n = joined ? sizeof(jn) - 1 : sizeof(lf) - 1;
    memcpy(msg, joined ? jn : lf, n);
    size_t idn = strnlen(l->id, SHL_PARTICIPANT_ID_MAX);
    memcpy(msg + n, l->id, idn);
    n += idn;
    memcpy(msg + n, " pid=", 5);
    n += 5;
    /* %d of recorded_pid */
    int32_t pid = l->recorded_pid;
    uint32_t u = pid < 0 ? 0u - (uint32_t)pid : (uint32_t)pid;
    char tmp[12];
    size_t k = sizeof(tmp);
    do {
        tmp[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (pid < 0)
        tmp[--k] = '-';
    memcpy(msg + n, tmp + k, sizeof(tmp) - k);
    n += sizeof(tmp) - k;
    struct shl__event ev;
    event_init(l, &ev, SHL__EV_TRAIL, SHL_LOG_INFO, op_id);
    ev.a = msg;
    ev.a_len = n;
    (void)shl__event_post(l, &ev);
}

void
shl__oplog(shl_ledger *l, const char *op_id, int level, const char *fmt, ...)
{
    if (!l || !op_id || !fmt)
        return;
    va_list ap;
    va_start(ap, fmt);
    oplog_kind(l, op_id, SHL__EV_LIB, level, fmt, ap);
    va_end(ap);
}

static void
oplog_kind(shl_ledger *l, const char *op_id, uint32_t kind, int level,
           const char *fmt, va_list ap0)
{
    char stack[512];
    va_list ap;
    va_copy(ap, ap0);
    int n = vsnprintf(stack, sizeof(stack), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *msg = stack;
    if ((size_t)n >= sizeof(stack)) {
        msg = malloc((size_t)n + 1);
        if (!msg)
            return;
        va_copy(ap, ap0);
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    struct shl__event ev;
    event_init(l, &ev, kind, (uint32_t)level, op_id);
    ev.a = msg;
    ev.a_len = (size_t)n;
    (void)shl__event_post(l, &ev);
    if (msg != stack)
        free(msg);
}

void
shl__log_call_started(shl_ledger *l, const char *op_id, const char *call_id)
{
    struct shl__event ev;
    event_init(l, &ev, SHL__EV_CALL_STARTED, SHL_LOG_INFO, op_id);
    ev.a = call_id;
    ev.a_len = strlen(call_id);
    ev.b = l->id;
    ev.b_len = strlen(l->id);
    (void)shl__event_post(l, &ev);
}

void
shl__log_call_ended(shl_ledger *l, const char *op_id, const char *call_id,
                    int64_t duration_ms)
{
    struct shl__event ev;
    event_init(l, &ev, SHL__EV_CALL_ENDED, SHL_LOG_INFO, op_id);
    ev.a = call_id;
    ev.a_len = strlen(call_id);
    ev.value = duration_ms;
    (void)shl__event_post(l, &ev);
}

void
shl__log_call_failed(shl_ledger *l, const char *op_id, const char *call_id,
                     int64_t duration_ms, const char *error)
{
    struct shl__event ev;
    event_init(l, &ev, SHL__EV_CALL_FAILED, SHL_LOG_ERROR, op_id);
    ev.a = call_id;
    ev.a_len = strlen(call_id);
    ev.b = error ? error : "unknown";
    ev.b_len = strlen(ev.b);
    ev.value = duration_ms;
    (void)shl__event_post(l, &ev);
}

/* ---- public API ---- */

static int
post_text(shl_op *op, uint32_t kind, shl_log_level level, const char *msg,
          size_t len)
{
    struct shl__event ev;
    event_init(op->lop->l, &ev, kind, (uint32_t)level, op->lop->id);
    ev.a = msg;
    ev.a_len = len;
    int rc = shl__event_post(op->lop->l, &ev);
    /* sync_files: the line is in the file when the call returns */
    if (rc == 0 && op->lop->l->opts.sync_files)
        (void)shl__snapshotter_sync(op->lop->l, op->lop->id,
                                    op->lop->l->opts.timeout_ms);
    return rc;
}

int
shl_op_log(shl_op *op, shl_log_level level, const char *message)
{
    shl__clear_err();
    if (!op || !message)
        return SHL_SET_ERR(-EINVAL, "shl_op_log: NULL argument");
    if ((unsigned)level > SHL_LOG_ERROR)
        return SHL_SET_ERR(-EINVAL, "shl_op_log: level %d out of range",
                           (int)level);
    return post_text(op, SHL__EV_LOG, level, message, strlen(message));
}

int
shl_op_debug_log(shl_op *op, const char *message)
{
    shl__clear_err();
    if (!op || !message)
        return SHL_SET_ERR(-EINVAL, "shl_op_debug_log: NULL argument");
    return post_text(op, SHL__EV_DEBUG, SHL_LOG_DEBUG, message,
                     strlen(message));
}

int
shl_op_log_message(shl_op *op, int depth, const char *message)
{
    shl__clear_err();
    if (!op || !message)
        return SHL_SET_ERR(-EINVAL, "shl_op_log_message: NULL argument");
    if (depth < 0)
        return SHL_SET_ERR(-EINVAL, "shl_op_log_message: depth < 0");
    char elapsed[32];
    /* the session's elapsed time, as shl_op_elapsed_formatted gives it */
    if (shl__format_elapsed(shl__mono_ns() - op->lop->start_mono_ns, elapsed,
                            sizeof(elapsed)) < 0)
        elapsed[0] = 0;
    struct shl__sbuf b;
    shl__sbuf_init(&b);
    int rc = shl__sbuf_printf(&b, "%s | ", elapsed);
    for (int i = 0; rc == 0 && i < depth; i++)
        rc = shl__sbuf_add(&b, "    ", 4);
    if (rc == 0)
        rc = shl__sbuf_printf(&b, "[%s] %s", op->lop->l->id, message);
    if (rc == 0) {
        rc = post_text(op, SHL__EV_LOG, SHL_LOG_INFO, b.p, b.len);
        /* the original also print()s the bare line */
        flockfile(stdout);
        fwrite(b.p, 1, b.len, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        funlockfile(stdout);
    }
    shl__sbuf_fini(&b);
    return rc;
}
