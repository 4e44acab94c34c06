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
#include "ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "index.h"
#include "internal.h"
#include "lock.h"
#include "log.h"
#include "spawned.h"
#include "table.h"

/* ---- helpers ---- */

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

static void
touch(struct shl__seg *s, struct shl__op *r)
{
    atomic_fetch_add_explicit(&r->change_count, 1, memory_order_release);
    atomic_store_explicit(&r->last_heartbeat_ns, shl__mono_ns(),
                          memory_order_relaxed);
    SHL__UNUSED(s);
}

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

/* Free an operation record (structure mutex held). */
static void
op_free_locked(struct shl__seg *s, uint32_t idx, uint64_t gen)
{
    struct shl__op *r = shl__op_at(s, idx);
    if (atomic_load(&r->h.gen) != gen ||
        atomic_load(&r->h.state) != SHL__R_ALLOCATED)
        return;
    shl__intent_set(s, SHL__I_FREE, SHL__T_OP, idx, gen);
    SHL_CRASH_POINT("free.intent");
    shl__index_remove(s, r->id_hash, idx);
    SHL_CRASH_POINT("free.unindexed");
    shl__rec_release(s, SHL__T_OP, &r->h);
    SHL_CRASH_POINT("free.released");
    s->hdr->used[SHL__T_OP]--;
    shl__intent_clear(s);
}

/* Free every resource record of an operation (structure mutex held). */
static void
free_op_resources_locked(struct shl__seg *s, uint32_t op_idx,
                         uint64_t op_gen)
{
    uint32_t hw = shl__table_hwm(s, SHL__T_RES);
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__res *r = shl__res_at(s, i);
        if (atomic_load(&r->h.state) != SHL__R_ALLOCATED ||
            r->op_idx != op_idx || r->op_gen != op_gen)
            continue;
        shl__intent_set(s, SHL__I_FREE, SHL__T_RES, i, atomic_load(&r->h.gen));
        SHL_CRASH_POINT("free.intent");
        shl__rec_release(s, SHL__T_RES, &r->h);
        SHL_CRASH_POINT("free.released");
        s->hdr->used[SHL__T_RES]--;
        shl__intent_clear(s);
    }
}

uint32_t
shl__op_release_frames(struct shl__seg *s, uint32_t op_idx, uint64_t op_gen)
{
    uint32_t n = 0, hw = shl__table_hwm(s, SHL__T_FRAME);
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__frame *f = shl__frame_at(s, i);
        if (atomic_load_explicit(&f->h.state, memory_order_acquire) !=
            SHL__R_ALLOCATED)
            continue;
        uint64_t g = atomic_load_explicit(&f->h.gen, memory_order_acquire);
        uint32_t seq;
        if (!shl__seq_read_begin(&f->h, &seq))
            continue;
        bool mine = f->op_idx == op_idx && f->op_gen == op_gen;
        if (!shl__seq_read_ok(&f->h, seq) || !mine)
            continue;
        if (shl__frame_remove(s, f, g))
            n++;
    }
    return n;
}

static struct shl__lop *
lop_find(shl_ledger *l, uint32_t idx, uint64_t gen)
{
    for (struct shl__lop *p = l->lops; p; p = p->next)
        if (p->op_idx == idx && p->op_gen == gen)
            return p;
    return NULL;
}

