/*
 * heartbeat.c: heartbeats. The ledger's own is one release store of the
 * monotonic clock into its participant slot (shl_ledger_heartbeat); a
 * session's heartbeat reads the operation before and after it, classifies
 * the result as the original does (abort flag, stale participants, ledger
 * gone) and reports it through the callbacks. The monitor thread calls
 * shl__session_tick when a session's heartbeat is due.
 */
#include "session/heartbeat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "session/deliver.h"
#include "session/opstate.h"
#include "session/sync.h"
#include "shm/reader.h"
#include "shm/records.h"

const char *
shl_heartbeat_error_type_name(shl_heartbeat_error_type t)
{
    switch (t) {
    case SHL_HB_LEDGER_NOT_FOUND:
        return "ledgerNotFound";
    case SHL_HB_LOCK_FAILED:
        return "lockFailed";
    case SHL_HB_ABORT_FLAG_SET:
        return "abortFlagSet";
    case SHL_HB_HEARTBEAT_STALE:
        return "heartbeatStale";
    case SHL_HB_IO_ERROR:
        return "ioError";
    }
    return "unknown";
}

void
shl_heartbeat_opts_init(shl_heartbeat_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->interval_ms = 4500;
    o->jitter_ms = 500;
}

void
shl_heartbeat_result_free(shl_heartbeat_result *r)
{
    if (!r)
        return;
    free(r->participants);
    free(r->ages);
    free(r->stale_participants);
    shl_snapshot_free(r->data_before);
    shl_snapshot_free(r->data_after);
    free(r);
}

/* Participants of the operation (members and frame owners) whose
 * heartbeat is older than stale_ms, other than this ledger: a participant
 * stopped (SIGSTOP, a debugger, a hung process) shows here whether or not
 * it has frames, from the first heartbeat after it went quiet until the
 * monitor fences it and after. res has room for frame_count +
 * participant_count entries in each list. */
static void
add_stale_members(shl_heartbeat_result *res, const shl_snapshot *snap,
                  const shl_ledger *l, int64_t stale_ms)
{
    for (size_t i = 0; i < snap->participant_count; i++) {
        const shl_participant_info *p = &snap->participants[i];
        if (p->slot == l->slot || p->heartbeat_age_ms < 0 ||
            p->participant_id[0] == 0)
            continue;
        size_t k;
        for (k = 0; k < res->age_count; k++)
            if (!strcmp(res->ages[k].participant_id, p->participant_id))
                break;
        if (k == res->age_count) {
            memcpy(res->ages[res->age_count++].participant_id,
                   p->participant_id, sizeof(p->participant_id));
            res->ages[k].age_ms = p->heartbeat_age_ms;
        } else if (p->heartbeat_age_ms > res->ages[k].age_ms) {
            res->ages[k].age_ms = p->heartbeat_age_ms;
        }
        if (p->heartbeat_age_ms <= stale_ms ||
            !strcmp(p->participant_id, l->id))
            continue;
        for (k = 0; k < res->stale_count; k++)
            if (!strcmp(res->stale_participants[k], p->participant_id))
                break;
        if (k == res->stale_count)
            memcpy(res->stale_participants[res->stale_count++],
                   p->participant_id, sizeof(p->participant_id));
    }
}

