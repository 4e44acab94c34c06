/*
 * lock.c: robust process-shared mutex, intent record, repair on EOWNERDEAD.
 *
 * Why an intent record: the robust mutex tells the next locker *that* the
 * holder died, not *what* it was doing. Every mutation under the mutex is
 * one of a few kinds (claim a record, free a record, record a failure), so
 * the holder writes (kind, table, index, generation) before touching
 * anything. Repair is then local and certain: an unpublished claim is
 * undone, a started free or failure is finished, and everything derived
 * (counts, the id index) is recomputed from the records, which are the
 * authority. The alternative, a redo log of every store, costs a store per
 * store on the hot path and buys nothing the record states do not already
 * say.
 */
#include "shm/lock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "shm/frame.h"
#include "shm/index.h"
#include "internal.h"
#include "shm/table.h"

void
shl__poison(struct shl__seg *s, const char *why)
{
    atomic_store_explicit(&s->hdr->poisoned, 1, memory_order_release);
    shl__set_err(SHL_EPANIC, "segment poisoned: %s", why);
}

void
shl__intent_set(struct shl__seg *s, enum shl__intent_kind kind, int table,
                uint32_t index, uint64_t gen)
{
    struct shl__intent *in = &s->hdr->intent;
    in->table = (uint32_t)table;
    in->index = index;
    in->gen = gen;
    /* kind last: a repair that sees a kind sees its operands */
    atomic_store_explicit(&in->kind, kind, memory_order_release);
}

void
shl__intent_note(struct shl__seg *s, const char *note)
{
    struct shl__intent *in = &s->hdr->intent;
    memset(in->note, 0, sizeof(in->note));
    if (note)
        shl__copy_field(in->note, note, sizeof(in->note));
}

void
shl__intent_clear(struct shl__seg *s)
{
    atomic_store_explicit(&s->hdr->intent.kind, SHL__I_NONE,
                          memory_order_release);
}

/* complete() frees a completed operation's resources and frames in one
 * locked section, so a record found `completed` with any here belongs to
 * a completer that died inside it. Finish that work (roll forward): free
 * its resources, release its frames. The record itself stays until its
 * archive is written: by the completer, or, when it is dead, by the
 * reaper (crash/reaper.c), which frees it then. */
static void
finish_completed_ops(struct shl__seg *s)
{
    struct shl__hdr *h = s->hdr;
    uint32_t ohw = shl__table_hwm(s, SHL__T_OP);
    uint32_t rhw = shl__table_hwm(s, SHL__T_RES);
    uint32_t fhw = shl__table_hwm(s, SHL__T_FRAME);
    for (uint32_t o = 0; o < ohw; o++) {
        struct shl__op *op = shl__op_at(s, o);
        if (atomic_load(&op->h.state) != SHL__R_ALLOCATED ||
            atomic_load(&op->op_state) != SHL_OP_COMPLETED)
            continue;
        uint64_t og = atomic_load(&op->h.gen);
        for (uint32_t i = 0; i < rhw; i++) {
            struct shl__res *x = shl__res_at(s, i);
            if (atomic_load(&x->h.state) == SHL__R_ALLOCATED &&
                x->op_idx == o && x->op_gen == og)
                shl__rec_release(s, SHL__T_RES, &x->h);
        }
        for (uint32_t i = 0; i < fhw; i++) {
            struct shl__frame *f = shl__frame_at(s, i);
            if (atomic_load(&f->h.state) != SHL__R_ALLOCATED ||
                f->op_idx != o || f->op_gen != og)
                continue;
            (void)shl__frame_remove(s, f, atomic_load(&f->h.gen));
        }
    }
    (void)h;
}

void
shl__rebuild_derived(struct shl__seg *s)
{
    struct shl__hdr *h = s->hdr;
    finish_completed_ops(s);
    const int counted[] = {SHL__T_PART, SHL__T_OP, SHL__T_RES};
    for (size_t k = 0; k < SHL__ARRAY_LEN(counted); k++) {
        int t = counted[k];
        uint32_t n = 0, hw = shl__table_hwm(s, t);
        for (uint32_t i = 0; i < hw; i++) {
            struct shl__rec *r = shl__rec_at(s, t, i);
            if (atomic_load_explicit(&r->state, memory_order_relaxed) ==
                SHL__R_ALLOCATED)
                n++;
        }
        h->used[t] = n;
    }
    h->used[SHL__T_FRAME] = 0;
    shl__index_rebuild(s);
}

/* Make a record's sequence even again (the dead writer left it odd). */
static void
close_seq(struct shl__rec *r)
{
    uint32_t q = atomic_load_explicit(&r->seq, memory_order_relaxed);
    if (q & 1u)
        atomic_store_explicit(&r->seq, q + 1, memory_order_release);
}

