/*
 * setstate.c: setOperationState. The original wrote operationState into
 * the JSON and logged OPERATION_STATE_CHANGED. Here the state drives the
 * crash-cleanup protocol, so a set state means what the protocol means by
 * it: cleanup starts a cleanup (as a failOnCrash crash does, with no
 * crashed call), failed fails the operation (as a failOnCrash call
 * failure does). No other transition is allowed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "files/log.h"
#include "internal.h"
#include "session/opstate.h"
#include "session/sync.h"
#include "shm/lock.h"
#include "shm/records.h"
#include "shm/segment.h"
#include "shm/table.h"

/* running -> cleanup, under the structure lock. The coordinator word is
 * left empty: the first member whose monitor sees the cleanup takes it
 * over (crash/protocol.c), runs the removal and archives. */
static int
start_cleanup(shl_op *op)
{
    struct shl__lop *lop = op->lop;
    shl_ledger *l = lop->l;
    struct shl__seg *s = &l->seg;
    int rc = shl__lock(s, l->opts.timeout_ms);
    if (rc)
        return rc;
    struct shl__op *r = shl__lop_record(lop);
    if (!r) {
        shl__unlock(s);
        return SHL_SET_ERR(SHL_ESTALE, "operation %s is gone", lop->id);
    }
    uint32_t st = atomic_load(&r->op_state);
    if (st != SHL_OP_RUNNING) {
        shl__unlock(s);
        if (st == SHL_OP_CLEANUP)
            return 0;
        return SHL_SET_ERR(SHL_ESTATE, "operation %s is %s, not running",
                           lop->id, shl_op_state_name((shl_op_state)st));
    }
    shl__intent_note(s, NULL);
    shl__intent_set(s, SHL__I_FAIL, SHL__T_OP, lop->op_idx, lop->op_gen);
    shl__seq_write_begin(&r->h);
    int64_t now_us = shl__wall_us();
    if (r->detection_us == 0)
        r->detection_us = now_us;
    r->failed_at_us = now_us;
    memset(r->reason, 0, sizeof(r->reason));
    snprintf(r->reason, sizeof(r->reason),
             "Operation state set to cleanup by %s", l->id);
    shl__seq_write_end(&r->h);
    atomic_store(&r->coordinator, 0);
    atomic_store_explicit(&r->op_state, SHL_OP_CLEANUP, memory_order_release);
    shl__op_touch(r);
    shl__intent_clear(s);
    shl__unlock(s);
    shl__epoch_bump(s);
    shl__oplog(l, lop->id, SHL_LOG_INFO,
               "OPERATION_STATE_CHANGED state=cleanup");
    return 0;
}

int
shl_op_set_state(shl_op *op, shl_op_state state)
{
    shl__clear_err();
    if (!op)
        return SHL_SET_ERR(-EINVAL, "NULL session");
    if ((unsigned)state > SHL_OP_COMPLETED)
        return SHL_SET_ERR(-EINVAL, "unknown operation state %d", (int)state);
    struct shl__lop *lop = op->lop;
    struct shl__op *r = shl__lop_record(lop);
    if (!r)
        return SHL_SET_ERR(SHL_ESTALE, "operation %s is gone", lop->id);
    uint32_t cur = atomic_load_explicit(&r->op_state, memory_order_acquire);
    if (cur == (uint32_t)state)
        return 0;
    int rc;
    switch (state) {
    case SHL_OP_CLEANUP:
        rc = start_cleanup(op);
        break;
    case SHL_OP_FAILED: {
        char reason[SHL_REASON_MAX + 1];
        snprintf(reason, sizeof(reason), "Operation state set to failed by %s",
                 lop->l->id);
        /* logs OPERATION_STATE_CHANGED state=failed and archives */
        rc = shl__op_fail(lop, reason, NULL);
        if (rc == SHL_ESTATE &&
            atomic_load(&r->op_state) == (uint32_t)SHL_OP_FAILED)
            rc = 0; /* failed meanwhile: the state is the one asked for */
        break;
    }
    default:
        return SHL_SET_ERR(SHL_ESTATE,
                           "operation %s: %s -> %s is not allowed "
                           "(complete with shl_op_complete)",
                           lop->id, shl_op_state_name((shl_op_state)cur),
                           shl_op_state_name(state));
    }
    if (rc == 0)
        shl__op_sync(op);
    return rc;
}
