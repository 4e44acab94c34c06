/*
 * ops.c: operations and sessions (create, join, leave, complete), the abort
 * flag and state, failure, and temp resources.
 *
 * The operation record's identity is written once under the structure
 * mutex; its state and abort flag are single atomic words changed without
 * the mutex except where a transition must be atomic with other records
 * (complete, fail). Every change bumps the record's change_count (the
 * snapshotter's cue) and state/abort changes bump the segment epoch.
 */
#include "crash/protocol.h"
#include "crash/reaper.h"
#include "files/snapshotter.h"
#include "process/monitor.h"
#include "process/ops.h"
#include "session/call.h"
#include "session/callref.h"
#include "session/deliver.h"
#include "session/heartbeat.h"
#include "session/opstate.h"
#include "session/session.h"
#include "shm/frame.h"
#include "shm/records.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/lops.h"
#include "files/archive.h"
#include "shm/index.h"
#include "internal.h"
#include "shm/lock.h"
#include "files/log.h"
#include "session/spawn.h"
#include "shm/table.h"

/* ---- helpers ---- */

static void
member_set(struct shl__op *r, uint32_t slot, bool on)
{
    if (slot >= SHL__MAX_PARTICIPANTS)
        return;
    uint64_t bit = 1ull << (slot % 64);
    if (on)
        atomic_fetch_or(&r->members[slot / 64], bit);
    else
        atomic_fetch_and(&r->members[slot / 64], ~bit);
}

/* We joined `r`: ring the doorbell of every member in another process, so
 * its monitor watches our pidfd at once rather than at its next full pass,
 * and tell our own monitor about the members it does not watch yet.
 * Members in this process need no pidfd watch (they die with us): a join
 * among them costs a scan of the bitmap and nothing more. A leave rings
 * nobody (monitor.c, members_pass: a watch outliving a membership is
 * harmless, and dropped at the next full pass). */
static void
ring_members(shl_ledger *l, struct shl__op *r)
{
    struct shl__seg *s = &l->seg;
    uint32_t pcap = s->hdr->cap[SHL__T_PART];
    int32_t me = shl__part_at(s, l->slot)->pid;
    bool unwatched = false;
    for (uint32_t w = 0; w < SHL__ARRAY_LEN(r->members); w++) {
        uint64_t bits = atomic_load(&r->members[w]);
        uint64_t watched = atomic_load_explicit(&l->watched[w],
                                                memory_order_relaxed);
        while (bits) {
            uint32_t slot = w * 64 + (uint32_t)__builtin_ctzll(bits);
            uint64_t bit = bits & -bits;
            bits &= bits - 1;
            if (slot >= pcap || slot == l->slot ||
                shl__part_at(s, slot)->pid == me)
                continue;
            shl__part_ring(s, slot);
            if (!(watched & bit))
                unwatched = true;
        }
    }
    if (unwatched)
        shl__monitor_members_changed(l);
}

static shl_op *
session_new(struct shl__lop *lop, const shl_op_callbacks *cb)
{
    /* the ledger's spare object, or a new one (base/lops.h) */
    shl_op *op = shl__op_obj_alloc(lop->l);
    if (!op)
        return NULL;
    op->lop = lop;
    if (cb)
        op->cb = *cb;
    pthread_mutex_init(&op->mu, NULL);
    op->session_id = ++lop->session_counter;
    lop->join_count++;
    lop->alive++;
    shl__session_init_delivery(op);
    shl__session_init_heartbeat(op);
    shl__lop_session_add(lop, op);
    return op;
}

/* ---- create / join ---- */

/* xorshift64 per thread, seeded once from the kernel: arc4random is a
 * getrandom syscall per call on this glibc */
static _Thread_local uint64_t op_rng;

static uint32_t
rand32(void)
{
    if (op_rng == 0)
        op_rng = ((uint64_t)arc4random() << 32) | arc4random() | 1;
    uint64_t x = op_rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    op_rng = x;
    return (uint32_t)(x >> 32);
}

/* Where the next operation-slot search starts (process-local; the search
 * is under the structure lock): not always from 0, past the records still
 * in their reuse delay. */
static _Atomic uint32_t op_hint;

