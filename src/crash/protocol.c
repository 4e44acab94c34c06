/*
 * protocol.c: the crash-cleanup protocol (DESIGN §6) on the segment:
 * detection and the coordinator's removal. The reaper (reaper.c) and the
 * monitor (process/monitor.c) run it; the per-session self-cleanup is
 * session/cleanup.c.
 *
 * Detection: under the structure lock, the observer marks the crashed
 * participant's frames `crashed` and records the detection time. A crash
 * of a failOnCrash frame moves the operation to `cleanup` with the observer
 * as coordinator (its own frames `cleaningUp`); other crashes are contained
 * (those frames are removed). Removal: when no frame is active any more, or
 * two heartbeat intervals after detection, the coordinator deletes the
 * remaining temp resources, clears the frames, and sets `failed`; then the
 * operation is archived. A dead or stale coordinator is replaced by the
 * next observer (CAS on the coordinator word).
 *
 * Proof of death is the kernel's: a participant is dead when nobody holds
 * its OFD lock on byte SHL__LOCK_PART_BASE + slot (shl__slot_alive). A
 * participant whose heartbeat is older than staleThreshold is *stale*
 * (shl__slot_stale): treated as crashed for its operations, fenced, but its
 * slot and records are never reclaimed while it lives.
 */
#include "crash/protocol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lops.h"
#include "crash/resources.h"
#include "files/archive.h"
#include "files/log.h"
#include "internal.h"
#include "shm/frame.h"
#include "shm/lock.h"
#include "shm/records.h"
#include "shm/table.h"

static uint64_t
coord_make(uint32_t slot, uint64_t gen)
{
    return ((gen & ((1ull << 50) - 1)) << 13) | (uint64_t)(slot + 1);
}

static uint32_t
coord_slot(uint64_t w)
{
    return w ? (uint32_t)(w & 0x1fffu) - 1 : SHL__NO_SLOT;
}

static uint64_t
coord_gen(uint64_t w)
{
    return w >> 13;
}

/* Is participant slot `slot` (generation gen) alive, as the kernel says? */
bool
shl__slot_alive(shl_ledger *l, uint32_t slot, uint64_t gen)
{
    struct shl__seg *s = &l->seg;
    if (slot >= s->hdr->cap[SHL__T_PART])
        return false;
    if (slot == l->slot)
        return gen == l->slot_gen;
    struct shl__part *p = shl__part_at(s, slot);
    uint32_t st = atomic_load_explicit(&p->h.state, memory_order_acquire);
    if ((st != SHL__R_ALLOCATED && st != SHL__R_STARTING) ||
        atomic_load(&p->h.gen) != gen)
        return false;
    return shl__ofd_is_locked(s->fd, SHL__LOCK_PART_BASE + slot) == 1;
}

bool
shl__slot_stale(shl_ledger *l, uint32_t slot, int64_t now)
{
    struct shl__part *p = shl__part_at(&l->seg, slot);
    int64_t hb = atomic_load_explicit(&p->heartbeat_ns, memory_order_acquire);
    return hb != 0 && (now - hb) / 1000000 > l->opts.stale_threshold_ms;
}

bool
shl__op_is_member(struct shl__op *r, uint32_t slot)
{
    if (slot >= SHL__MAX_PARTICIPANTS)
        return false;
    return (atomic_load(&r->members[slot / 64]) >> (slot % 64)) & 1u;
}

static bool
ledger_in_op(shl_ledger *l, uint32_t op_idx, uint64_t op_gen)
{
    pthread_mutex_lock(&l->mu);
    bool in = shl__lops_find(l, op_idx, op_gen) != NULL;
    pthread_mutex_unlock(&l->mu);
    return in;
}

/* Does the operation record name crashed call `cid`? When its id buffer
 * overflowed, not all names are known: then say yes, so that nothing is
 * counted twice. Lock held. */
static bool
op_names_crashed(const struct shl__op *r, const char *cid)
{
    uint32_t off = 0, k = 0, n = 0;
    const char *id;
    while ((id = shl__op_crashed_next(r, &off, &k)) != NULL) {
        n++;
        if (strcmp(id, cid) == 0)
            return true;
    }
    return n < r->crashed_total;
}

/*
 * Mark the frames of (slot, gen) in operation (op_idx, op_gen) crashed and
 * move the operation on. `why` names the cause ("crashed", "is stale").
 * Returns the number of frames marked, or a lock error.
 */
