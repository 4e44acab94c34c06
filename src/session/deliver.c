/*
 * deliver.c: what a session hears: the abort and the failure, delivered once
 * on every channel (callbacks, the condition variable the waits sleep on,
 * the pollable eventfd), the waits themselves, and cachedData.
 *
 * Delivery runs on the monitor thread (or a worker, or the thread that
 * failed a call), never with a lock held while a callback runs: the calls
 * to notify are collected under op->mu, pinned (callref.h), and called
 * after it is dropped; a call that ended meanwhile is skipped, and one
 * released meanwhile is not reused or freed before its pin is dropped.
 *
 * The abort wait is one hop shorter than the rest: shl_op_wait_abort sleeps
 * (futex_waitv) on the operation record's shared abort word itself, next to
 * a private word of the session that every delivery bumps, and
 * shl_op_set_abort_flag wakes that shared word before anything else. So a
 * waiter returns on the setter's own wake-up, without waiting for its
 * futex thread to run first; the futex thread still delivers the rest
 * (on_abort, the event fd, the condition variable) as before.
 */
#include "session/deliver.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "session/callref.h"
#include "shm/reader.h"
#include "shm/segment.h"

void
shl__session_init_delivery(shl_op *op)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&op->cv, &ca);
    pthread_condattr_destroy(&ca);
    op->efd = -1;
}

void
shl__session_fini_delivery(shl_op *op)
{
    shl_snapshot_free(op->cached);
    op->cached = NULL;
    if (op->efd >= 0)
        close(op->efd);
    pthread_cond_destroy(&op->cv);
}

