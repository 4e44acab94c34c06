/*
 * cleanup.c: self-cleanup (DESIGN §6 phase 2): this ledger's part of a
 * failing operation. Every pending call's on_cleanup runs once, its frame
 * goes `cleanedUp`, and the temp resources this participant registered in
 * the operation are deleted. Runs on the monitor thread. The calls are
 * collected and pinned under op->mu and acted on after it (callref.h), so
 * a call its owner ends and releases meanwhile is neither freed nor reused
 * under us, and is skipped.
 */
#include "session/cleanup.h"

#include <stdlib.h>

#include "crash/resources.h"
#include "internal.h"
#include "session/callref.h"
#include "shm/frame.h"
#include "shm/lock.h"
#include "shm/records.h"

/* Self-cleanup of this ledger's part of a failing operation. */
void
shl__session_self_cleanup(shl_ledger *l, struct shl__lop *lop,
                          shl_op **sessions, size_t nsessions)
{
    struct shl__seg *s = &l->seg;
    for (size_t i = 0; i < nsessions; i++) {
        shl_op *op = sessions[i];
        if (op->lop != lop)
            continue;
        pthread_mutex_lock(&op->mu);
        bool done = op->cleaned;
        op->cleaned = true;
        size_t n = 0;
        for (struct shl_call *c = op->calls_head; c; c = c->next)
            if (atomic_load(&c->done) == 0)
                n++;
        struct shl_call **calls =
            n && !done ? malloc(n * sizeof(*calls)) : NULL;
        size_t k = 0;
        if (calls) /* pinned: callref.h */
            for (struct shl_call *c = op->calls_head; c; c = c->next)
                if (atomic_load(&c->done) == 0) {
                    shl__call_pin_locked(c);
                    calls[k++] = c;
                }
        pthread_mutex_unlock(&op->mu);
        if (done)
            continue;
        SHL_CRASH_POINT("cleanup.collected"); /* race tests: the window */
        for (size_t j = 0; j < k; j++) {
            struct shl_call *c = calls[j];
            /* ended since (its owner removed the frame): not ours to clean
             * up; failed since: shl_call_fail runs on_cleanup itself */
            if (atomic_load(&c->done) != 0)
                continue;
            bool ran = false;
            if (c->cb.on_cleanup &&
                atomic_compare_exchange_strong(&c->cleanup_ran, &ran, true))
                c->cb.on_cleanup(c, c->cb.user);
            (void)shl__frame_transition(shl__frame_at(s, c->frame_idx),
                                        c->frame_gen, SHL_FRAME_ACTIVE,
                                        SHL_FRAME_CLEANED_UP);
        }
        shl__calls_unpin(op, calls, k);
        free(calls);
    }
    /* our temp resources in this operation (once: the epoch bump below
     * wakes every monitor, which must not answer with another bump) */
    if (lop->self_cleaned)
        return;
    if (shl__lock(s, l->opts.timeout_ms) == 0) {
        lop->self_cleaned = true;
        struct shl__op *r = shl__op_live(s, lop->op_idx, lop->op_gen);
        if (r)
            atomic_fetch_add(&r->change_count, 1);
        shl__unlock(s);
        SHL_CRASH_POINT("cleanup.unlocked");
        /* the files first, the records after: killed in between, the
         * records are still there for the reaper */
        (void)shl__res_delete_then_free(l, lop->op_idx, lop->op_gen, l->slot,
                                        l->slot_gen, false);
        shl__epoch_bump(s);
    }
}
