/*
 * opstate.c: a session's view of its operation's record: identity and
 * times, the state, the abort flag, failing the operation and reading its
 * failure info.
 */
#include "session/opstate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash/protocol.h"
#include "crash/reaper.h"
#include "files/archive.h"
#include "files/log.h"
#include "internal.h"
#include "session/deliver.h"
#include "session/sync.h"
#include "shm/lock.h"
#include "shm/records.h"
#include "shm/table.h"

struct shl__op *
shl__lop_record(struct shl__lop *lop)
{
    struct shl__seg *s = &lop->l->seg;
    struct shl__op *r = shl__op_at(s, lop->op_idx);
    if (atomic_load_explicit(&r->h.gen, memory_order_acquire) !=
            lop->op_gen ||
        atomic_load_explicit(&r->h.state, memory_order_acquire) !=
            SHL__R_ALLOCATED)
        return NULL;
    return r;
}

static int
read_failure(struct shl__seg *s, struct shl__op *r, uint64_t gen,
             shl_failed_info *out)
{
    struct shl__op copy;
    for (int tries = 0; tries < 1000; tries++) {
        if (shl__rec_copy(&copy, r, sizeof(copy), 100) != 0)
            continue;
        if (atomic_load(&copy.h.gen) != gen)
            return SHL_ESTALE;
        memset(out, 0, sizeof(*out));
        shl__copy_field(out->operation_id, copy.id, sizeof(copy.id));
        out->failed_at_us = copy.failed_at_us;
        shl__copy_field(out->reason, copy.reason, sizeof(copy.reason));
        uint32_t off = 0, k = 0;
        const char *id;
        while (out->crashed_call_count < SHL_CRASHED_IDS_MAX &&
               (id = shl__op_crashed_next(&copy, &off, &k)) != NULL)
            shl__copy_field(out->crashed_call_ids[out->crashed_call_count++],
                            id, SHL_CALL_ID_MAX + 1);
        out->crashed_call_total = copy.crashed_total > copy.crashed_count
                                      ? copy.crashed_total
                                      : copy.crashed_count;
        return 0;
    }
    SHL__UNUSED(s);
    return -EAGAIN;
}

int
shl_op_failure_info(shl_op *op, shl_failed_info *out)
{
    shl__clear_err();
    if (!op || !out)
        return SHL_SET_ERR(-EINVAL, "NULL argument");
    struct shl__op *r = shl__lop_record(op->lop);
    if (!r)
        return SHL_SET_ERR(SHL_ESTALE, "operation %s is gone", op->lop->id);
    uint32_t st = atomic_load_explicit(&r->op_state, memory_order_acquire);
    if (st != SHL_OP_FAILED && st != SHL_OP_CLEANUP)
        return 0;
    int rc = read_failure(&op->lop->l->seg, r, op->lop->op_gen, out);
    return rc ? rc : 1;
}