void
shl__session_deliver_abort(shl_op *op)
{
    pthread_mutex_lock(&op->mu);
    atomic_store(&op->aborted, true);
    pthread_cond_broadcast(&op->cv);
    shl__efd_signal(op->efd);
    pthread_mutex_unlock(&op->mu);
    /* the direct waiters (shl_op_wait_abort): seq_cst, the Dekker pairing
     * with their increment of abort_waiters before they read abort_seq */
    atomic_fetch_add(&op->abort_seq, 1);
    if (atomic_load(&op->abort_waiters))
        syscall(SYS_futex, (uint32_t *)&op->abort_seq,
                FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
    bool expect = false;
    if (atomic_compare_exchange_strong(&op->abort_fired, &expect, true) &&
        op->cb.on_abort)
        op->cb.on_abort(op, op->cb.user);
}

void
shl__session_deliver_failure(shl_op *op, const shl_failed_info *info)
{
    pthread_mutex_lock(&op->mu);
    if (!op->failed) {
        op->finfo = *info;
        op->failed = true;
    }
    pthread_cond_broadcast(&op->cv);
    shl__efd_signal(op->efd);
    /* pending calls hear it too: collected and pinned under the lock,
     * fired after it (callref.h: a call released meanwhile by its owner's
     * thread stays this call's object until we unpin it) */
    size_t n = 0;
    for (struct shl_call *c = op->calls_head; c; c = c->next)
        if (atomic_load(&c->done) == 0 && c->cb.on_operation_failed)
            n++;
    struct shl_call **calls = n ? malloc(n * sizeof(*calls)) : NULL;
    size_t k = 0;
    if (calls)
        for (struct shl_call *c = op->calls_head; c; c = c->next)
            if (atomic_load(&c->done) == 0 && c->cb.on_operation_failed) {
                shl__call_pin_locked(c);
                calls[k++] = c;
            }
    pthread_mutex_unlock(&op->mu);
    bool expect = false;
    bool fire =
        atomic_compare_exchange_strong(&op->failure_fired, &expect, true);
    if (fire) {
        SHL_CRASH_POINT("deliver.collected"); /* race tests: the window */
        for (size_t i = 0; i < k; i++) {
            struct shl_call *c = calls[i];
            /* ended (and maybe released) since: no longer pending */
            if (atomic_load(&c->done) == 0)
                c->cb.on_operation_failed(c, info, c->cb.user);
        }
    }
    shl__calls_unpin(op, calls, k);
    free(calls);
    /* last: on_failure may leave the session */
    if (fire && op->cb.on_failure)
        op->cb.on_failure(op, info, op->cb.user);
}

static int
wait_until(shl_op *op, int64_t timeout_ms, bool (*cond)(shl_op *))
{
    struct timespec dl = shl__deadline(CLOCK_MONOTONIC, timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&op->mu);
    while (!cond(op)) {
        int w = timeout_ms < 0 ? pthread_cond_wait(&op->cv, &op->mu)
                               : pthread_cond_timedwait(&op->cv, &op->mu, &dl);
        if (w == ETIMEDOUT) {
            rc = cond(op) ? 0 : -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&op->mu);
    return rc;
}

static bool
is_aborted_cond(shl_op *op)
{
    return atomic_load(&op->aborted);
}

static bool
is_failed_cond(shl_op *op)
{
    return op->failed;
}

void
shl__session_wake_abort_waiters(struct shl__op *r)
{
    /* shared (no FUTEX_PRIVATE_FLAG): the waiters are in other processes;
     * one syscall per set_abort_flag, whoever waits */
    syscall(SYS_futex, (uint32_t *)&r->aborted, FUTEX_WAKE, INT_MAX, NULL,
            NULL, 0);
}

/* Aborted as far as a wait goes: delivered, or the operation's shared flag
 * is set (then this session counts as aborted from now on: is_aborted
 * agrees; its futex thread delivers the rest). */
static bool
abort_seen(shl_op *op, struct shl__op **rec)
{
    if (atomic_load(&op->aborted))
        return true;
    struct shl__lop *lop = op->lop;
    struct shl__op *r = shl__op_at(&lop->l->seg, lop->op_idx);
    if (atomic_load_explicit(&r->h.gen, memory_order_acquire) != lop->op_gen ||
        atomic_load_explicit(&r->h.state, memory_order_acquire) !=
            SHL__R_ALLOCATED)
        r = NULL; /* the record is gone: the delivery alone can tell us */
    *rec = r;
    if (r && atomic_load_explicit(&r->aborted, memory_order_acquire)) {
        atomic_store(&op->aborted, true);
        return true;
    }
    return false;
}

/* Sleep until the shared abort word differs from 0 or abort_seq from seq,
 * or the deadline (NULL: none). 0 (look again), -ETIMEDOUT, or -ENOSYS: no
 * futex_waitv (Linux < 5.16) or it failed otherwise. */
static int
sleep_abort(shl_op *op, struct shl__op *r, uint32_t seq,
            const struct timespec *dl)
{
    static _Atomic int no_waitv;
    if (atomic_load_explicit(&no_waitv, memory_order_relaxed))
        return -ENOSYS;
    struct futex_waitv w[2];
    memset(w, 0, sizeof(w));
    w[0].val = seq;
    w[0].uaddr = (uint64_t)(uintptr_t)&op->abort_seq;
    w[0].flags = FUTEX_32 | FUTEX_PRIVATE_FLAG;
    unsigned n = 1;
    if (r) {
        w[1].val = 0;
        w[1].uaddr = (uint64_t)(uintptr_t)&r->aborted;
        w[1].flags = FUTEX_32; /* shared */
        n = 2;
    }
    long rc = syscall(SYS_futex_waitv, w, n, 0, dl, CLOCK_MONOTONIC);
    if (rc >= 0 || errno == EAGAIN || errno == EINTR)
        return 0; /* woken, or a word changed already: look */
    if (errno == ETIMEDOUT)
        return -ETIMEDOUT;
    if (errno == ENOSYS)
        atomic_store(&no_waitv, 1);
    return -ENOSYS; /* cannot sleep this way: the condition variable */
}

int
shl_op_wait_abort(shl_op *op, int64_t timeout_ms)
{
    shl__clear_err();
    if (!op)
        return SHL_SET_ERR(-EINVAL, "NULL session");
    struct timespec dl = shl__deadline(CLOCK_MONOTONIC, timeout_ms);
    struct shl__op *r = NULL;
    int rc = 0;
    atomic_fetch_add(&op->abort_waiters, 1);
    for (;;) {
        uint32_t seq = atomic_load(&op->abort_seq);
        if (abort_seen(op, &r))
            break;
        if (timeout_ms == 0) {
            rc = -ETIMEDOUT;
            break;
        }
        rc = sleep_abort(op, r, seq, timeout_ms < 0 ? NULL : &dl);
        if (rc == -ENOSYS) {
            /* before Linux 5.16: the condition variable, which the futex
             * thread's delivery signals */
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            int64_t left =
                timeout_ms < 0
                    ? -1
                    : (dl.tv_sec - now.tv_sec) * 1000 +
                          (dl.tv_nsec - now.tv_nsec) / 1000000;
            rc = wait_until(op, left < 0 && timeout_ms >= 0 ? 0 : left,
                            is_aborted_cond);
            break;
        }
        if (rc == -ETIMEDOUT) {
            rc = abort_seen(op, &r) ? 0 : -ETIMEDOUT;
            break;
        }
    }
    atomic_fetch_sub(&op->abort_waiters, 1);
    return rc ? SHL_SET_ERR(rc, "no abort within %lld ms",
                            (long long)timeout_ms)
              : 0;
}

int
shl_op_wait_failure(shl_op *op, int64_t timeout_ms, shl_failed_info *info)
{
    shl__clear_err();
    if (!op)
        return SHL_SET_ERR(-EINVAL, "NULL session");
    int rc = wait_until(op, timeout_ms, is_failed_cond);
    if (rc)
        return SHL_SET_ERR(rc, "no failure within %lld ms",
                           (long long)timeout_ms);
    if (info) {
        pthread_mutex_lock(&op->mu);
        *info = op->finfo;
        pthread_mutex_unlock(&op->mu);
    }
    return 0;
}

int
shl_op_event_fd(shl_op *op)
{
    shl__clear_err();
    if (!op)
        return SHL_SET_ERR(-EINVAL, "NULL session");
    pthread_mutex_lock(&op->mu);
    if (op->efd < 0) {
        op->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (op->efd >= 0 && (atomic_load(&op->aborted) || op->failed))
            shl__efd_signal(op->efd);
    }
    int fd = op->efd;
    pthread_mutex_unlock(&op->mu);
    return fd >= 0 ? fd : SHL_SET_ERR(-errno, "eventfd: %s", strerror(errno));
}

void
shl__session_cache(shl_op *op, const shl_snapshot *s)
{
    shl_snapshot *fresh = NULL;
    if (s)
        fresh = shl__snapshot_dup(s);
    else if (shl_reader_snapshot(&op->lop->l->reader, op->lop->id, &fresh) !=
             0)
        fresh = NULL;
    if (!fresh)
        return;
    pthread_mutex_lock(&op->mu);
    shl_snapshot *old = op->cached;
    op->cached = fresh;
    pthread_mutex_unlock(&op->mu);
    shl_snapshot_free(old);
}

/* The operation's change_count now, or (uint64_t)-1 when its record is
 * gone. */
static uint64_t
op_change_count(shl_op *op)
{
    struct shl__lop *lop = op->lop;
    struct shl__seg *s = &lop->l->seg;
    struct shl__op *r = shl__op_at(s, lop->op_idx);
    uint64_t cc = atomic_load_explicit(&r->change_count, memory_order_acquire);
    if (atomic_load_explicit(&r->h.state, memory_order_acquire) !=
            SHL__R_ALLOCATED ||
        atomic_load(&r->h.gen) != lop->op_gen)
        return UINT64_MAX;
    return cc;
}

int
shl_op_cached_data(shl_op *op, shl_snapshot **out)
{
    shl__clear_err();
    if (!op || !out)
        return SHL_SET_ERR(-EINVAL, "NULL argument");
    /* loaded on first use (the original loads it at join; a snapshot on
     * every join would cost a frame-table scan on the join path), and read
     * again whenever the operation changed since: the original refreshed
     * its cache on every change it made, so its cachedData always showed
     * its own calls and resources */
    pthread_mutex_lock(&op->mu);
    bool stale = op->cached == NULL;
    if (!stale) {
        uint64_t cc = op_change_count(op);
        stale = cc != UINT64_MAX && cc != op->cached->change_count;
    }
    pthread_mutex_unlock(&op->mu);
    if (stale)
        shl__session_cache(op, NULL);
    pthread_mutex_lock(&op->mu);
    shl_snapshot *c = op->cached ? shl__snapshot_dup(op->cached) : NULL;
    bool had = op->cached != NULL;
    pthread_mutex_unlock(&op->mu);
    if (had && !c)
        return -ENOMEM;
    *out = c;
    return had ? 1 : 0;
}