int
shl_op_heartbeat(shl_op *op, shl_heartbeat_result **out)
{
    shl__clear_err();
    if (!op || !out)
        return SHL_SET_ERR(-EINVAL, "NULL argument");
    struct shl__lop *lop = op->lop;
    shl_ledger *l = lop->l;
    if (!shl__lop_record(lop))
        return SHL_SET_ERR(SHL_ENOTFOUND, "Operation %s not found", lop->id);
    shl_snapshot *before = NULL, *after = NULL;
    int rc = shl_reader_snapshot(&l->reader, lop->id, &before);
    if (rc)
        return rc == SHL_ENOTFOUND
                   ? SHL_SET_ERR(SHL_ENOTFOUND, "Operation %s not found",
                                 lop->id)
                   : rc;
    rc = shl_ledger_heartbeat(l);
    if (rc) {
        shl_snapshot_free(before);
        return rc;
    }
    /* the operation's lastHeartbeat moves with every heartbeat, as the
     * original's did (and its JSON is rewritten for it) */
    struct shl__op *rec = shl__lop_record(lop);
    if (rec)
        shl__op_touch(rec);
    rc = shl_reader_snapshot(&l->reader, lop->id, &after);
    if (rc) {
        shl_snapshot_free(before);
        return rc == SHL_ENOTFOUND
                   ? SHL_SET_ERR(SHL_ENOTFOUND, "Operation %s not found",
                                 lop->id)
                   : rc;
    }
    shl_heartbeat_result *res = calloc(1, sizeof(*res));
    /* room for every frame and every participant (stale members without
     * frames are reported too) */
    size_t nf = before->frame_count + before->participant_count;
    size_t nframes = before->frame_count;
    if (res) {
        res->participants = calloc(nf ? nf : 1, sizeof(*res->participants));
        res->ages = calloc(nf ? nf : 1, sizeof(*res->ages));
        res->stale_participants =
            calloc(nf ? nf : 1, sizeof(*res->stale_participants));
    }
    if (!res || !res->participants || !res->ages || !res->stale_participants) {
        shl_snapshot_free(before);
        shl_snapshot_free(after);
        if (res) {
            free(res->participants);
            free(res->ages);
            free(res->stale_participants);
            free(res);
        }
        return -ENOMEM;
    }
    int64_t stale_ms = atomic_load(&lop->staleness_ms);
    res->abort_flag = after->aborted;
    res->ledger_exists = true;
    res->heartbeat_updated = true;
    res->call_frame_count = (uint32_t)after->frame_count;
    res->temp_resource_count = (uint32_t)after->resource_count;
    res->heartbeat_age_ms = (shl__wall_us() - before->last_heartbeat_us) / 1000;
    for (size_t i = 0; i < nframes; i++) {
        const shl_call_frame *f = &before->frames[i];
        memcpy(res->participants[res->participant_count++], f->participant_id,
               sizeof(f->participant_id));
        size_t k;
        for (k = 0; k < res->age_count; k++)
            if (!strcmp(res->ages[k].participant_id, f->participant_id))
                break;
        if (k == res->age_count)
            memcpy(res->ages[res->age_count++].participant_id,
                   f->participant_id, sizeof(f->participant_id));
        res->ages[k].age_ms = f->heartbeat_age_ms;
        if (f->heartbeat_age_ms > stale_ms && strcmp(f->participant_id, l->id))
            memcpy(res->stale_participants[res->stale_count++],
                   f->participant_id, sizeof(f->participant_id));
    }
    add_stale_members(res, before, l, stale_ms);
    res->is_stale = res->stale_count > 0;
    res->has_stale_children = res->stale_count > 0;
    res->data_before = before;
    res->data_after = after;
    shl__session_cache(op, after);
    shl__op_sync(op);
    *out = res;
    return 0;
}

void
shl__hb_error(shl_op *op, shl_heartbeat_error_type t, int cause, const char *fmt,
         ...)
{
    shl_heartbeat_error e = {.type = t, .cause = cause};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof(e.message), fmt, ap);
    va_end(ap);
    if (op->hb.on_error)
        op->hb.on_error(op, &e, op->hb.user);
    if (op->cb.on_heartbeat_error)
        op->cb.on_heartbeat_error(op, &e, op->cb.user);
    shl_ledger *l = op->lop->l;
    /* the global callback gets what the header promises: the operation
     * gone, and stale heartbeats */
    if ((t == SHL_HB_LEDGER_NOT_FOUND || t == SHL_HB_HEARTBEAT_STALE) &&
        l->opts.callbacks.on_global_heartbeat_error)
        l->opts.callbacks.on_global_heartbeat_error(op, &e,
                                                    l->opts.callbacks.user);
}