int
shl__crash_op(shl_ledger *l, uint32_t op_idx, uint64_t op_gen,
              uint32_t slot, uint64_t slot_gen, const char *why)
{
    struct shl__seg *s = &l->seg;
    int rc = shl__lock(s, l->opts.timeout_ms);
    if (rc)
        return rc;
    struct shl__op *r = shl__op_at(s, op_idx);
    if (atomic_load(&r->h.gen) != op_gen ||
        atomic_load(&r->h.state) != SHL__R_ALLOCATED) {
        shl__unlock(s);
        return 0;
    }
    uint32_t st = atomic_load(&r->op_state);
    if (st == SHL_OP_COMPLETED || st == SHL_OP_FAILED) {
        shl__unlock(s);
        return 0;
    }
    struct shl__part *dp = shl__part_at(s, slot);
    char who[SHL_PARTICIPANT_ID_MAX + 1];
    shl__copy_field(who, dp->id, sizeof(dp->id));
    int32_t who_pid = dp->pid;

    uint32_t marked = 0, redo = 0;
    bool fail = false;
    uint32_t contained[64];
    uint64_t contained_gen[64];
    uint32_t ncontained = 0;
    /* every crashed call id (they all go into the failure info) */
    char (*ids)[SHL_CALL_ID_MAX + 1] = NULL;
    uint32_t nids = 0, idcap = 0, lost = 0;
    uint32_t hw = shl__table_hwm(s, SHL__T_FRAME);
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__frame *f = shl__frame_at(s, i);
        if (atomic_load(&f->h.state) != SHL__R_ALLOCATED)
            continue;
        uint64_t g = atomic_load(&f->h.gen);
        if (f->op_idx != op_idx || f->op_gen != op_gen ||
            f->part_slot != slot || f->part_gen != slot_gen)
            continue;
        /* A frame this dead participant's frame loop already marked: an
         * observer killed inside this locked section (the marks come first,
         * the record after) left it crashed and maybe unnamed, and the
         * operation maybe still running. Roll it forward now: name it if
         * the record does not, move the state, retire it if contained.
         * Before, its call id was lost from the failure for good. */
        bool fresh = shl__frame_mark_crashed(f, g);
        if (!fresh) {
            uint64_t w = atomic_load(&f->fword);
            if (!SHL__FWORD_GEN_OK(w, g) ||
                SHL__FWORD_STATE(w) != SHL_FRAME_CRASHED)
                continue;
        }
        SHL_CRASH_POINT("crash.marked");
        char cid[SHL_CALL_ID_MAX + 1];
        shl__copy_field(cid, f->call_id, sizeof(f->call_id));
        if (fresh)
            marked++;
        else
            redo++;
        if (f->fail_on_crash)
            fail = true;
        else if (ncontained < SHL__ARRAY_LEN(contained)) {
            contained[ncontained] = i;
            contained_gen[ncontained++] = g;
        }
        if (!fresh && op_names_crashed(r, cid))
            continue;
        if (nids == idcap) {
            uint32_t nc = idcap ? idcap * 2 : 16;
            void *p = realloc(ids, nc * sizeof(*ids));
            if (p) {
                ids = p;
                idcap = nc;
            }
        }
        if (nids < idcap)
            shl__copy_field(ids[nids++], cid, sizeof(cid));
        else
            lost++; /* no memory: counted, not named */
    }
    bool now_cleanup = false;
    if (marked || redo) {
        shl__intent_note(s, nids ? ids[0] : NULL);
        shl__intent_set(s, SHL__I_CRASH, SHL__T_OP, op_idx, op_gen);
        SHL_CRASH_POINT("crash.intent");
        shl__seq_write_begin(&r->h);
        int64_t now_us = shl__wall_us();
        if (r->detection_us == 0)
            r->detection_us = now_us;
        for (uint32_t k = 0; k < nids; k++)
            (void)shl__op_crashed_add(r, ids[k]);
        r->crashed_total += lost;
        if (fail && st == SHL_OP_RUNNING) {
            r->failed_at_us = now_us;
            memset(r->reason, 0, sizeof(r->reason));
            snprintf(r->reason, sizeof(r->reason),
                     "Participant %s (pid %d) %s", who, (int)who_pid, why);
        }
        shl__seq_write_end(&r->h);
        if (fail && st == SHL_OP_RUNNING) {
            /* the observer coordinates if it takes part; else the first
             * member that notices the cleanup state takes over */
            bool member = ledger_in_op(l, op_idx, op_gen);
            atomic_store(&r->coordinator,
                         member ? coord_make(l->slot, l->slot_gen) : 0);
            atomic_store_explicit(&r->op_state, SHL_OP_CLEANUP,
                                  memory_order_release);
            now_cleanup = true;
            if (member) {
                /* our own active frames become the coordinator marker */
                for (uint32_t i = 0; i < hw; i++) {
                    struct shl__frame *f = shl__frame_at(s, i);
                    if (atomic_load(&f->h.state) != SHL__R_ALLOCATED ||
                        f->op_idx != op_idx || f->op_gen != op_gen ||
                        f->part_slot != l->slot)
                        continue;
                    (void)shl__frame_transition(f, atomic_load(&f->h.gen),
                                                SHL_FRAME_ACTIVE,
                                                SHL_FRAME_CLEANING_UP);
                }
            }
        }
        atomic_fetch_add(&r->change_count, 1);
        shl__intent_clear(s);
        /* readers retry snapshots across this change (before frames go) */
        shl__epoch_bump(s);
    }
    /* contained crashes: those frames go, the operation goes on */
    for (uint32_t k = 0; k < ncontained; k++) {
        struct shl__frame *f = shl__frame_at(s, contained[k]);
        (void)shl__frame_retire(s, f, contained_gen[k], SHL_FRAME_CRASHED);
    }
    shl__unlock(s);
    if (marked || redo) {
        shl__epoch_bump(s);
        char opid[SHL_OPERATION_ID_MAX + 1];
        shl__copy_field(opid, r->id, sizeof(r->id));
        for (uint32_t k = 0; k < nids; k++)
            shl__oplog(l, opid, SHL_LOG_ERROR,
                       "CRASH_DETECTED callId=%s reason=Participant %s",
                       ids[k], why);
        free(ids);
        ids = NULL;
        if (now_cleanup) {
            shl__oplog(l, opid, SHL_LOG_INFO,
                       "OPERATION_STATE_CHANGED state=cleanup");
            shl__oplog(l, opid, SHL_LOG_ERROR,
                       "CLEANUP_STARTED reason=Participant %s (pid %d) %s",
                       who, (int)who_pid, why);
        }
    }
    free(ids);
    return (int)marked;
}