static void
make_op_id(const char *participant, char *buf, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    snprintf(buf, cap, "%04d%02d%02dT%02d:%02d:%02d.%03ld-%s-%08x",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, participant,
             rand32());
}

int
shl_op_create(shl_ledger *l, const char *description,
              const shl_op_callbacks *cb, shl_op **out)
{
    shl__clear_err();
    if (!l || !out)
        return SHL_SET_ERR(-EINVAL, "shl_op_create: NULL argument");
    if (description && strlen(description) > SHL_DESCRIPTION_MAX)
        return SHL_SET_ERR(-ENAMETOOLONG, "description longer than %d bytes",
                           SHL_DESCRIPTION_MAX);
    struct shl__seg *s = &l->seg;
    struct shl__lop *lop = calloc(1, sizeof(*lop));
    if (!lop)
        return -ENOMEM;

    int rc = shl__lock(s, l->opts.timeout_ms);
    if (rc) {
        free(lop);
        return rc;
    }
    char id[SHL_OPERATION_ID_MAX + 1];
    uint32_t tmp_idx;
    uint64_t tmp_gen;
    do {
        make_op_id(l->id, id, sizeof(id));
    } while (shl__index_lookup(s, id, &tmp_idx, &tmp_gen) == 0);
    uint32_t idx;
    rc = shl__rec_find_free(s, SHL__T_OP, atomic_load(&op_hint), &idx);
    if (rc) {
        shl__unlock(s);
        free(lop);
        return rc;
    }
    struct shl__op *r = shl__op_at(s, idx);
    uint64_t gen;
    shl__intent_set(s, SHL__I_ALLOC, SHL__T_OP, idx, atomic_load(&r->h.gen) + 1);
    SHL_CRASH_POINT("alloc.intent");
    rc = shl__rec_claim_at(s, SHL__T_OP, idx, l->slot, l->slot_gen, &gen);
    if (rc) {
        shl__intent_clear(s);
        shl__unlock(s);
        free(lop);
        return SHL_SET_ERR(rc, "operation slot changed under the lock");
    }
    SHL_CRASH_POINT("alloc.claimed");
    int64_t now_us = shl__wall_us();
    int64_t now_ns = shl__mono_ns();
    atomic_store(&r->op_state, SHL_OP_RUNNING);
    atomic_store(&r->aborted, 0);
    atomic_store(&r->last_heartbeat_ns, now_ns);
    for (size_t w = 0; w < SHL__ARRAY_LEN(r->members); w++)
        atomic_store_explicit(&r->members[w], 0, memory_order_relaxed);
    r->start_wall_us = now_us;
    r->detection_us = 0;
    r->removal_us = 0;
    r->id_hash = shl__id_hash(id);
    r->initiator_slot = l->slot;
    r->initiator_gen = l->slot_gen;
    atomic_store_explicit(&r->coordinator, 0, memory_order_relaxed);
    atomic_store_explicit(&r->archived, 0, memory_order_relaxed);
    memset(r->id, 0, sizeof(r->id));
    memcpy(r->id, id, strlen(id));
    memset(r->initiator, 0, sizeof(r->initiator));
    memcpy(r->initiator, l->id, strlen(l->id));
    memset(r->description, 0, sizeof(r->description));
    r->has_description = description != NULL;
    if (description)
        memcpy(r->description, description, strlen(description));
    r->failed_at_us = 0;
    r->crashed_count = 0;
    r->crashed_total = 0;
    r->reason[0] = 0;
    SHL_CRASH_POINT("alloc.filled");
    shl__rec_publish(&r->h);
    SHL_CRASH_POINT("alloc.published");
    atomic_store(&op_hint, idx + 1);
    rc = shl__index_insert(s, r->id_hash, idx);
    SHL_CRASH_POINT("alloc.indexed");
    s->hdr->used[SHL__T_OP]++;
    shl__intent_clear(s);
    if (rc) { /* cannot happen: the index has twice the op capacity */
        shl__op_free_locked(s, idx, gen);
        shl__unlock(s);
        free(lop);
        return rc;
    }
    member_set(r, l->slot, true);
    shl__op_touch(r);
    shl__unlock(s);

    lop->l = l;
    memcpy(lop->id, id, strlen(id) + 1);
    lop->op_idx = idx;
    lop->op_gen = gen;
    lop->is_initiator = true;
    lop->start_wall_us = now_us;
    lop->start_mono_ns = now_ns;
    atomic_store(&lop->staleness_ms, 10000);
    pthread_mutex_lock(&l->mu);
    shl_op *op = NULL;
    if (shl__lops_add(l, lop) == 0) {
        op = session_new(lop, cb);
        if (!op)
            shl__lops_remove(l, lop);
    }
    if (!op) {
        pthread_mutex_unlock(&l->mu);
        /* give the operation back: nobody else knows its id yet */
        if (shl__lock(s, l->opts.timeout_ms) == 0) {
            shl__op_free_locked(s, idx, gen);
            shl__unlock(s);
        }
        free(lop);
        return -ENOMEM;
    }
    pthread_mutex_unlock(&l->mu);
    rc = shl__snapshotter_create_files(l, id);
    if (rc) {
        /* nothing can be written under basePath: refuse the operation
         * rather than run one whose files silently do not exist */
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", shl_errmsg());
        (void)shl__session_end(op, true);
        if (shl__lock(s, l->opts.timeout_ms) == 0) {
            shl__op_free_locked(s, idx, gen);
            shl__epoch_bump(s);
            shl__unlock(s);
        }
        return SHL_SET_ERR(SHL_EIO, "%s", msg);
    }
    /* no trail event for the creation: as the original, the trail begins
     * with the first change */
    rc = shl__monitor_ensure(l);
    if (rc) {
        (void)shl__session_end(op, true);
        return rc;
    }
    *out = op;
    return 0;
}

