/*
 * spawned.c: the SpawnedCall handle (its state, result, error, cancel,
 * kill, await, release) and sync / awaitCall. The pool and the running of
 * the work are in spawn.c; the outcome is published there under op->mu and
 * op->cv is broadcast, which the waits here sleep on (CLOCK_MONOTONIC, no
 * polling).
 */
#include "session/spawned.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "session/call.h"
#include "session/opstate.h"
#include "session/session.h"

/* Wait on op->cv (op->mu held); timeout_ms < 0 waits forever. Returns
 * ETIMEDOUT once the deadline passed. */
static int
cv_wait(shl_op *op, int64_t timeout_ms, const struct timespec *dl)
{
    if (timeout_ms < 0)
        return pthread_cond_wait(&op->cv, &op->mu);
    return pthread_cond_timedwait(&op->cv, &op->mu, dl);
}

/* ------------------------------------------------------------------------ */
/* SpawnedCall                                                               */
/* ------------------------------------------------------------------------ */

const char *
shl_spawned_id(const shl_spawned *c)
{
    return c ? c->id : NULL;
}
const char *
shl_spawned_description(const shl_spawned *c)
{
    return c && c->call ? shl_call_description(c->call) : NULL;
}
bool
shl_spawned_is_completed(const shl_spawned *c)
{
    return c && atomic_load(&c->state) != SHL__SP_RUNNING;
}
bool
shl_spawned_is_success(const shl_spawned *c)
{
    return c && atomic_load(&c->state) == SHL__SP_SUCCEEDED;
}
bool
shl_spawned_is_failed(const shl_spawned *c)
{
    return c && atomic_load(&c->state) == SHL__SP_FAILED;
}
bool
shl_spawned_is_cancelled(const shl_spawned *c)
{
    return c && atomic_load(&c->cancelled);
}
void *
shl_spawned_result(const shl_spawned *c)
{
    shl__clear_err();
    return shl_spawned_is_success(c) ? c->result : NULL;
}
void *
shl_spawned_result_or(const shl_spawned *c, void *dflt)
{
    return shl_spawned_is_success(c) ? c->result : dflt;
}
const char *
shl_spawned_error(const shl_spawned *c)
{
    if (!c)
        return NULL;
    int st = atomic_load(&c->state);
    /* once the work returned, the error is final: on_call_crashed and
     * on_cleanup see it before the outcome is published */
    if (st == SHL__SP_FAILED || (st == SHL__SP_RUNNING && c->error_final))
        return c->error;
    return NULL;
}

const char *
shl_spawned_stack_trace(const shl_spawned *c)
{
    if (!c)
        return NULL;
    int st = atomic_load(&c->state);
    if (st == SHL__SP_FAILED || (st == SHL__SP_RUNNING && c->error_final))
        return c->detail;
    return NULL;
}

void
shl_spawned_set_error(shl_spawned *c, const char *error)
{
    shl__clear_err();
    shl_spawned_set_error_detail(c, error, NULL);
}

void
shl_spawned_set_error_detail(shl_spawned *c, const char *error,
                             const char *detail)
{
    if (!c || atomic_load(&c->state) != SHL__SP_RUNNING)
        return;
    char *e = error ? strdup(error) : NULL;
    char *d = detail ? strdup(detail) : NULL;
    pthread_mutex_lock(&c->pid_mu);
    if (c->error_final) {
        pthread_mutex_unlock(&c->pid_mu);
        free(e);
        free(d);
        return;
    }
    free(c->error);
    c->error = e;
    free(c->detail);
    c->detail = d;
    pthread_mutex_unlock(&c->pid_mu);
}

void
shl_spawned_cancel(shl_spawned *c)
{
    shl__clear_err();
    if (!c || atomic_load(&c->state) != SHL__SP_RUNNING)
        return;
    bool expect = false;
    if (!atomic_compare_exchange_strong(&c->cancelled, &expect, true))
        return;
    if (c->cancel_efd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(c->cancel_efd, &one, sizeof(one));
        (void)w; /* EAGAIN: already signalled */
    }
}

void
shl_spawned_attach_pid(shl_spawned *c, pid_t pid)
{
    shl__clear_err();
    if (!c)
        return;
    pthread_mutex_lock(&c->pid_mu);
    c->pid = pid > 0 ? pid : 0;
    pthread_mutex_unlock(&c->pid_mu);
}

int
shl_spawned_kill(shl_spawned *c, int sig)
{
    shl__clear_err();
    if (!c)
        return SHL_SET_ERR(-EINVAL, "NULL spawned call");
    int rc = 0;
    /* The exec helpers detach the child under this lock before reaping
     * it, so the pid cannot be a reused one. */
    pthread_mutex_lock(&c->pid_mu);
    if (c->pid > 0 && atomic_load(&c->state) == SHL__SP_RUNNING)
        rc = kill(c->pid, sig) == 0 ? 1 : -errno;
    pthread_mutex_unlock(&c->pid_mu);
    if (rc < 0)
        return SHL_SET_ERR(rc, "kill(%d): %s", sig, shl_strerror(rc));
    return rc;
}