static int
repair(struct shl__seg *s)
{
    struct shl__hdr *h = s->hdr;
    struct shl__intent *in = &h->intent;
    uint32_t kind = atomic_load_explicit(&in->kind, memory_order_acquire);

    if (kind != SHL__I_NONE) {
        if (kind > SHL__I_CRASH || in->table >= SHL__NTABLES ||
            in->index >= h->cap[in->table] ||
            ((kind == SHL__I_FAIL || kind == SHL__I_CRASH) &&
             in->table != SHL__T_OP)) {
            shl__poison(s, "intent record is garbled");
            return SHL_EPANIC;
        }
        struct shl__rec *r = shl__rec_at(s, (int)in->table, in->index);
        uint32_t st = atomic_load_explicit(&r->state, memory_order_relaxed);
        uint64_t g = atomic_load_explicit(&r->gen, memory_order_relaxed);
        switch (kind) {
        case SHL__I_ALLOC:
            if (st == SHL__R_STARTING) {
                /* roll back: the record never became visible */
                close_seq(r);
                atomic_store_explicit(&r->state, SHL__R_FREE,
                                      memory_order_release);
            } else {
                /* published (roll forward) or never claimed: keep */
                close_seq(r);
            }
            break;
        case SHL__I_FREE:
            if (g == in->gen &&
                (st == SHL__R_ALLOCATED || st == SHL__R_STARTING)) {
                close_seq(r);
                shl__rec_release(s, (int)in->table, r);
            } else {
                close_seq(r);
            }
            break;
        case SHL__I_CRASH:
            /* a crash being recorded (crash_op): close the record; the
             * frames it marked stay crashed, and the next crash_op for the
             * same dead participant names them and moves the state (the
             * observer's intent did not say which way: a contained crash
             * must not fail the operation) */
            close_seq(r);
            break;
        case SHL__I_FAIL: {
            /* roll forward: the failure info may be partly written, but
             * every string in it is read bounded, and the state must
             * say failed */
            struct shl__op *op = (struct shl__op *)r;
            close_seq(r);
            if (g == in->gen && st == SHL__R_ALLOCATED) {
                shl__seq_write_begin(r);
                if (op->failed_at_us == 0) /* died before stamping it */
                    op->failed_at_us = shl__wall_us();
                /* the crashed call id rides in the intent */
                char note[sizeof(in->note)];
                shl__copy_field(note, in->note, sizeof(note));
                if (note[0] && op->crashed_count == 0) {
                    (void)shl__op_crashed_add(op, note);
                }
                if (!memchr(op->reason, 0, sizeof(op->reason)) ||
                    op->reason[0] == 0) {
                    memset(op->reason, 0, sizeof(op->reason));
                    if (note[0])
                        snprintf(op->reason, sizeof(op->reason),
                                 "Call %s failed", note);
                    else
                        snprintf(op->reason, sizeof(op->reason),
                                 "Operation failed (the failing process "
                                 "died while recording it)");
                }
                shl__seq_write_end(r);
                atomic_store_explicit(&op->op_state, SHL_OP_FAILED,
                                      memory_order_release);
            }
            break;
        }
        }
        shl__intent_clear(s);
    }
    shl__rebuild_derived(s);
    atomic_fetch_add_explicit(&h->lock_recoveries, 1, memory_order_relaxed);
    shl__epoch_bump(s);
    return 0;
}

int
shl__lock(struct shl__seg *s, int64_t timeout_ms)
{
    struct shl__hdr *h = s->hdr;
    if (atomic_load_explicit(&h->poisoned, memory_order_acquire))
        return SHL_SET_ERR(SHL_EPANIC, "segment %s is poisoned", s->name);
    /* a garbled mutex word would make glibc fail with EINVAL, hang or
     * misbehave: refuse it as the corruption it is */
    int mrc = shl__mutex_check(&h->mutex);
    if (mrc)
        return SHL_APPEND_ERR(mrc, "segment %s", s->name);
    struct timespec ts;
#if defined(__SANITIZE_THREAD__)
    /* TSan (gcc 12) does not intercept pthread_mutex_clocklock and would
     * then report every unlock as unpaired: use the intercepted, wall-clock
     * timedlock in TSan builds only. */
    const clockid_t clk = CLOCK_REALTIME;
#else
    /* monotonic: a wall-clock step cannot stretch or cut the wait */
    const clockid_t clk = CLOCK_MONOTONIC;
#endif
    ts = shl__deadline(clk, timeout_ms);
#if defined(__SANITIZE_THREAD__)
    int rc = pthread_mutex_timedlock(&h->mutex, &ts);
#else
    int rc = pthread_mutex_clocklock(&h->mutex, CLOCK_MONOTONIC, &ts);
#endif
    if (rc == 0) {
        if (atomic_load_explicit(&h->poisoned, memory_order_acquire)) {
            pthread_mutex_unlock(&h->mutex);
            return SHL_SET_ERR(SHL_EPANIC, "segment %s is poisoned",
                               s->name);
        }
        SHL_CRASH_POINT("lock.acquired");
        return 0;
    }
    if (rc == EOWNERDEAD) {
        rc = repair(s);
        if (rc != 0) {
            /* leave the mutex inconsistent: the next locker gets
             * ENOTRECOVERABLE, and the poisoned flag says why */
            pthread_mutex_unlock(&h->mutex);
            return rc;
        }
        pthread_mutex_consistent(&h->mutex);
        return 0;
    }
    if (rc == ENOTRECOVERABLE) {
        shl__poison(s, "structure mutex not recoverable");
        return SHL_EPANIC;
    }
    if (rc == ETIMEDOUT)
        return SHL_SET_ERR(-ETIMEDOUT,
                           "structure lock of %s not acquired in %lld ms",
                           s->name, (long long)timeout_ms);
    if (rc == EINVAL)
        return SHL_SET_ERR(SHL_ECORRUPT,
                           "structure mutex of %s garbled (EINVAL)", s->name);
    return SHL_SET_ERR(-rc, "pthread_mutex_lock: %s", strerror(rc));
}

void
shl__unlock(struct shl__seg *s)
{
    pthread_mutex_unlock(&s->hdr->mutex);
}