/* A participant that joins under the initiator's participant id while the
 * initiator's own session is gone (its process exited or died, or it left)
 * takes the initiator role back: so a command-line `create` followed later
 * by `complete` under the same id works, as a Dart initiator that
 * reconnects would. Under the structure lock, so at most one adopts. */
static bool
adopt_initiator(shl_ledger *l, uint32_t idx, uint64_t gen)
{
    struct shl__seg *s = &l->seg;
    struct shl__op *r = shl__op_at(s, idx);
    char initiator[SHL_PARTICIPANT_ID_MAX + 1];
    shl__copy_field(initiator, r->initiator, sizeof(initiator));
    if (strcmp(initiator, l->id) != 0)
        return false;
    if (shl__lock(s, l->opts.timeout_ms) != 0)
        return false;
    bool adopted = false;
    if (atomic_load(&r->h.gen) == gen &&
        atomic_load(&r->h.state) == SHL__R_ALLOCATED) {
        uint32_t is = r->initiator_slot;
        bool present = false;
        if (is < s->hdr->cap[SHL__T_PART] && is < SHL__MAX_PARTICIPANTS) {
            struct shl__part *p = shl__part_at(s, is);
            present = atomic_load(&p->h.state) == SHL__R_ALLOCATED &&
                      atomic_load(&p->h.gen) == r->initiator_gen &&
                      ((atomic_load(&r->members[is / 64]) >> (is % 64)) & 1u);
        }
        if (!present) {
            shl__seq_write_begin(&r->h);
            r->initiator_slot = l->slot;
            r->initiator_gen = l->slot_gen;
            shl__seq_write_end(&r->h);
            adopted = true;
        }
    }
    shl__unlock(s);
    return adopted;
}

