/*
 * reaper.c: what the dead and the finished leave behind. shl__reap finds
 * participants whose liveness lock is gone (LMDB's mdb_reader_check0:
 * check, lock, re-check, clear), runs the crash protocol for their
 * operations, deletes their temp files then frees their resources, frees
 * their frames and slot; operations left in `cleanup` with no member are
 * finished (failed, archived) and failed operations with no member are
 * freed. A finished (failed or completed) record is freed only once its
 * archive is written: a dead archiver's is written here.
 */
#include "crash/reaper.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash/protocol.h"
#include "crash/resources.h"
#include "files/archive.h"
#include "files/log.h"
#include "internal.h"
#include "shm/frame.h"
#include "shm/lock.h"
#include "shm/records.h"
#include "shm/table.h"

/* An archive a reaper took over from a dead archiver: captured under the
 * lock, written after it, then the record is freed (shl__op_archived). */
struct arch_job {
    shl_snapshot *snap;
    uint32_t idx;
    uint64_t gen;
};

static bool
no_members(struct shl__op *r)
{
    for (size_t w = 0; w < SHL__ARRAY_LEN(r->members); w++)
        if (atomic_load(&r->members[w]))
            return false;
    return true;
}

/* Free a finished operation nothing holds any more: completed, or failed
 * with all its members gone; its remaining resource records (their files
 * deleted first, under the lock: a kill can never leave a file that no
 * record names) and frames go with it. Structure lock held.
 *
 * Never free an operation whose archive is not written: its archiver (the
 * one that failed or completed it, named in the coordinator word) writes
 * the archive after dropping the lock, marks the record `archived` and
 * frees it then (shl__op_archived). A live archiver is left to do that.
 * When the archiver is dead (killed between its locked section and the
 * end of its write, even half-way through backup/), this caller becomes
 * the archiver: it names itself in the word, captures the archive here
 * (under the lock, as the archiver did) into *job, and the caller writes
 * it after unlocking and frees the record then (one per call: a second
 * such operation waits for the next sweep). */
static void
free_if_abandoned_locked(shl_ledger *l, uint32_t op_idx, struct arch_job *job)
{
    struct shl__seg *s = &l->seg;
    struct shl__op *r = shl__op_at(s, op_idx);
    if (atomic_load(&r->h.state) != SHL__R_ALLOCATED)
        return;
    uint32_t st = atomic_load(&r->op_state);
    if (st != SHL_OP_FAILED && st != SHL_OP_COMPLETED)
        return;
    if (st == SHL_OP_FAILED && !no_members(r))
        return;
    uint64_t gen = atomic_load(&r->h.gen);
    if (!atomic_load(&r->archived)) {
        if (shl__coordinator_alive(l, atomic_load(&r->coordinator)))
            return; /* its archiver frees it after writing */
        if (!job || job->snap)
            return; /* one archive per call: a later sweep takes it */
        shl_snapshot *snap = shl__archive_capture(l, op_idx, gen);
        if (!snap)
            return; /* capture failed: keep it, a later sweep retries */
        atomic_store(&r->coordinator, shl__coordinator_self(l));
        job->snap = snap;
        job->idx = op_idx;
        job->gen = gen;
        return;
    }
    shl__res_delete_free_locked(l, op_idx, gen, 0, 0, true);
    shl__frame_release_op(s, op_idx, gen);
    shl__op_free_locked(s, op_idx, gen);
}

/* Write an archive taken over from a dead archiver, then free. */
static void
run_job(shl_ledger *l, struct arch_job *job)
{
    if (!job->snap)
        return;
    int rc = shl__archive_write(l, job->snap);
    job->snap = NULL;
    if (rc == 0)
        shl__op_archived(l, job->idx, job->gen);
    else
        shl__op_archive_failed(l, job->idx, job->gen);
}

void
shl__op_archive_failed(shl_ledger *l, uint32_t op_idx, uint64_t op_gen)
{
    struct shl__seg *s = &l->seg;
    if (op_idx >= s->hdr->cap[SHL__T_OP] ||
        shl__lock(s, l->opts.timeout_ms) != 0)
        return;
    struct shl__op *r = shl__op_at(s, op_idx);
    uint64_t me = shl__coordinator_self(l);
    if (atomic_load(&r->h.state) == SHL__R_ALLOCATED &&
        atomic_load(&r->h.gen) == op_gen && !atomic_load(&r->archived))
        atomic_compare_exchange_strong(&r->coordinator, &me, 0);
    shl__unlock(s);
}