int
shl_spawned_wait(shl_spawned *c, int64_t timeout_ms, void **result)
{
    shl__clear_err();
    if (!c || c->is_private)
        return SHL_SET_ERR(-EINVAL, "shl_spawned_wait: NULL call");
    shl_op *op = c->op;
    struct timespec dl = shl__deadline(CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&op->mu);
    while (atomic_load(&c->state) == SHL__SP_RUNNING)
        if (cv_wait(op, timeout_ms, &dl) == ETIMEDOUT &&
            atomic_load(&c->state) == SHL__SP_RUNNING) {
            pthread_mutex_unlock(&op->mu);
            return SHL_SET_ERR(-ETIMEDOUT,
                               "call %s still running after "
                               "%lld ms",
                               c->id, (long long)timeout_ms);
        }
    int st = atomic_load(&c->state);
    void *res = c->result;
    pthread_mutex_unlock(&op->mu);
    if (st == SHL__SP_FAILED && c->err == SHL_ECANCELLED)
        return SHL_SET_ERR(SHL_ECANCELLED, "call %s was cancelled", c->id);
    if (st == SHL__SP_FAILED)
        return SHL_SET_ERR(SHL_ECALLFAILED, "call %s failed: %s", c->id,
                           c->error ? c->error : "unknown");
    if (result)
        *result = res;
    return 0;
}

int
shl_spawned_release(shl_spawned *c)
{
    shl__clear_err();
    if (!c || c->is_private)
        return SHL_SET_ERR(-EINVAL, "NULL spawned call");
    if (atomic_load(&c->state) == SHL__SP_RUNNING)
        return SHL_SET_ERR(SHL_ESTATE, "call %s is still running", c->id);
    shl_op *op = c->op;
    pthread_mutex_lock(&op->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        op->spawned_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        op->spawned_tail = c->prev;
    c->call->spawned = NULL;
    pthread_mutex_unlock(&op->mu);
    (void)shl_call_release(c->call);
    shl__spawned_free(c);
    return 0;
}

size_t
shl_op_pending_spawned_calls(const shl_op *op, shl_spawned **out, size_t cap)
{
    shl__clear_err();
    if (!op)
        return 0;
    shl_op *m = (shl_op *)op;
    size_t n = 0;
    pthread_mutex_lock(&m->mu);
    for (shl_spawned *s = m->spawned_head; s; s = s->next)
        if (atomic_load(&s->state) == SHL__SP_RUNNING) {
            if (out && n < cap)
                out[n] = s;
            n++;
        }
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* ------------------------------------------------------------------------ */
/* sync / awaitCall                                                          */
/* ------------------------------------------------------------------------ */

void
shl_sync_opts_init(shl_sync_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->timeout_ms = -1;
}

void
shl_sync_result_fini(shl_sync_result *r)
{
    if (!r)
        return;
    free(r->successful);
    free(r->failed);
    free(r->unknown);
    memset(r, 0, sizeof(*r));
}

int
shl_op_sync(shl_op *op, shl_spawned **calls, size_t n, const shl_sync_opts *o,
            shl_sync_result *out)
{
    shl__clear_err();
    if (!op || !out || (n && !calls))
        return SHL_SET_ERR(-EINVAL, "shl_op_sync: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (!calls[i] || calls[i]->is_private || calls[i]->op != op)
            return SHL_SET_ERR(-EINVAL,
                               "shl_op_sync: call %zu is not a spawned call "
                               "of this session",
                               i);
    shl_sync_opts def;
    if (!o) {
        shl_sync_opts_init(&def);
        o = &def;
    }
    shl_sync_result r;
    memset(&r, 0, sizeof(r));
    if (n == 0) { /* as the original: at once, no callbacks */
        r.all_succeeded = r.all_resolved = true;
        *out = r;
        return 0;
    }
    r.successful = malloc(n * sizeof(*r.successful));
    r.failed = malloc(n * sizeof(*r.failed));
    r.unknown = malloc(n * sizeof(*r.unknown));
    if (!r.successful || !r.failed || !r.unknown) {
        shl_sync_result_fini(&r);
        return SHL_SET_ERR(-ENOMEM, "shl_op_sync: no memory");
    }

    struct timespec dl = shl__deadline(CLOCK_MONOTONIC, o->timeout_ms);
    pthread_mutex_lock(&op->mu);
    for (;;) {
        bool all = true, settling = false;
        for (size_t i = 0; i < n; i++)
            if (atomic_load(&calls[i]->state) == SHL__SP_RUNNING) {
                all = false;
                /* finished its call, outcome about to be published: a
                 * call that failed the operation is reported failed, not
                 * unknown */
                if (atomic_load(&calls[i]->call->done) != 0)
                    settling = true;
            }
        if (all || (op->failed && !settling))
            break;
        if (cv_wait(op, o->timeout_ms, &dl) == ETIMEDOUT) {
            /* one last look below */
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int st = atomic_load(&calls[i]->state);
        if (st == SHL__SP_SUCCEEDED)
            r.successful[r.successful_count++] = calls[i];
        else if (st == SHL__SP_FAILED)
            r.failed[r.failed_count++] = calls[i];
        else
            r.unknown[r.unknown_count++] = calls[i];
    }
    bool failed = op->failed;
    shl_failed_info info;
    if (failed)
        info = op->finfo;
    else
        memset(&info, 0, sizeof(info));
    pthread_mutex_unlock(&op->mu);
    /* the failure may be in the segment before it reaches this session */
    if (!failed && shl_op_failure_info(op, &info) == 1)
        failed = true;

    r.operation_failed = failed;
    if (failed)
        r.failure = info;
    r.has_failed = r.failed_count > 0;
    r.all_resolved = r.unknown_count == 0;
    r.all_succeeded = !r.has_failed && r.all_resolved && !failed;
    *out = r;
    if (failed) {
        if (o->on_operation_failed)
            o->on_operation_failed(&info, o->user);
    } else if (r.all_resolved && o->on_completion) {
        o->on_completion(o->user);
    }
    return 0;
}

int
shl_op_await_call(shl_op *op, shl_spawned *call, const shl_sync_opts *o,
                  shl_sync_result *out)
{
    shl__clear_err();
    if (!call)
        return SHL_SET_ERR(-EINVAL, "shl_op_await_call: NULL call");
    return shl_op_sync(op, &call, 1, o, out);
}
