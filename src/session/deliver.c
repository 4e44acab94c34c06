/*
 * deliver.c: what a session hears: the abort and the failure, delivered once
 * on every channel (callbacks, the condition variable the waits sleep on,
 * the pollable eventfd), the waits themselves, and cachedData.
 *
 * Delivery runs on the monitor thread (or a worker, or the thread that
 * failed a call), never with a lock held while a callback runs: the calls
 * to notify are collected under op->mu and called after it is dropped.
 */
#include "session/deliver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"
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
    /* pending calls hear it too (collected under the lock, fired after) */
    size_t n = 0;
    for (struct shl_call *c = op->calls_head; c; c = c->next)
        if (atomic_load(&c->done) == 0 && c->cb.on_operation_failed)
            n++;
    struct shl_call **calls = n ? malloc(n * sizeof(*calls)) : NULL;
    size_t k = 0;
    if (calls)
        for (struct shl_call *c = op->calls_head; c; c = c->next)
            if (atomic_load(&c->done) == 0 && c->cb.on_operation_failed)
                calls[k++] = c;
    pthread_mutex_unlock(&op->mu);
    bool expect = false;
    if (!atomic_compare_exchange_strong(&op->failure_fired, &expect, true)) {
        free(calls);
        return;
    }
    for (size_t i = 0; i < k; i++)
        calls[i]->cb.on_operation_failed(calls[i], info, calls[i]->cb.user);
    free(calls);
    if (op->cb.on_failure)
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

int
shl_op_wait_abort(shl_op *op, int64_t timeout_ms)
{
    shl__clear_err();
    if (!op)
        return SHL_SET_ERR(-EINVAL, "NULL session");
    int rc = wait_until(op, timeout_ms, is_aborted_cond);
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