void
shl__op_archived(shl_ledger *l, uint32_t op_idx, uint64_t op_gen)
{
    struct shl__seg *s = &l->seg;
    if (op_idx >= s->hdr->cap[SHL__T_OP] ||
        shl__lock(s, l->opts.timeout_ms) != 0)
        return; /* the record stays; a sweep archives and frees it */
    struct shl__op *r = shl__op_at(s, op_idx);
    if (atomic_load(&r->h.state) == SHL__R_ALLOCATED &&
        atomic_load(&r->h.gen) == op_gen) {
        atomic_store(&r->archived, 1);
        free_if_abandoned_locked(l, op_idx, NULL);
    }
    shl__epoch_bump(s);
    shl__unlock(s);
}

/* An operation in `cleanup` whose members are all gone has nobody left to
 * coordinate: whoever reaps finishes the removal (resources, frames,
 * `failed`), archives it and frees it. */
static void
finish_orphaned_cleanups(shl_ledger *l)
{
    struct shl__seg *s = &l->seg;
    uint32_t ohw = shl__table_hwm(s, SHL__T_OP);
    for (uint32_t o = 0; o < ohw; o++) {
        struct shl__op *r = shl__op_at(s, o);
        if (atomic_load(&r->h.state) != SHL__R_ALLOCATED ||
            atomic_load(&r->op_state) != SHL_OP_CLEANUP)
            continue;
        bool members = false;
        for (size_t w = 0; w < SHL__ARRAY_LEN(r->members) && !members; w++)
            members = atomic_load(&r->members[w]) != 0;
        if (members || shl__lock(s, l->opts.timeout_ms) != 0)
            continue;
        uint64_t gen = atomic_load(&r->h.gen);
        members = false;
        for (size_t w = 0; w < SHL__ARRAY_LEN(r->members) && !members; w++)
            members = atomic_load(&r->members[w]) != 0;
        if (members || atomic_load(&r->h.state) != SHL__R_ALLOCATED ||
            atomic_load(&r->op_state) != SHL_OP_CLEANUP) {
            shl__unlock(s);
            continue;
        }
        /* the files are deleted before their records are freed */
        size_t n = 0;
        struct shl__res_ref *refs = NULL;
        shl__path *paths =
            shl__res_list_locked(s, o, gen, 0, 0, true, &refs, &n);
        shl__frame_release_op(s, o, gen);
        shl__intent_note(s, NULL);
        shl__intent_set(s, SHL__I_FAIL, SHL__T_OP, o, gen);
        shl__seq_write_begin(&r->h);
        r->removal_us = shl__wall_us();
        shl__seq_write_end(&r->h);
        atomic_store_explicit(&r->op_state, SHL_OP_FAILED,
                              memory_order_release);
        atomic_fetch_add(&r->change_count, 1);
        shl__intent_clear(s);
        /* we are its archiver: the record stays until the archive is
         * written (a reaper killed before that is replaced by the next) */
        atomic_store(&r->coordinator, shl__coordinator_self(l));
        shl_snapshot *arch = shl__archive_capture(l, o, gen);
        char opid[SHL_OPERATION_ID_MAX + 1];
        shl__copy_field(opid, r->id, sizeof(opid));
        shl__unlock(s);
        for (size_t i = 0; i < n; i++)
            shl__delete_temp_path(l, paths[i]);
        if (n && shl__lock(s, l->opts.timeout_ms) == 0) {
            shl__res_free_refs_locked(s, refs, n);
            shl__unlock(s);
        }
        free(paths);
        free(refs);
        shl__oplog(l, opid, SHL_LOG_INFO,
                   "OPERATION_STATE_CHANGED state=failed");
        shl__oplog(l, opid, SHL_LOG_ERROR, "OPERATION_FAILED");
        if (shl__archive_write(l, arch) == 0)
            shl__op_archived(l, o, gen);
        else
            shl__op_archive_failed(l, o, gen);
    }
}

/* Whoever reaps (every monitor pass, every open, gc) finishes what the
 * departed left: an operation in `cleanup` with no member is failed,
 * archived and freed; a `failed` one with no member is freed (archived
 * first if its archiver died); a `completed` one whose archiver died is
 * archived and freed. Lock-free
 * scan; the lock is taken only for a candidate (and re-checked under it).
 * Before, this ran only when a death was reaped right now, so an
 * operation whose members all left (rather than died) stayed for ever. */
