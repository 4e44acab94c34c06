/*
 * format.c: the toString() equivalents the original's users print: one
 * snprintf-style function per object, with the original's field names.
 */
#include "session/format.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* snprintf into buf/cap that keeps going after truncation: returns the
 * length the whole text needs, as snprintf does. */
struct fmt {
    char *buf;
    size_t cap;
    size_t len;
};

static void fmt_add(struct fmt *f, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void
fmt_add(struct fmt *f, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    size_t room = f->len < f->cap ? f->cap - f->len : 0;
    int n = vsnprintf(room ? f->buf + f->len : NULL, room, format, ap);
    va_end(ap);
    if (n > 0)
        f->len += (size_t)n;
}

static int
fmt_done(struct fmt *f)
{
    if (f->cap && f->len >= f->cap)
        f->buf[f->cap - 1] = 0;
    return f->len > (size_t)INT32_MAX ? -EOVERFLOW : (int)f->len;
}

static const char *
b(bool v)
{
    return v ? "true" : "false";
}

int
shl_op_format(const shl_op *op, char *buf, size_t cap)
{
    if (!op || (cap && !buf))
        return -EINVAL;
    struct fmt f = {buf, cap, 0};
    char iso[48];
    if (shl_op_start_time_iso(op, iso, sizeof(iso)) < 0)
        iso[0] = 0;
    fmt_add(&f,
            "Operation(operationId: %s, participantId: %s, sessionId: %llu, "
            "pid: %d, isInitiator: %s, startTime: %s, pendingCallCount: %zu, "
            "isAborted: %s)",
            shl_op_id(op), shl_op_participant_id(op),
            (unsigned long long)shl_op_session_id(op), (int)shl_op_pid(op),
            b(shl_op_is_initiator(op)), iso, shl_op_pending_call_count(op),
            b(shl_op_is_aborted(op)));
    return fmt_done(&f);
}

int
shl_call_format(const shl_call *call, char *buf, size_t cap)
{
    if (!call || (cap && !buf))
        return -EINVAL;
    struct fmt f = {buf, cap, 0};
    char iso[48];
    if (shl__format_iso(shl_call_started_at_us(call), iso, sizeof(iso)) < 0)
        iso[0] = 0;
    const char *d = shl_call_description(call);
    fmt_add(&f,
            "Call(callId: %s, description: %s, startedAt: %s, isCompleted: "
            "%s)",
            shl_call_id(call), d ? d : "null", iso,
            b(shl_call_is_completed(call)));
    return fmt_done(&f);
}

int
shl_spawned_format(const shl_spawned *c, char *buf, size_t cap)
{
    if (!c || (cap && !buf))
        return -EINVAL;
    struct fmt f = {buf, cap, 0};
    fmt_add(&f,
            "SpawnedCall(callId: %s, completed: %s, success: %s, cancelled: "
            "%s)",
            shl_spawned_id(c), b(shl_spawned_is_completed(c)),
            b(shl_spawned_is_success(c)), b(shl_spawned_is_cancelled(c)));
    return fmt_done(&f);
}

int
shl_failed_info_format(const shl_failed_info *info, char *buf, size_t cap)
{
    if (!info || (cap && !buf))
        return -EINVAL;
    struct fmt f = {buf, cap, 0};
    fmt_add(&f, "OperationFailedInfo(operationId: %s, crashedCallIds: [",
            info->operation_id);
    uint32_t n = info->crashed_call_count < SHL_CRASHED_IDS_MAX
                     ? info->crashed_call_count
                     : SHL_CRASHED_IDS_MAX;
    for (uint32_t i = 0; i < n; i++)
        fmt_add(&f, "%s%s", i ? ", " : "", info->crashed_call_ids[i]);
    if (info->crashed_call_total > n)
        fmt_add(&f, "%s... %u more", n ? ", " : "",
                (unsigned)(info->crashed_call_total - n));
    fmt_add(&f, "], reason: %s)", info->reason[0] ? info->reason : "null");
    return fmt_done(&f);
}

static void
id_list(struct fmt *f, const char (*ids)[SHL_PARTICIPANT_ID_MAX + 1], size_t n)
{
    fmt_add(f, "[");
    for (size_t i = 0; i < n; i++)
        fmt_add(f, "%s%s", i ? ", " : "", ids[i]);
    fmt_add(f, "]");
}

int
shl_heartbeat_result_format(const shl_heartbeat_result *r, char *buf,
                            size_t cap)
{
    if (!r || (cap && !buf))
        return -EINVAL;
    struct fmt f = {buf, cap, 0};
    fmt_add(&f,
            "HeartbeatResult(abortFlag: %s, ledgerExists: %s, "
            "heartbeatUpdated: %s, callFrameCount: %u, tempResourceCount: "
            "%u, heartbeatAgeMs: %lld, isStale: %s, participants: ",
            b(r->abort_flag), b(r->ledger_exists), b(r->heartbeat_updated),
            (unsigned)r->call_frame_count, (unsigned)r->temp_resource_count,
            (long long)r->heartbeat_age_ms, b(r->is_stale));
    id_list(&f, (const char(*)[SHL_PARTICIPANT_ID_MAX + 1]) r->participants,
            r->participants ? r->participant_count : 0);
    fmt_add(&f, ", participantHeartbeatAges: {");
    for (size_t i = 0; r->ages && i < r->age_count; i++)
        fmt_add(&f, "%s%s: %lld", i ? ", " : "", r->ages[i].participant_id,
                (long long)r->ages[i].age_ms);
    fmt_add(&f, "}, staleParticipants: ");
    id_list(&f,
            (const char(*)[SHL_PARTICIPANT_ID_MAX + 1]) r->stale_participants,
            r->stale_participants ? r->stale_count : 0);
    fmt_add(&f, ", hasStaleChildren: %s)", b(r->has_stale_children));
    return fmt_done(&f);
}

int
shl_sync_result_format(const shl_sync_result *r, char *buf, size_t cap)
{
    if (!r || (cap && !buf))
        return -EINVAL;
    struct fmt f = {buf, cap, 0};
    fmt_add(&f,
            "SyncResult(success: %zu, failed: %zu, unknown: %zu, "
            "operationFailed: %s)",
            r->successful_count, r->failed_count, r->unknown_count,
            b(r->operation_failed));
    return fmt_done(&f);
}

int
shl_call_frame_format(const shl_call_frame *fr, char *buf, size_t cap)
{
    if (!fr || (cap && !buf))
        return -EINVAL;
    struct fmt f = {buf, cap, 0};
    fmt_add(&f,
            "CallFrame(participantId: %s, callId: %s, pid: %d, state: %s, "
            "heartbeatAgeMs: %lld)",
            fr->participant_id, fr->call_id, (int)fr->pid,
            shl_frame_state_name(fr->state), (long long)fr->heartbeat_age_ms);
    return fmt_done(&f);
}

int
shl_temp_resource_format(const shl_temp_resource *t, char *buf, size_t cap)
{
    if (!t || (cap && !buf))
        return -EINVAL;
    struct fmt f = {buf, cap, 0};
    fmt_add(&f, "TempResource(path: %s, owner: %d)", t->path, (int)t->owner);
    return fmt_done(&f);
}

bool
shl_call_frame_is_stale(const shl_call_frame *fr, int64_t timeout_ms)
{
    if (!fr)
        return false;
    if (timeout_ms <= 0)
        timeout_ms = 10000;
    return fr->heartbeat_age_ms > timeout_ms;
}