int
shl_op_join(shl_ledger *l, const char *operation_id,
            const shl_op_callbacks *cb, shl_op **out)
{
    shl__clear_err();
    if (!l || !operation_id || !out)
        return SHL_SET_ERR(-EINVAL, "shl_op_join: NULL argument");
    int rc = shl_validate_operation_id(operation_id);
    if (rc)
        return rc;
    struct shl__seg *s = &l->seg;
    uint32_t idx;
    uint64_t gen;
    rc = shl__index_lookup(s, operation_id, &idx, &gen);
    if (rc == -EAGAIN)
        return SHL_SET_ERR(-EAGAIN,
                           "operation %s stayed in mid-write for 200 ms (its "
                           "writer preempted or dead); try again",
                           operation_id);
    if (rc)
        return SHL_SET_ERR(SHL_ENOTFOUND, "no operation %s", operation_id);
    struct shl__op *r = shl__op_at(s, idx);
    uint32_t st = atomic_load_explicit(&r->op_state, memory_order_acquire);
    if (st == SHL_OP_COMPLETED || st == SHL_OP_FAILED)
        return SHL_SET_ERR(SHL_ESTATE, "operation %s is %s", operation_id,
                           shl_op_state_name((shl_op_state)st));

    pthread_mutex_lock(&l->mu);
    struct shl__lop *lop = shl__lops_find(l, idx, gen);
    bool fresh = lop == NULL;
    pthread_mutex_unlock(&l->mu);
    bool adopt = fresh && adopt_initiator(l, idx, gen);
    pthread_mutex_lock(&l->mu);
    lop = shl__lops_find(l, idx, gen);
    fresh = lop == NULL;
    if (fresh) {
        lop = shl__lop_alloc(l); /* the spare, or a new one */
        if (!lop) {
            pthread_mutex_unlock(&l->mu);
            return -ENOMEM;
        }
        lop->l = l;
        memcpy(lop->id, operation_id, strlen(operation_id) + 1);
        lop->op_idx = idx;
        lop->op_gen = gen;
        lop->is_initiator = adopt;
        lop->start_wall_us = shl__wall_us();
        lop->start_mono_ns = shl__mono_ns();
        atomic_store(&lop->staleness_ms, 10000);
    }
    if (fresh && shl__lops_add(l, lop) != 0) {
        free(lop);
        pthread_mutex_unlock(&l->mu);
        return -ENOMEM;
    }
    shl_op *op = session_new(lop, cb);
    if (!op) {
        if (fresh) {
            shl__lops_remove(l, lop);
            free(lop);
        }
        pthread_mutex_unlock(&l->mu);
        return -ENOMEM;
    }
    pthread_mutex_unlock(&l->mu);
    /* the record may have gone meanwhile; then the session is stale, which
     * every later call reports */
    if (atomic_load(&r->h.gen) == gen) {
        member_set(r, l->slot, true);
        if (fresh)
            shl__optrail_participant(l, operation_id, true);
        shl__op_touch(r);
        /* No epoch bump here: it would wake every member's monitor for a
         * full pass on each join. The members in other processes are rung
         * instead (their doorbell): their monitors only add our pidfd. */
        if (fresh)
            ring_members(l, r);
    }
    rc = shl__monitor_ensure(l);
    if (rc) {
        (void)shl__session_end(op, true);
        return rc;
    }
    *out = op;
    return 0;
}

/* ---- leave / complete ---- */

static void
lop_unlink_session(shl_ledger *l, shl_op *op, bool *last)
{
    struct shl__lop *lop = op->lop;
    shl__lop_session_remove(lop, op);
    lop->join_count--;
    *last = lop->join_count == 0;
    if (*last)
        shl__lops_remove(l, lop);
}

int
shl__session_end(shl_op *op, bool cancel)
{
    struct shl__lop *lop = op->lop;
    shl_ledger *l = lop->l;

    if (!cancel) {
        /* every pending call, regular and spawned, in the refusal */
        char ids[1024];
        size_t nsp = 0;
        size_t n = shl__session_pending_ids(op, ids, sizeof(ids), &nsp);
        if (n)
            return SHL_SET_ERR(SHL_ESTATE,
                               "Cannot leave operation - %zu call(s) still "
                               "active (%zu spawned): [%s]. End or cancel "
                               "all calls before leaving, or leave with "
                               "cancel_pending.",
                               n, nsp, ids);
    }
    /* spawned calls first: cancelled and waited for */
    int src = shl__spawn_session_end(op, cancel);
    if (src)
        return src;
    /* cancel pending calls (each removes its frame; pinned while its
     * on_cleanup runs outside op->mu: callref.h) */
    for (;;) {
        struct shl_call *c = NULL;
        pthread_mutex_lock(&op->mu);
        for (struct shl_call *p = op->calls_head; p; p = p->next)
            if (atomic_load(&p->done) == 0) {
                c = p;
                shl__call_pin_locked(c);
                break;
            }
        pthread_mutex_unlock(&op->mu);
        if (!c)
            break;
        (void)shl__call_cancel(c);
        shl__calls_unpin(op, &c, 1);
    }

    bool last;
    pthread_mutex_lock(&l->mu);
    lop_unlink_session(l, op, &last);
    op->unlinked = true;
    pthread_mutex_unlock(&l->mu);

    if (last) {
        struct shl__op *r = shl__lop_record(lop);
        if (r) {
            member_set(r, l->slot, false);
            shl__op_touch(r);
            shl__optrail_participant(l, lop->id, false);
            /* A failed operation is reclaimed when nobody takes part any
             * more. */
            if (atomic_load(&r->op_state) == SHL_OP_FAILED)
                (void)shl__op_reclaim_if_abandoned(l, lop->op_idx);
        }
    }
    /* free now, or let the monitor free it once its callbacks return */
    pthread_mutex_lock(&l->mu);
    bool defer = op->busy > 0;
    if (defer)
        op->free_pending = true;
    pthread_mutex_unlock(&l->mu);
    if (!defer)
        shl__session_free(op);
    return 0;
}