#define SWEEP_PERIOD_NS (1000ll * 1000000)
static void
sweep_abandoned(shl_ledger *l, bool force)
{
    struct shl__seg *s = &l->seg;
    /* a scan of every operation record costs a cache miss each: at most
     * once a second per ledger from the monitor's passes, always after a
     * death and from shl_ledger_reap (gc) */
    int64_t now = shl__mono_ns();
    int64_t last = atomic_load_explicit(&l->sweep_ns, memory_order_relaxed);
    if (!force && last && now - last < SWEEP_PERIOD_NS)
        return;
    atomic_store_explicit(&l->sweep_ns, now, memory_order_relaxed);
    uint32_t ohw = shl__table_hwm(s, SHL__T_OP);
    bool cleanup = false;
    for (uint32_t o = 0; o < ohw; o++) {
        struct shl__op *r = shl__op_at(s, o);
        if (atomic_load(&r->h.state) != SHL__R_ALLOCATED)
            continue;
        uint32_t st = atomic_load(&r->op_state);
        if (st == SHL_OP_COMPLETED) {
            /* completed records live only while their archiver writes the
             * archive: one left behind lost its archiver */
            if (atomic_load(&r->archived) ||
                !shl__coordinator_alive(l, atomic_load(&r->coordinator)))
                (void)shl__op_reclaim_if_abandoned(l, o);
            continue;
        }
        if ((st != SHL_OP_CLEANUP && st != SHL_OP_FAILED) || !no_members(r))
            continue;
        if (st == SHL_OP_CLEANUP)
            cleanup = true;
        else
            (void)shl__op_reclaim_if_abandoned(l, o);
    }
    if (cleanup)
        finish_orphaned_cleanups(l);
}

int
shl__op_reclaim_if_abandoned(shl_ledger *l, uint32_t op_idx)
{
    struct shl__seg *s = &l->seg;
    int rc = shl__lock(s, l->opts.timeout_ms);
    if (rc)
        return rc;
    struct arch_job job = {0};
    free_if_abandoned_locked(l, op_idx, &job);
    shl__unlock(s);
    run_job(l, &job); /* its archiver died before writing it */
    shl__epoch_bump(s);
    return 0;
}