static shl_op *
session_new(struct shl__lop *lop, const shl_op_callbacks *cb)
{
    shl_op *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->lop = lop;
    if (cb)
        op->cb = *cb;
    pthread_mutex_init(&op->mu, NULL);
    op->session_id = ++lop->session_counter;
    lop->join_count++;
    lop->alive++;
    shl__session_init_monitor(op);
    op->next_session = lop->sessions;
    lop->sessions = op;
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
        op_free_locked(s, idx, gen);
        shl__unlock(s);
        free(lop);
        return rc;
    }
    member_set(r, l->slot, true);
    touch(s, r);
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
    lop->next = l->lops;
    l->lops = lop;
    shl_op *op = session_new(lop, cb);
    if (!op) {
        l->lops = lop->next;
        pthread_mutex_unlock(&l->mu);
        /* give the operation back: nobody else knows its id yet */
        if (shl__lock(s, l->opts.timeout_ms) == 0) {
            op_free_locked(s, idx, gen);
            shl__unlock(s);
        }
        free(lop);
        return -ENOMEM;
    }
    pthread_mutex_unlock(&l->mu);
    shl__log_create_files(l, id);
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
    if (rc)
        return SHL_SET_ERR(SHL_ENOTFOUND, "no operation %s", operation_id);
    struct shl__op *r = shl__op_at(s, idx);
    uint32_t st = atomic_load_explicit(&r->op_state, memory_order_acquire);
    if (st == SHL_OP_COMPLETED || st == SHL_OP_FAILED)
        return SHL_SET_ERR(SHL_ESTATE, "operation %s is %s", operation_id,
                           shl_op_state_name((shl_op_state)st));

    pthread_mutex_lock(&l->mu);
    struct shl__lop *lop = lop_find(l, idx, gen);
    bool fresh = lop == NULL;
    pthread_mutex_unlock(&l->mu);
    bool adopt = fresh && adopt_initiator(l, idx, gen);
    pthread_mutex_lock(&l->mu);
    lop = lop_find(l, idx, gen);
    fresh = lop == NULL;
    if (fresh) {
        lop = calloc(1, sizeof(*lop));
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
    shl_op *op = session_new(lop, cb);
    if (!op) {
        if (fresh)
            free(lop);
        pthread_mutex_unlock(&l->mu);
        return -ENOMEM;
    }
    if (fresh) {
        lop->next = l->lops;
        l->lops = lop;
    }
    pthread_mutex_unlock(&l->mu);
    /* the record may have gone meanwhile; then the session is stale, which
     * every later call reports */
    if (atomic_load(&r->h.gen) == gen) {
        member_set(r, l->slot, true);
        if (fresh)
            shl__optrail(l, operation_id,
                         "PARTICIPANT_JOINED participant=%s pid=%d", l->id,
                         (int)l->recorded_pid);
        touch(s, r);
        /* No epoch bump here: it would wake every member's monitor for a
         * full pass on each join. The others start watching our pidfd at
         * their next pass (at most a second, or a quarter of the stale
         * threshold); until then our death is still proven by the lock at
         * that pass. */
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
    for (shl_op **pp = &lop->sessions; *pp; pp = &(*pp)->next_session)
        if (*pp == op) {
            *pp = op->next_session;
            break;
        }
    lop->join_count--;
    *last = lop->join_count == 0;
    if (*last)
        for (struct shl__lop **pp = &l->lops; *pp; pp = &(*pp)->next)
            if (*pp == lop) {
                *pp = lop->next;
                break;
            }
}

int
shl__session_end(shl_op *op, bool cancel)
{
    struct shl__lop *lop = op->lop;
    shl_ledger *l = lop->l;

    /* spawned calls first: refused, or cancelled and waited for */
    int src = shl__spawn_session_end(op, cancel);
    if (src)
        return src;
    pthread_mutex_lock(&op->mu);
    size_t pending = op->pending;
    pthread_mutex_unlock(&op->mu);
    if (pending && !cancel)
        return SHL_SET_ERR(SHL_ESTATE,
                           "Cannot leave operation - %zu call(s) still "
                           "active. End or cancel all calls before leaving, "
                           "or leave with cancel_pending.",
                           pending);
    /* cancel pending calls (each removes its frame) */
    for (;;) {
        struct shl_call *c = NULL;
        pthread_mutex_lock(&op->mu);
        for (struct shl_call *p = op->calls_head; p; p = p->next)
            if (atomic_load(&p->done) == 0) {
                c = p;
                break;
            }
        pthread_mutex_unlock(&op->mu);
        if (!c)
            break;
        (void)shl__call_cancel(c);
    }

    bool last;
    pthread_mutex_lock(&l->mu);
    lop_unlink_session(l, op, &last);
    op->unlinked = true;
    pthread_mutex_unlock(&l->mu);

    if (last) {
        struct shl__seg *s = &l->seg;
        struct shl__op *r = shl__lop_record(lop);
        if (r) {
            member_set(r, l->slot, false);
            touch(s, r);
            shl__optrail(l, lop->id, "PARTICIPANT_LEFT participant=%s pid=%d",
                         l->id, (int)l->recorded_pid);
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

void
shl__session_free(shl_op *op)
{
    struct shl__lop *lop = op->lop;
    shl_ledger *l = lop->l;
    shl__spawn_session_free(op);
    struct shl_call *c = op->calls_head;
    while (c) {
        struct shl_call *n = c->next;
        shl__call_free(c);
        c = n;
    }
    shl__session_fini_monitor(op);
    pthread_mutex_destroy(&op->mu);
    pthread_mutex_lock(&l->mu);
    lop->alive--;
    bool free_lop = lop->alive == 0 && lop->join_count == 0;
    pthread_mutex_unlock(&l->mu);
    free(op);
    if (free_lop)
        free(lop);
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
     * record that is `completed` and still allocated, which the repair of
     * the next locker finishes (lock.c: completed operations never stay
     * allocated). */
    atomic_store_explicit(&r->op_state, SHL_OP_COMPLETED,
                          memory_order_release);
    touch(s, r);
    /* the archive shows the frames and resources as they are now */
    shl_snapshot *arch = shl__archive_capture(l, lop->op_idx, lop->op_gen);
    free_op_resources_locked(s, lop->op_idx, lop->op_gen);
    shl__op_release_frames(s, lop->op_idx, lop->op_gen);
    op_free_locked(s, lop->op_idx, lop->op_gen);
    shl__epoch_bump(s);
    shl__unlock(s);
    shl__oplog(l, lop->id, SHL_LOG_INFO, "OPERATION_COMPLETED");
    (void)shl__archive_write(l, arch);

    /* Our own pending calls lost their frames with everyone else's. */
    pthread_mutex_lock(&l->mu);
    for (shl_op *x = lop->sessions; x; x = x->next_session) {
        pthread_mutex_lock(&x->mu);
        for (struct shl_call *c = x->calls_head; c; c = c->next)
            if (atomic_load(&c->done) == 0) {
                shl__call_orphan(c);
                x->pending--;
            }
        pthread_mutex_unlock(&x->mu);
    }
    pthread_mutex_unlock(&l->mu);
    shl__epoch_bump(s);
    shl__session_end(op, true);
    return 0;
}

/* ---- properties ---- */

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
    if (!op || ms <= 0)
        return SHL_SET_ERR(-EINVAL, "staleness threshold must be > 0");
    atomic_store(&op->lop->staleness_ms, ms);
    return 0;
}
size_t
shl_op_pending_call_count(const shl_op *op)
{
    if (!op)
        return 0;
    shl_op *m = (shl_op *)op;
    pthread_mutex_lock(&m->mu);
    /* regular and spawned calls; a spawned call stays pending until its
     * outcome is published, after its underlying call finished */
    size_t n = m->pending + shl__spawn_unsettled_locked(m);
    pthread_mutex_unlock(&m->mu);
    return n;
}
bool
shl_op_has_pending_calls(const shl_op *op)
{
    return shl_op_pending_call_count(op) > 0;
}
size_t
shl_op_pending_calls(const shl_op *op, shl_call **out, size_t cap)
{
    if (!op)
        return 0;
    shl_op *m = (shl_op *)op;
    size_t n = 0;
    pthread_mutex_lock(&m->mu);
    for (struct shl_call *c = m->calls_head; c; c = c->next)
        if (atomic_load(&c->done) == 0 && !c->spawned) {
            if (out && n < cap)
                out[n] = c;
            n++;
        }
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* ---- abort and state ---- */

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
    touch(&op->lop->l->seg, r);
    shl__optrail(op->lop->l, op->lop->id, "ABORT_FLAG_SET aborted=%s",
                 aborted ? "true" : "false");
    shl__epoch_bump(&op->lop->l->seg);
    return 0;
}

int
shl_op_check_abort(shl_op *op)
{
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
    if (!op)
        return;
    shl__session_deliver_abort(op);
}

int
shl_op_get_state(shl_op *op)
{
    if (!op)
        return SHL_SET_ERR(-EINVAL, "NULL session");
    struct shl__op *r = shl__lop_record(op->lop);
    if (!r)
        return SHL_SET_ERR(SHL_ESTALE, "operation %s is gone", op->lop->id);
    uint32_t st = atomic_load_explicit(&r->op_state, memory_order_acquire);
    return st <= SHL_OP_COMPLETED ? (int)st : SHL_ECORRUPT;
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
        uint32_t n = copy.crashed_count;
        if (n > SHL_CRASHED_IDS_MAX)
            n = SHL_CRASHED_IDS_MAX;
        out->crashed_call_count = n;
        for (uint32_t i = 0; i < n; i++)
            shl__copy_field(out->crashed_call_ids[i], copy.crashed[i],
                            sizeof(copy.crashed[i]));
        return 0;
    }
    SHL__UNUSED(s);
    return -EAGAIN;
}

int
shl_op_failure_info(shl_op *op, shl_failed_info *out)
{
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
    shl__intent_note(s, crashed_call_id);
    shl__intent_set(s, SHL__I_FAIL, SHL__T_OP, lop->op_idx, lop->op_gen);
    SHL_CRASH_POINT("fail.intent");
    shl__seq_write_begin(&r->h);
    r->failed_at_us = shl__wall_us();
    memset(r->reason, 0, sizeof(r->reason));
    if (reason)
        shl__copy_field(r->reason, reason, sizeof(r->reason));
    SHL_CRASH_POINT("fail.half");
    if (crashed_call_id && r->crashed_count < SHL_CRASHED_IDS_MAX) {
        memset(r->crashed[r->crashed_count], 0, sizeof(r->crashed[0]));
        shl__copy_field(r->crashed[r->crashed_count], crashed_call_id,
                        sizeof(r->crashed[0]));
        r->crashed_count++;
    }
    shl__seq_write_end(&r->h);
    atomic_store_explicit(&r->op_state, SHL_OP_FAILED, memory_order_release);
    touch(s, r);
    shl__intent_clear(s);
    /* captured under the lock: the operation may be reclaimed as soon as
     * its last member leaves */
    shl_snapshot *arch = shl__archive_capture(lop->l, lop->op_idx,
                                              lop->op_gen);
    shl__unlock(s);
    shl__epoch_bump(s);
    shl__oplog(lop->l, lop->id, SHL_LOG_INFO,
               "OPERATION_STATE_CHANGED state=failed");
    (void)shl__archive_write(lop->l, arch);
    return 0;
}

void
shl__lop_deliver_failure(struct shl__lop *lop)
{
    SHL__UNUSED(lop);
}

/* ---- temp resources ---- */

/* Normalise an absolute path lexically into out. */
static int
normalise_path(const char *in, size_t len, char *out, size_t cap)
{
    if (len == 0)
        return SHL_SET_ERR(-EINVAL, "empty temp resource path");
    if (memchr(in, 0, len))
        return SHL_SET_ERR(-EINVAL, "temp resource path contains NUL");
    if (in[0] != '/')
        return SHL_SET_ERR(-EINVAL,
                           "temp resource path must be absolute: %.*s",
                           (int)(len > 200 ? 200 : len), in);
    size_t o = 0;
    size_t i = 0;
    out[o++] = '/';
    while (i < len) {
        while (i < len && in[i] == '/')
            i++;
        size_t st = i;
        while (i < len && in[i] != '/')
            i++;
        size_t n = i - st;
        if (n == 0 || (n == 1 && in[st] == '.'))
            continue;
        if (n == 2 && in[st] == '.' && in[st + 1] == '.') {
            /* drop the last component and its leading '/' */
            while (o > 1 && out[o - 1] != '/')
                o--;
            if (o > 1)
                o--;
            continue;
        }
        if (o > 1) {
            if (o + 1 >= cap)
                return SHL_SET_ERR(-ENAMETOOLONG, "temp resource path too "
                                                  "long");
            out[o++] = '/';
        }
        if (o + n >= cap)
            return SHL_SET_ERR(-ENAMETOOLONG, "temp resource path too long");
        memcpy(out + o, in + st, n);
        o += n;
    }
    if (o > 1 && out[o - 1] == '/')
        o--;
    out[o] = 0;
    return 0;
}

int
shl_op_register_temp_resource_n(shl_op *op, const char *path, size_t len)
{
    shl__clear_err();
    if (!op || !path)
        return SHL_SET_ERR(-EINVAL, "NULL argument");
    char norm[SHL_PATH_MAX + 1];
    int rc = normalise_path(path, len, norm, sizeof(norm));
    if (rc)
        return rc;
    struct shl__lop *lop = op->lop;
    shl_ledger *l = lop->l;
    struct shl__seg *s = &l->seg;
    rc = shl__lock(s, l->opts.timeout_ms);
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
        return SHL_SET_ERR(SHL_ESTATE, "operation %s is %s", lop->id,
                           shl_op_state_name((shl_op_state)st));
    }
    uint32_t idx;
    rc = shl__rec_find_free(s, SHL__T_RES, 0, &idx);
    if (rc) {
        shl__unlock(s);
        return rc;
    }
    struct shl__res *x = shl__res_at(s, idx);
    uint64_t gen;
    shl__intent_set(s, SHL__I_ALLOC, SHL__T_RES, idx,
                    atomic_load(&x->h.gen) + 1);
    SHL_CRASH_POINT("alloc.intent");
    rc = shl__rec_claim_at(s, SHL__T_RES, idx, l->slot, l->slot_gen, &gen);
    if (rc) {
        shl__intent_clear(s);
        shl__unlock(s);
        return rc;
    }
    SHL_CRASH_POINT("alloc.claimed");
    x->op_idx = lop->op_idx;
    x->op_gen = lop->op_gen;
    x->part_slot = l->slot;
    x->part_gen = l->slot_gen;
    x->registered_at_us = shl__wall_us();
    x->owner_pid = l->recorded_pid;
    memset(x->path, 0, sizeof(x->path));
    memcpy(x->path, norm, strlen(norm));
    SHL_CRASH_POINT("alloc.filled");
    shl__rec_publish(&x->h);
    SHL_CRASH_POINT("alloc.published");
    s->hdr->used[SHL__T_RES]++;
    shl__intent_clear(s);
    touch(s, r);
    shl__unlock(s);
    shl__optrail(l, lop->id, "TEMP_RESOURCE_REGISTERED owner=%d path=%s",
                 (int)l->recorded_pid, norm);
    return 0;
}

int
shl_op_register_temp_resource(shl_op *op, const char *path)
{
    if (!path)
        return SHL_SET_ERR(-EINVAL, "NULL path");
    return shl_op_register_temp_resource_n(op, path, strlen(path));
}

int
shl_op_unregister_temp_resource(shl_op *op, const char *path)
{
    shl__clear_err();
    if (!op || !path)
        return SHL_SET_ERR(-EINVAL, "NULL argument");
    char norm[SHL_PATH_MAX + 1];
    int rc = normalise_path(path, strlen(path), norm, sizeof(norm));
    if (rc)
        return rc;
    struct shl__lop *lop = op->lop;
    shl_ledger *l = lop->l;
    struct shl__seg *s = &l->seg;
    rc = shl__lock(s, l->opts.timeout_ms);
    if (rc)
        return rc;
    struct shl__op *r = shl__lop_record(lop);
    if (!r) {
        shl__unlock(s);
        return SHL_SET_ERR(SHL_ESTALE, "operation %s is gone", lop->id);
    }
    int removed = 0;
    uint32_t hw = shl__table_hwm(s, SHL__T_RES);
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__res *x = shl__res_at(s, i);
        if (atomic_load(&x->h.state) != SHL__R_ALLOCATED ||
            x->op_idx != lop->op_idx || x->op_gen != lop->op_gen ||
            strncmp(x->path, norm, sizeof(x->path)) != 0)
            continue;
        shl__intent_set(s, SHL__I_FREE, SHL__T_RES, i, atomic_load(&x->h.gen));
        SHL_CRASH_POINT("free.intent");
        shl__rec_release(s, SHL__T_RES, &x->h);
        SHL_CRASH_POINT("free.released");
        s->hdr->used[SHL__T_RES]--;
        shl__intent_clear(s);
        removed++;
    }
    if (removed)
        touch(s, r);
    shl__unlock(s);
    if (removed)
        shl__optrail(l, lop->id, "TEMP_RESOURCE_REMOVED count=%d path=%s",
                     removed, norm);
    return removed;
}