int
shl_op_leave(shl_op *op, bool cancel_pending)
{
    shl__clear_err();
    if (!op)
        return SHL_SET_ERR(-EINVAL, "shl_op_leave: NULL session");
    return shl__session_end(op, cancel_pending);
}

int
shl_op_complete(shl_op *op)
{
    shl__clear_err();
    if (!op)
        return SHL_SET_ERR(-EINVAL, "shl_op_complete: NULL session");
    struct shl__lop *lop = op->lop;
    shl_ledger *l = lop->l;
    struct shl__seg *s = &l->seg;
    if (!lop->is_initiator)
        return SHL_SET_ERR(SHL_ESTATE,
                           "Only the initiator can complete an operation");
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
        return SHL_SET_ERR(SHL_ESTATE, "operation %s is %s, not running",
                           lop->id, shl_op_state_name((shl_op_state)st));
    }
    /* One locked section: a completer that dies anywhere in it leaves a
     * record that is `completed` and still allocated, whose frames and
     * resources the repair of the next locker frees (lock.c). The record
     * itself stays `completed` until its archive is written: we are its
     * archiver, and if we die before that the reaper writes it
     * (crash/reaper.c), so a killed completer loses no archive. */
    atomic_store_explicit(&r->op_state, SHL_OP_COMPLETED,
                          memory_order_release);
    atomic_store(&r->coordinator, shl__coordinator_self(l));
    shl__op_touch(r);
    /* the archive shows the frames and resources as they are now */
    shl_snapshot *arch = shl__archive_capture(l, lop->op_idx, lop->op_gen);
    shl__op_resources_free_locked(s, lop->op_idx, lop->op_gen);
    shl__frame_release_op(s, lop->op_idx, lop->op_gen);
    shl__epoch_bump(s);
    shl__unlock(s);
    SHL_CRASH_POINT("complete.unlocked");
    shl__oplog(l, lop->id, SHL_LOG_INFO, "OPERATION_COMPLETED");
    /* complete() promises the archive on disk: a failure is the result */
    int arc = shl__archive_write(l, arch);
    char amsg[512] = "";
    if (arc != 0)
        snprintf(amsg, sizeof(amsg), "%s", shl_errmsg());
    if (arc == 0)
        shl__op_archived(l, lop->op_idx, lop->op_gen);
    else /* the caller gets SHL_EIO; a later sweep writes it again */
        shl__op_archive_failed(l, lop->op_idx, lop->op_gen);

    /* Our own pending calls lost their frames with everyone else's. */
    pthread_mutex_lock(&l->mu);
    for (shl_op *x = lop->sessions; x; x = x->next_session) {
        pthread_mutex_lock(&x->mu);
        for (struct shl_call *c = x->calls_head; c; c = c->next)
            if (atomic_load(&c->done) == 0)
                shl__call_orphan(c);
        pthread_mutex_unlock(&x->mu);
    }
    pthread_mutex_unlock(&l->mu);
    shl__epoch_bump(s);
    shl__session_end(op, true);
    if (arc != 0)
        return SHL_SET_ERR(SHL_EIO, "%s", amsg);
    return 0;
}

/* ---- properties ---- */

/* ---- abort and state ---- */

/* ---- temp resources ---- */