int
shl__reap(shl_ledger *l)
{
    struct shl__seg *s = &l->seg;
    uint32_t hw = shl__table_hwm(s, SHL__T_PART);
    uint32_t dead[64];
    uint64_t dgen[64];
    uint32_t nd = 0;
    for (uint32_t i = 0; i < hw && nd < SHL__ARRAY_LEN(dead); i++) {
        if (i == l->slot)
            continue;
        struct shl__part *p = shl__part_at(s, i);
        uint32_t st = atomic_load(&p->h.state);
        if (st != SHL__R_ALLOCATED && st != SHL__R_STARTING)
            continue;
        if (shl__ofd_is_locked(s->fd, SHL__LOCK_PART_BASE + i) == 1)
            continue;
        /* STARTING is also what a live creator holding the structure lock
         * shows; it holds its liveness lock before claiming, so an unlocked
         * byte means dead either way. */
        dead[nd] = i;
        dgen[nd++] = atomic_load(&p->h.gen);
    }
    if (nd == 0) {
        /* nobody died since the last look, but an operation may still
         * have been left without members: its last members left during
         * the cleanup, or before it turned failed (issue 12) */
        sweep_abandoned(l, false);
        return 0;
    }
    /* 1. the crash protocol for every operation the dead took part in */
    uint32_t ohw = shl__table_hwm(s, SHL__T_OP);
    uint32_t fhw = shl__table_hwm(s, SHL__T_FRAME);
    for (uint32_t k = 0; k < nd; k++) {
        for (uint32_t o = 0; o < ohw; o++) {
            struct shl__op *r = shl__op_at(s, o);
            if (atomic_load(&r->h.state) != SHL__R_ALLOCATED)
                continue;
            bool involved = shl__op_is_member(r, dead[k]);
            uint64_t og = atomic_load(&r->h.gen);
            for (uint32_t i = 0; i < fhw && !involved; i++) {
                struct shl__frame *f = shl__frame_at(s, i);
                involved = atomic_load(&f->h.state) == SHL__R_ALLOCATED &&
                           f->part_slot == dead[k] && f->part_gen == dgen[k] &&
                           f->op_idx == o && f->op_gen == og;
            }
            if (involved)
                (void)shl__crash_op(l, o, og, dead[k], dgen[k], "crashed");
        }
    }
    /* the files the dead registered, before their records go (a reaper
     * killed in between leaves the records for the next) */
    for (uint32_t k = 0; k < nd; k++)
        (void)shl__res_delete_then_free(l, UINT32_MAX, 0, dead[k], dgen[k],
                                        false);
    /* 2. under the lock: re-check, free what the dead owned, free slots */
    int rc = shl__lock(s, l->opts.timeout_ms);
    if (rc)
        return rc;
    int reaped = 0;
    struct arch_job job = {0};
    for (uint32_t k = 0; k < nd; k++) {
        uint32_t slot = dead[k];
        struct shl__part *p = shl__part_at(s, slot);
        uint32_t st = atomic_load(&p->h.state);
        if ((st != SHL__R_ALLOCATED && st != SHL__R_STARTING) ||
            atomic_load(&p->h.gen) != dgen[k] ||
            shl__ofd_is_locked(s->fd, SHL__LOCK_PART_BASE + slot) == 1)
            continue;
        /* frames of the dead that no protocol is holding: unpublished
         * claims, and frames of finished or vanished operations */
        for (uint32_t i = 0; i < fhw; i++) {
            struct shl__frame *f = shl__frame_at(s, i);
            uint32_t fst = atomic_load(&f->h.state);
            if (atomic_load(&f->h.owner) != slot ||
                atomic_load(&f->h.owner_gen) != dgen[k])
                continue;
            if (fst == SHL__R_STARTING) {
                uint32_t q = atomic_load(&f->h.seq);
                if (q & 1u)
                    atomic_store(&f->h.seq, q + 1);
                atomic_store(&f->h.state, SHL__R_FREE);
                continue;
            }
            if (fst != SHL__R_ALLOCATED)
                continue;
            struct shl__op *r = shl__op_at(s, f->op_idx < s->hdr->cap[SHL__T_OP]
                                                  ? f->op_idx
                                                  : 0);
            bool op_live = f->op_idx < s->hdr->cap[SHL__T_OP] &&
                           atomic_load(&r->h.gen) == f->op_gen &&
                           atomic_load(&r->h.state) == SHL__R_ALLOCATED &&
                           atomic_load(&r->op_state) == SHL_OP_CLEANUP;
            if (op_live)
                continue; /* the coordinator clears it in the removal */
            (void)shl__frame_remove(s, f, atomic_load(&f->h.gen));
        }
        /* resources the dead registered that the unlocked pass above
         * missed (registered meanwhile, or its lock timed out): files
         * first, then records, all under the lock */
        shl__res_delete_free_locked(l, UINT32_MAX, 0, slot, dgen[k], false);
        for (uint32_t o = 0; o < ohw; o++) {
            struct shl__op *r = shl__op_at(s, o);
            if (atomic_load(&r->h.state) != SHL__R_ALLOCATED)
                continue;
            if (shl__op_is_member(r, slot)) {
                char opid[SHL_OPERATION_ID_MAX + 1], who[64];
                shl__copy_field(opid, r->id, sizeof(opid));
                shl__copy_field(who, p->id, sizeof(who));
                shl__optrail(l, opid,
                             "PARTICIPANT_CRASHED participant=%s pid=%d",
                             who, (int)p->pid);
                atomic_fetch_and(&r->members[slot / 64],
                                 ~(1ull << (slot % 64)));
                atomic_fetch_add(&r->change_count, 1);
                free_if_abandoned_locked(l, o, &job);
            }
        }
        /* the slot itself */
        shl__intent_set(s, SHL__I_FREE, SHL__T_PART, slot, dgen[k]);
        if (st == SHL__R_STARTING) {
            uint32_t q = atomic_load(&p->h.seq);
            if (q & 1u)
                atomic_store(&p->h.seq, q + 1);
            atomic_store(&p->h.state, SHL__R_FREE);
        } else {
            shl__rec_release(s, SHL__T_PART, &p->h);
            s->hdr->used[SHL__T_PART]--;
        }
        shl__intent_clear(s);
        atomic_fetch_add(&s->hdr->crashes_detected, 1);
        reaped++;
    }
    shl__unlock(s);
    run_job(l, &job); /* its archiver died before writing it */
    /* a remover among the dead may have died between a frame's GONE word
     * and its release */
    (void)shl__frame_finish_all(s);
    sweep_abandoned(l, true);
    if (reaped)
        shl__epoch_bump(s);
    return reaped;
}

int
shl_ledger_reap(shl_ledger *l)
{
    shl__clear_err();
    if (!l)
        return SHL_SET_ERR(-EINVAL, "NULL ledger");
    atomic_store(&l->sweep_ns, 0); /* sweep now, whatever the period */
    return shl__reap(l);
}