/* One heartbeat tick of a session, classified as the original does. */
void
shl__session_tick(shl_op *op)
{
    shl_heartbeat_result *res = NULL;
    int rc = shl_op_heartbeat(op, &res);
    if (rc == SHL_ENOTFOUND) {
        shl__hb_error(op, SHL_HB_LEDGER_NOT_FOUND, rc, "Operation %s not found",
                 op->lop->id);
        return;
    }
    if (rc) {
        shl__hb_error(op, SHL_HB_IO_ERROR, rc, "Heartbeat failed: %s",
                 shl_strerror(rc));
        return;
    }
    if (res->abort_flag) {
        shl__hb_error(op, SHL_HB_ABORT_FLAG_SET, 0, "Abort flag is set");
        shl__session_deliver_abort(op);
        op->hb_enabled = false; /* as the original: abort stops it */
    } else if (res->has_stale_children) {
        char msg[200] = "";
        size_t o = 0;
        for (size_t i = 0; i < res->stale_count && o < sizeof(msg) - 2; i++)
            o += (size_t)snprintf(msg + o, sizeof(msg) - o, "%s%s",
                                  i ? ", " : "", res->stale_participants[i]);
        shl__hb_error(op, SHL_HB_HEARTBEAT_STALE, 0,
                 "Stale heartbeat detected from: %s", msg);
    } else {
        if (op->hb.on_success)
            op->hb.on_success(op, res, op->hb.user);
        if (op->cb.on_heartbeat_success)
            op->cb.on_heartbeat_success(op, res, op->cb.user);
    }
    shl_heartbeat_result_free(res);
}

int
shl_op_start_heartbeat(shl_op *op, const shl_heartbeat_opts *o)
{
    shl__clear_err();
    if (!op || !o)
        return SHL_SET_ERR(-EINVAL, "shl_op_start_heartbeat: NULL %s",
                           op ? "options" : "session");
    if (o->interval_ms <= 0 || o->jitter_ms < 0)
        return SHL_SET_ERR(-EINVAL, "heartbeat interval must be > 0 and "
                                    "jitter >= 0");
    shl_ledger *l = op->lop->l;
    pthread_mutex_lock(&l->mu);
    op->hb = *o;
    op->hb_interval_ms = o->interval_ms;
    op->hb_jitter_ms = o->jitter_ms;
    int64_t jitter =
        o->jitter_ms ? (shl__wall_us() / 1000 % 1000) % o->jitter_ms : 0;
    op->hb_next_ns = shl__mono_ns() + (o->interval_ms + jitter) * 1000000;
    op->hb_enabled = true;
    pthread_mutex_unlock(&l->mu);
    shl__efd_signal(l->mon_wake_efd); /* recompute its timeout */
    return 0;
}

void
shl_op_stop_heartbeat(shl_op *op)
{
    shl__clear_err();
    if (!op)
        return;
    shl_ledger *l = op->lop->l;
    pthread_mutex_lock(&l->mu);
    op->hb_enabled = false;
    pthread_mutex_unlock(&l->mu);
}

int
shl_ledger_heartbeat(shl_ledger *l)
{
    shl__clear_err();
    if (!l)
        return SHL_SET_ERR(-EINVAL, "NULL ledger");
    struct shl__part *p = shl__part_at(&l->seg, l->slot);
    if (SHL__UNLIKELY(atomic_load_explicit(&p->fenced, memory_order_relaxed)))
        return SHL_SET_ERR(SHL_EFENCED, "participant %s was declared crashed",
                           l->id);
    atomic_store_explicit(&p->heartbeat_ns, shl__mono_ns(),
                          memory_order_release);
    return 0;
}

void
shl__session_init_heartbeat(shl_op *op)
{
    shl_ledger *l = op->lop->l;
    op->hb_enabled = true;
    op->hb_interval_ms = l->opts.heartbeat_interval_ms;
    op->hb_jitter_ms = 500;
    op->hb_next_ns = shl__mono_ns() + op->hb_interval_ms * 1000000;
    shl_heartbeat_opts_init(&op->hb);
}