/* Phase 3 by the coordinator. Returns true when the operation was moved to
 * failed. */
bool
shl__coordinator_alive(shl_ledger *l, uint64_t cw)
{
    struct shl__seg *s = &l->seg;
    uint32_t cs = coord_slot(cw);
    if (cs == SHL__NO_SLOT || cs >= s->hdr->cap[SHL__T_PART])
        return false;
    struct shl__part *p = shl__part_at(s, cs);
    uint64_t pg = atomic_load(&p->h.gen);
    return (pg & ((1ull << 50) - 1)) == coord_gen(cw) &&
           shl__slot_alive(l, cs, pg) &&
           !shl__slot_stale(l, cs, shl__mono_ns()) && !atomic_load(&p->fenced);
}

uint64_t
shl__coordinator_self(shl_ledger *l)
{
    return coord_make(l->slot, l->slot_gen);
}

bool
shl__crash_coordinate(shl_ledger *l, struct shl__lop *lop)
{
    struct shl__seg *s = &l->seg;
    struct shl__op *r = shl__op_live(s, lop->op_idx, lop->op_gen);
    if (!r || atomic_load(&r->op_state) != SHL_OP_CLEANUP)
        return false;
    uint64_t mine = coord_make(l->slot, l->slot_gen);
    uint64_t cw = atomic_load(&r->coordinator);
    if (cw != mine) {
        if (shl__coordinator_alive(l, cw) ||
            !atomic_compare_exchange_strong(&r->coordinator, &cw, mine))
            return false;
    }
    /* removal condition: no frame active, or the grace period passed */
    int64_t grace_us = 2 * l->opts.heartbeat_interval_ms * 1000;
    int64_t det = r->detection_us;
    bool grace = det && shl__wall_us() - det >= grace_us;
    bool active = false;
    uint32_t hw = shl__table_hwm(s, SHL__T_FRAME);
    for (uint32_t i = 0; i < hw && !active; i++) {
        struct shl__frame *f = shl__frame_at(s, i);
        if (atomic_load(&f->h.state) != SHL__R_ALLOCATED ||
            f->op_idx != lop->op_idx || f->op_gen != lop->op_gen)
            continue;
        uint64_t w = atomic_load(&f->fword);
        if (SHL__FWORD_GEN_OK(w, atomic_load(&f->h.gen)) &&
            SHL__FWORD_STATE(w) == SHL_FRAME_ACTIVE)
            active = true;
    }
    if (active && !grace)
        return false;
    /* the files before their records (the locked section below frees any
     * registered meanwhile, as before) */
    (void)shl__res_delete_then_free(l, lop->op_idx, lop->op_gen, 0, 0, true);
    if (shl__lock(s, l->opts.timeout_ms) != 0)
        return false;
    r = shl__op_live(s, lop->op_idx, lop->op_gen);
    if (!r || atomic_load(&r->op_state) != SHL_OP_CLEANUP ||
        atomic_load(&r->coordinator) != mine) {
        shl__unlock(s);
        return false;
    }
    /* the temp files go before their records do, still under the lock: a
     * coordinator killed between a free and its unlink would leave a file
     * nobody knows of; killed here, the records stay, the state is still
     * cleanup, and the next coordinator deletes them again */
    shl__res_delete_free_locked(l, lop->op_idx, lop->op_gen, 0, 0, true);
    /* clear the frames, then say failed (DESIGN §6 phase 3); the crashed
     * call ids stay in the failure info */
    shl__frame_release_op(s, lop->op_idx, lop->op_gen);
    shl__intent_note(s, NULL);
    shl__intent_set(s, SHL__I_FAIL, SHL__T_OP, lop->op_idx, lop->op_gen);
    shl__seq_write_begin(&r->h);
    r->removal_us = shl__wall_us();
    shl__seq_write_end(&r->h);
    atomic_store_explicit(&r->op_state, SHL_OP_FAILED, memory_order_release);
    atomic_fetch_add(&r->change_count, 1);
    shl__intent_clear(s);
    /* capture for the archive now, under the lock: once we unlock, the
     * last member may leave and the failed operation be reclaimed */
    shl_snapshot *arch = shl__archive_capture(l, lop->op_idx, lop->op_gen);
    shl__epoch_bump(s);
    shl__unlock(s);
    shl__oplog(l, lop->id, SHL_LOG_INFO,
               "OPERATION_STATE_CHANGED state=failed");
    shl__oplog(l, lop->id, SHL_LOG_ERROR, "OPERATION_FAILED");
    if (shl__archive_write(l, arch) != 0) {
        /* reported; the record stays, nobody named as its archiver, for a
         * later sweep to archive (as shl__op_archive_failed, reaper.c) */
        if (shl__lock(s, l->opts.timeout_ms) == 0) {
            r = shl__op_live(s, lop->op_idx, lop->op_gen);
            uint64_t me = shl__coordinator_self(l);
            if (r && !atomic_load(&r->archived))
                atomic_compare_exchange_strong(&r->coordinator, &me, 0);
            shl__unlock(s);
        }
        return true;
    }
    /* only now may the record go (we are its archiver: the word is ours).
     * We are still a member: our leave, or the reaper's next sweep once
     * nobody is left, frees it (crash/reaper.c). */
    if (shl__lock(s, l->opts.timeout_ms) == 0) {
        r = shl__op_live(s, lop->op_idx, lop->op_gen);
        if (r) {
            atomic_store(&r->archived, 1);
            bool members = false;
            for (size_t w = 0; w < SHL__ARRAY_LEN(r->members) && !members;
                 w++)
                members = atomic_load(&r->members[w]) != 0;
            /* everyone left while we wrote it (we too): free it now */
            if (!members) {
                /* files before records, as in phase 3 above */
                shl__res_delete_free_locked(l, lop->op_idx, lop->op_gen, 0,
                                            0, true);
                shl__frame_release_op(s, lop->op_idx, lop->op_gen);
                shl__op_free_locked(s, lop->op_idx, lop->op_gen);
            }
        }
        shl__epoch_bump(s);
        shl__unlock(s);
    }
    return true;
}