int
shl_op_crashed_call_ids(shl_op *op, char (*ids)[SHL_CALL_ID_MAX + 1],
                        size_t cap)
{
    if (!op || (cap && !ids))
        return SHL_SET_ERR(-EINVAL, "NULL argument");
    struct shl__op *r = shl__lop_record(op->lop);
    if (!r)
        return SHL_SET_ERR(SHL_ESTALE, "operation %s is gone", op->lop->id);
    struct shl__op *copy = malloc(sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    int rc = -EAGAIN;
    for (int tries = 0; tries < 1000 && rc == -EAGAIN; tries++) {
        if (shl__rec_copy(copy, r, sizeof(*copy), 100) != 0)
            continue;
        if (atomic_load(&copy->h.gen) != op->lop->op_gen) {
            rc = SHL_SET_ERR(SHL_ESTALE, "operation %s is gone",
                             op->lop->id);
            break;
        }
        uint32_t off = 0, k = 0, n = 0;
        const char *id;
        while ((id = shl__op_crashed_next(copy, &off, &k)) != NULL) {
            if (n < cap)
                shl__copy_field(ids[n], id, SHL_CALL_ID_MAX + 1);
            n++;
        }
        rc = (int)n;
    }
    free(copy);
    return rc;
}

int
shl__op_fail(struct shl__lop *lop, const char *reason,
             const char *crashed_call_id)
{
    struct shl__seg *s = &lop->l->seg;
    int rc = shl__lock(s, lop->l->opts.timeout_ms);
    if (rc)
        return rc;
    struct shl__op *r = shl__lop_record(lop);
    if (!r) {
        shl__unlock(s);
        return SHL_SET_ERR(SHL_ESTALE, "operation %s is gone", lop->id);
    }
    uint32_t st = atomic_load(&r->op_state);
    if (st == SHL_OP_COMPLETED || st == SHL_OP_FAILED) {
        shl__unlock(s);
        return SHL_SET_ERR(SHL_ESTATE, "operation %s is already %s", lop->id,
                           shl_op_state_name((shl_op_state)st));
    }
    /* Already failing (cleanup after a crash): the first failure's reason,
     * time and crashed calls stand. A call that fails now (a survivor's,
     * its command stopped because of the cleanup) did not crash and is not
     * the cause: it used to overwrite the reason and join the crashed ids
     * (a trial with 40 'shmledger run' and 10 killed read "Call ...
     * failed: killed by signal 15" as the failure's reason). */
    bool first = st != SHL_OP_CLEANUP;
    shl__intent_note(s, first ? crashed_call_id : NULL);
    shl__intent_set(s, SHL__I_FAIL, SHL__T_OP, lop->op_idx, lop->op_gen);
    SHL_CRASH_POINT("fail.intent");
    shl__seq_write_begin(&r->h);
    if (first || r->failed_at_us == 0)
        r->failed_at_us = shl__wall_us();
    if (first || r->reason[0] == 0) {
        memset(r->reason, 0, sizeof(r->reason));
        if (reason)
            shl__copy_field(r->reason, reason, sizeof(r->reason));
    }
    SHL_CRASH_POINT("fail.half");
    if (crashed_call_id && first)
        (void)shl__op_crashed_add(r, crashed_call_id);
    shl__seq_write_end(&r->h);
    atomic_store_explicit(&r->op_state, SHL_OP_FAILED, memory_order_release);
    /* we are its archiver: the record is not freed before our archive is
     * written, and a reaper takes over if we die first (crash/reaper.c) */
    atomic_store(&r->coordinator, shl__coordinator_self(lop->l));
    shl__op_touch(r);
    shl__intent_clear(s);
    shl_snapshot *arch = shl__archive_capture(lop->l, lop->op_idx,
                                              lop->op_gen);
    shl__unlock(s);
    shl__epoch_bump(s);
    SHL_CRASH_POINT("fail.unlocked");
    shl__oplog(lop->l, lop->id, SHL_LOG_INFO,
               "OPERATION_STATE_CHANGED state=failed");
    if (shl__archive_write(lop->l, arch) == 0)
        shl__op_archived(lop->l, lop->op_idx, lop->op_gen);
    else /* reported; a later sweep writes it again */
        shl__op_archive_failed(lop->l, lop->op_idx, lop->op_gen);
    return 0;
}

void
shl__lop_deliver_failure(struct shl__lop *lop)
{
    SHL__UNUSED(lop);
}

uint64_t
shl_op_session_id(const shl_op *op)
{
    return op ? op->session_id : 0;
}

const char *
shl_op_id(const shl_op *op)
{
    return op ? op->lop->id : NULL;
}

const char *
shl_op_participant_id(const shl_op *op)
{
    return op ? op->lop->l->id : NULL;
}

int32_t
shl_op_pid(const shl_op *op)
{
    return op ? op->lop->l->recorded_pid : 0;
}

bool
shl_op_is_initiator(const shl_op *op)
{
    return op && op->lop->is_initiator;
}

int64_t
shl_op_start_time_us(const shl_op *op)
{
    return op ? op->lop->start_wall_us : 0;
}

int64_t
shl_op_start_time_ms(const shl_op *op)
{
    return op ? op->lop->start_wall_us / 1000 : 0;
}

int64_t
shl_op_elapsed_ns(const shl_op *op)
{
    return op ? shl__mono_ns() - op->lop->start_mono_ns : 0;
}

int
shl_op_elapsed_formatted(const shl_op *op, char *buf, size_t cap)
{
    if (!op || !buf)
        return -EINVAL;
    return shl__format_elapsed(shl_op_elapsed_ns(op), buf, cap);
}

int
shl_op_start_time_iso(const shl_op *op, char *buf, size_t cap)
{
    if (!op || !buf)
        return -EINVAL;
    return shl__format_iso(op->lop->start_wall_us, buf, cap);
}

bool
shl_op_is_aborted(const shl_op *op)
{
    shl__clear_err();
    return op && atomic_load(&op->aborted);
}

int64_t
shl_op_staleness_threshold_ms(const shl_op *op)
{
    return op ? atomic_load(&op->lop->staleness_ms) : 0;
}

int
shl_op_set_staleness_threshold_ms(shl_op *op, int64_t ms)
{
    shl__clear_err();
    if (!op || ms <= 0)
        return SHL_SET_ERR(-EINVAL, "staleness threshold must be > 0");
    atomic_store(&op->lop->staleness_ms, ms);
    return 0;
}

int
shl_op_set_abort_flag(shl_op *op, bool aborted)
{
    shl__clear_err();
    if (!op)
        return SHL_SET_ERR(-EINVAL, "NULL session");
    struct shl__op *r = shl__lop_record(op->lop);
    if (!r)
        return SHL_SET_ERR(SHL_ESTALE, "operation %s is gone", op->lop->id);
    atomic_store_explicit(&r->aborted, aborted ? 1 : 0, memory_order_release);
    shl__op_touch(r);
    /* the waiters first (they sleep on the flag itself), then every futex
     * thread (the epoch), then the trail event: whatever this thread does
     * after a wake-up is time the woken may wait for a CPU */
    if (aborted)
        shl__session_wake_abort_waiters(r);
    shl__epoch_bump(&op->lop->l->seg);
    shl__optrail(op->lop->l, op->lop->id, "ABORT_FLAG_SET aborted=%s",
                 aborted ? "true" : "false");
    shl__op_sync(op);
    return 0;
}

int
shl_op_check_abort(shl_op *op)
{
    shl__clear_err();
    if (!op)
        return SHL_SET_ERR(-EINVAL, "NULL session");
    struct shl__op *r = shl__lop_record(op->lop);
    if (!r)
        return SHL_SET_ERR(SHL_ESTALE, "operation %s is gone", op->lop->id);
    return atomic_load_explicit(&r->aborted, memory_order_acquire) ? 1 : 0;
}

void
shl_op_trigger_abort(shl_op *op)
{
    shl__clear_err();
    if (!op)
        return;
    shl__session_deliver_abort(op);
}

int
shl_op_get_state(shl_op *op)
{
    shl__clear_err();
    if (!op)
        return SHL_SET_ERR(-EINVAL, "NULL session");
    struct shl__op *r = shl__lop_record(op->lop);
    if (!r)
        return SHL_SET_ERR(SHL_ESTALE, "operation %s is gone", op->lop->id);
    uint32_t st = atomic_load_explicit(&r->op_state, memory_order_acquire);
    return st <= SHL_OP_COMPLETED ? (int)st : SHL_ECORRUPT;
}
