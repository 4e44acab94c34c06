/*
 * spawn.c: spawned calls (spawnCall, SpawnedCall), the per-ledger worker
 * pool, sync / awaitCall and waitForCompletion.
 *
 * Pool: created on the ledger's first spawned call, it grows by one thread
 * whenever more tasks are queued than threads are idle, up to
 * SHL__POOL_MAX; beyond that tasks wait in FIFO order. Threads block every
 * signal (signals belong to the application's threads) and live until
 * shl_ledger_close(), which stops the pool after every session has ended:
 * the threads run what is still queued, then exit and are joined. Nothing
 * frees a thread's session or ledger under it: each task pins its session
 * (see spawned.h), and the ledger outlives the pool.
 *
 * Waits (sync, awaitCall, shl_spawned_wait, waitForCompletion, leave) sleep
 * on the session's condition variable (op->cv, CLOCK_MONOTONIC), which both
 * a worker publishing an outcome and the failure delivery broadcast; no
 * wait polls.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"
#include "files/log.h"
#include "session/call.h"
#include "session/deliver.h"
#include "session/opstate.h"
#include "session/session.h"
#include "session/spawn.h"

#define SHL__POOL_MAX 16

struct shl__pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct shl_spawned *head, *tail; /* FIFO of tasks */
    size_t queued;
    size_t idle; /* threads waiting for a task */
    size_t nthreads;
    pthread_t threads[SHL__POOL_MAX];
    bool stop;
};

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* Wait on op->cv (op->mu held); timeout_ms < 0 waits forever. Returns
 * ETIMEDOUT once the deadline passed. */
static int
cv_wait(shl_op *op, int64_t timeout_ms, const struct timespec *dl)
{
    if (timeout_ms < 0)
        return pthread_cond_wait(&op->cv, &op->mu);
    return pthread_cond_timedwait(&op->cv, &op->mu, dl);
}

static void
session_pin(shl_op *op)
{
    shl_ledger *l = op->lop->l;
    pthread_mutex_lock(&l->mu);
    op->busy++;
    pthread_mutex_unlock(&l->mu);
}

/* Drop a task's pin; the last pin of a session that was left meanwhile
 * frees it (as the monitor does for the sessions it pins). */
static void
session_unpin(shl_op *op)
{
    shl_ledger *l = op->lop->l;
    pthread_mutex_lock(&l->mu);
    op->busy--;
    bool free_it = op->busy == 0 && op->free_pending;
    pthread_mutex_unlock(&l->mu);
    if (free_it)
        shl__session_free(op);
}

static void
spawned_unref(shl_spawned *s)
{
    if (atomic_fetch_sub(&s->refs, 1) == 1)
        shl__spawned_free(s);
}

static void
set_error_if_none(shl_spawned *s, const char *text)
{
    pthread_mutex_lock(&s->pid_mu);
    if (!s->error && text)
        s->error = strdup(text);
    pthread_mutex_unlock(&s->pid_mu);
}

/* Publish the outcome; after this the worker must not touch s. */
static void
publish(shl_spawned *s, int state, int err, void *result)
{
    shl_op *op = s->op;
    pthread_mutex_lock(&op->mu);
    s->result = result;
    s->err = err;
    atomic_store(&s->state, state);
    pthread_cond_broadcast(&op->cv);
    pthread_mutex_unlock(&op->mu);
}

/* ------------------------------------------------------------------------ */
/* pool                                                                      */
/* ------------------------------------------------------------------------ */

static void run_task(shl_spawned *t);

static void *
worker_main(void *arg)
{
    struct shl__pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop) {
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
        }
        if (!p->head)
            break; /* stopping, and nothing left to run */
        shl_spawned *t = p->head;
        p->head = t->qnext;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->mu);
        run_task(t);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static struct shl__pool *
pool_get(shl_ledger *l)
{
    pthread_mutex_lock(&l->mu);
    struct shl__pool *p = l->pool;
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (p) {
            pthread_mutex_init(&p->mu, NULL);
            pthread_cond_init(&p->cv, NULL);
            l->pool = p;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return p;
}

static int
pool_submit(shl_ledger *l, shl_spawned *t)
{
    struct shl__pool *p = pool_get(l);
    if (!p)
        return SHL_SET_ERR(-ENOMEM, "no memory for the worker pool");
    pthread_mutex_lock(&p->mu);
    if (p->stop) {
        pthread_mutex_unlock(&p->mu);
        return SHL_SET_ERR(SHL_ESTATE, "the ledger is closing");
    }
    t->qnext = NULL;
    if (p->tail)
        p->tail->qnext = t;
    else
        p->head = t;
    p->tail = t;
    p->queued++;
    if (p->queued > p->idle && p->nthreads < SHL__POOL_MAX) {
        /* the new thread inherits a full mask: signals are for the
         * application's own threads */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int rc = shl__thread_start(&p->threads[p->nthreads], worker_main, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc == 0) {
            p->nthreads++;
        } else if (p->nthreads == 0) {
            /* nobody would ever run it: take it back */
            shl_spawned **pp = &p->head;
            while (*pp != t)
                pp = &(*pp)->qnext;
            *pp = t->qnext;
            p->tail = NULL;
            for (shl_spawned *x = p->head; x; x = x->qnext)
                p->tail = x;
            p->queued--;
            pthread_mutex_unlock(&p->mu);
            return SHL_SET_ERR(-EAGAIN, "no worker thread: %s",
                               shl_strerror(-rc));
        }
        /* else: an existing thread will get to it */
    }
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void
shl__pool_stop(shl_ledger *l)
{
    struct shl__pool *p = l->pool;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    size_t n = p->nthreads;
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    l->pool = NULL;
}

/* ------------------------------------------------------------------------ */
/* running a task                                                            */
/* ------------------------------------------------------------------------ */

static void
run_private(shl_spawned *t)
{
    shl_op *op = t->op;
    void *res = NULL;
    int rc = t->work(t, t->arg, &res);
    if (rc >= 0)
        publish(t, SHL__SP_SUCCEEDED, 0, res);
    else
        publish(t, SHL__SP_FAILED, rc, NULL);
    /* a result produced after the waiter gave up is dropped with t (there
     * is no free function for it): see shl_op_wait_for_completion() */
    spawned_unref(t);
    session_unpin(op);
}

/* Take the work's error text: the error set by the work, else the text of
 * its code; from here on the work can no longer change it (on_call_crashed
 * and on_cleanup read it through shl_spawned_error). */
static void
settle_error(shl_spawned *s, int rc, char *etext, size_t cap)
{
    pthread_mutex_lock(&s->pid_mu);
    if (!s->error)
        s->error = strdup(shl_strerror(rc));
    snprintf(etext, cap, "%s", s->error ? s->error : shl_strerror(rc));
    s->error_final = true;
    pthread_mutex_unlock(&s->pid_mu);
}

static void
run_spawned(shl_spawned *s)
{
    shl_op *op = s->op;
    struct shl__lop *lop = op->lop;
    shl_ledger *l = lop->l;
    char id[SHL_CALL_ID_MAX + 1];
    memcpy(id, s->id, sizeof(id));

    void *res = NULL;
    int rc = s->work(s, s->arg, &res);
    if (s->arg_free)
        s->arg_free(s->arg);
    s->arg = NULL;
    bool ok = rc >= 0;
    char etext[512] = "";
    /* Cancelled is its own outcome: work that gives up after a cancel
     * request, or answers -ECANCELED, neither fails the operation nor asks
     * on_call_crashed for a fallback. */
    bool cancelled =
        !ok && (rc == -ECANCELED || atomic_load(&s->cancelled));
    if (!ok) {
        if (res && s->result_free)
            s->result_free(res);
        res = NULL;
        settle_error(s, rc, etext, sizeof(etext));
        /* onCallCrashed: a non-NULL fallback completes the call */
        if (!cancelled && s->on_call_crashed) {
            res = s->on_call_crashed(s, s->cb.user);
            ok = res != NULL;
        }
    }

    if (ok) {
        bool already = false;
        int erc = shl__call_end_ex(s->call, &already);
        if (already) {
            /* cancelled by leave(op, true), or released by complete():
             * the call is over without this result */
            if (res && s->result_free)
                s->result_free(res);
            set_error_if_none(s, "cancelled");
            publish(s, SHL__SP_FAILED, SHL_ECANCELLED, NULL);
        } else if (erc == SHL_EFAILED) {
            /* this participant was declared crashed: the call counts as
             * crashed, its result is not delivered */
            if (res && s->result_free)
                s->result_free(res);
            set_error_if_none(s, shl_errmsg());
            publish(s, SHL__SP_FAILED, erc, NULL);
        } else {
            shl__oplog(l, lop->id, SHL_LOG_INFO, "CALL_COMPLETED callId=%s",
                       id);
            if (s->cb.on_completion)
                s->cb.on_completion(s->call, res, s->cb.user);
            publish(s, SHL__SP_SUCCEEDED, 0, res);
        }
        session_unpin(op);
        return;
    }

    if (cancelled) {
        /* the frame goes as a cancelled call's (on_cleanup runs), the
         * operation goes on */
        (void)shl__call_cancel(s->call);
        publish(s, SHL__SP_FAILED, SHL_ECANCELLED, NULL);
        session_unpin(op);
        return;
    }

    /* failure: the frame goes (CALL_FAILED, on_cleanup), then the
     * operation fails (fail_on_crash), then waiters hear of both */
    pthread_mutex_lock(&s->pid_mu);
    char *detail = s->detail ? strdup(s->detail) : NULL;
    pthread_mutex_unlock(&s->pid_mu);
    int frc = shl__call_fail_local_detail(s->call, etext, detail);
    free(detail);
    if (frc == SHL_ESTATE && atomic_load(&s->call->done) == 2 &&
        atomic_load(&s->cancelled)) {
        /* leave(op, true) cancelled it while the work ran */
        publish(s, SHL__SP_FAILED, SHL_ECANCELLED, NULL);
        session_unpin(op);
        return;
    }
    bool failed_op = false;
    if (frc != SHL_ESTATE && frc != SHL_EFAILED && s->fail_on_crash) {
        /* shl__op_fail truncates to SHL_REASON_MAX */
        char reason[sizeof(id) + sizeof(etext) + 16];
        snprintf(reason, sizeof(reason), "Call %s failed: %s", id, etext);
        failed_op = shl__op_fail(lop, reason, id) == 0;
    }
    publish(s, SHL__SP_FAILED, rc, NULL);
    if (failed_op) {
        shl_failed_info info;
        if (shl_op_failure_info(op, &info) == 1)
            shl__session_deliver_failure(op, &info);
    }
    session_unpin(op);
}

static void
run_task(shl_spawned *t)
{
    if (t->is_private)
        run_private(t);
    else
        run_spawned(t);
}

/* ------------------------------------------------------------------------ */
/* spawnCall                                                                 */
/* ------------------------------------------------------------------------ */

void
shl_spawn_opts_init(shl_spawn_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->fail_on_crash = true;
}

static shl_spawned *
spawned_new(shl_op *op, shl_work_fn work, void *arg, bool want_cancel_fd)
{
    shl_spawned *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cancel_efd = -1;
    if (want_cancel_fd) {
        s->cancel_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->cancel_efd < 0) {
            free(s);
            return NULL;
        }
    }
    pthread_mutex_init(&s->pid_mu, NULL);
    s->op = op;
    s->work = work;
    s->arg = arg;
    atomic_store(&s->refs, 1);
    return s;
}

int
shl__spawn(shl_op *op, shl_work_fn work, void *arg, void (*arg_free)(void *),
           bool want_cancel_fd, const shl_spawn_opts *o, shl_spawned **out)
{
    int rc;
    if (!op || !work || !out) {
        rc = SHL_SET_ERR(-EINVAL, "shl_op_spawn_call: NULL argument");
        goto fail_arg;
    }
    shl_spawn_opts def;
    if (!o) {
        shl_spawn_opts_init(&def);
        o = &def;
    }
    errno = 0;
    shl_spawned *s = spawned_new(op, work, arg, want_cancel_fd);
    if (!s) {
        int e = errno ? -errno : -ENOMEM;
        rc = SHL_SET_ERR(e, "spawned call: %s", shl_strerror(e));
        goto fail_arg;
    }
    s->arg_free = arg_free;
    s->result_free = o->result_free;
    s->cb = o->callbacks;
    s->on_call_crashed = o->on_call_crashed;
    s->fail_on_crash = o->fail_on_crash;

    /* The underlying call carries the frame and the callbacks the monitor
     * fires for pending calls (on_cleanup in crash cleanup,
     * on_operation_failed); on_completion is fired here, for every
     * success (the regular call fires it only for a non-NULL result). */
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.description = o->description;
    co.fail_on_crash = o->fail_on_crash;
    co.callbacks = o->callbacks;
    co.callbacks.on_completion = NULL;
    struct shl_call *c = NULL;
    rc = shl_call_start(op, &co, &c);
    if (rc) {
        s->arg_free = NULL;
        shl__spawned_free(s);
        goto fail_arg;
    }
    s->call = c;
    memcpy(s->id, c->id, sizeof(s->id));
    pthread_mutex_lock(&op->mu);
    c->spawned = s;
    s->prev = op->spawned_tail;
    if (op->spawned_tail)
        op->spawned_tail->next = s;
    else
        op->spawned_head = s;
    op->spawned_tail = s;
    pthread_mutex_unlock(&op->mu);

    session_pin(op);
    rc = pool_submit(op->lop->l, s);
    if (rc) {
        /* never ran: undo quietly (no callbacks for a call the caller
         * never got) */
        pthread_mutex_lock(&op->mu);
        if (s->prev)
            s->prev->next = s->next;
        else
            op->spawned_head = s->next;
        if (s->next)
            s->next->prev = s->prev;
        else
            op->spawned_tail = s->prev;
        c->spawned = NULL;
        pthread_mutex_unlock(&op->mu);
        memset(&c->cb, 0, sizeof(c->cb));
        (void)shl__call_fail_local(c, "no worker thread");
        (void)shl_call_release(c);
        session_unpin(op);
        s->arg_free = NULL;
        shl__spawned_free(s);
        goto fail_arg;
    }
    *out = s;
    return 0;

fail_arg:
    if (arg_free)
        arg_free(arg);
    return rc;
}

int
shl_op_spawn_call(shl_op *op, shl_work_fn work, void *arg,
                  const shl_spawn_opts *o, shl_spawned **out)
{
    shl__clear_err();
    return shl__spawn(op, work, arg, NULL, false, o, out);
}

int
shl__spawned_cancel_fd(const shl_spawned *c)
{
    return c ? c->cancel_efd : -1;
}

/* ------------------------------------------------------------------------ */
/* session hooks                                                             */
/* ------------------------------------------------------------------------ */

int
shl__spawn_session_end(shl_op *op, bool cancel)
{
    shl_ledger *l = op->lop->l;
    pthread_mutex_lock(&op->mu);
    size_t n = 0;
    char ids[1024];
    size_t used = 0;
    ids[0] = 0;
    for (shl_spawned *s = op->spawned_head; s; s = s->next) {
        if (atomic_load(&s->state) != SHL__SP_RUNNING)
            continue;
        if (used < sizeof(ids) - 8) {
            int w = snprintf(ids + used, sizeof(ids) - used, "%s%s",
                             n ? ", " : "", s->id);
            used = w < 0 ? used : used + (size_t)w;
            if (used >= sizeof(ids) - 8) {
                used = sizeof(ids) - 8;
                snprintf(ids + used, 8, ", ...");
            }
        }
        n++;
    }
    if (n == 0) {
        pthread_mutex_unlock(&op->mu);
        return 0;
    }
    if (!cancel) {
        pthread_mutex_unlock(&op->mu);
        return SHL_SET_ERR(SHL_ESTATE,
                           "Cannot leave operation - %zu spawned call(s) "
                           "still active: [%s]. End or cancel all calls "
                           "before leaving, or leave with cancel_pending.",
                           n, ids);
    }
    /* cooperative cancellation, then a bounded wait for the workers; a
     * call still running after it is failed as "cancelled" by the caller
     * (frame removed, on_cleanup), and its worker unpins the session */
    for (shl_spawned *s = op->spawned_head; s; s = s->next)
        shl_spawned_cancel(s); /* takes no lock */
    int64_t limit = l->opts.timeout_ms;
    struct timespec dl = shl__deadline(CLOCK_MONOTONIC, limit);
    for (;;) {
        bool running = false;
        for (shl_spawned *s = op->spawned_head; s && !running; s = s->next)
            running = atomic_load(&s->state) == SHL__SP_RUNNING;
        if (!running)
            break;
        if (cv_wait(op, limit, &dl) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&op->mu);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* waitForCompletion                                                         */
/* ------------------------------------------------------------------------ */

int
shl_op_wait_for_completion(
    shl_op *op, shl_work_fn work, void *arg,
    void (*on_operation_failed)(const shl_failed_info *info, void *user),
    void *(*on_error)(int err, const char *error, void *user), void *user,
    void **result, shl_failed_info *failure)
{
    shl__clear_err();
    if (!op || !work)
        return SHL_SET_ERR(-EINVAL, "shl_op_wait_for_completion: NULL "
                                    "argument");
    shl_failed_info info;
    memset(&info, 0, sizeof(info));

    /* already failed: the failure wins without running the work */
    pthread_mutex_lock(&op->mu);
    bool failed = op->failed;
    if (failed)
        info = op->finfo;
    pthread_mutex_unlock(&op->mu);
    if (!failed && shl_op_failure_info(op, &info) == 1)
        failed = true;

    shl_spawned *t = NULL;
    int rc = 0;
    void *res = NULL;
    char etext[512] = "";
    if (!failed) {
        t = spawned_new(op, work, arg, false);
        if (!t)
            return SHL_SET_ERR(-ENOMEM, "waitForCompletion: no memory");
        t->is_private = true;
        atomic_store(&t->refs, 2); /* this waiter + the worker */
        session_pin(op);
        rc = pool_submit(op->lop->l, t);
        if (rc) {
            session_unpin(op);
            shl__spawned_free(t);
            return rc;
        }
        pthread_mutex_lock(&op->mu);
        while (atomic_load(&t->state) == SHL__SP_RUNNING && !op->failed)
            pthread_cond_wait(&op->cv, &op->mu);
        int st = atomic_load(&t->state);
        if (st == SHL__SP_RUNNING) {
            failed = true;
            info = op->finfo;
            t->abandoned = true;
            /* the work keeps running; ask it to stop */
            atomic_store(&t->cancelled, true);
        } else {
            rc = t->err;
            res = t->result;
            t->result = NULL; /* ours now */
            if (st == SHL__SP_FAILED) {
                pthread_mutex_lock(&t->pid_mu);
                snprintf(etext, sizeof(etext), "%s",
                         t->error ? t->error : shl_strerror(rc));
                pthread_mutex_unlock(&t->pid_mu);
                if (rc >= 0)
                    rc = SHL_EFAILED;
            }
        }
        pthread_mutex_unlock(&op->mu);
        spawned_unref(t);
    }

    if (failed) {
        if (on_operation_failed)
            on_operation_failed(&info, user);
        if (failure)
            *failure = info;
        return SHL_SET_ERR(SHL_EFAILED, "OperationFailedException: %s",
                           info.reason[0] ? info.reason : info.operation_id);
    }
    if (rc < 0) {
        if (on_error) {
            void *fb = on_error(rc, etext, user);
            if (result)
                *result = fb;
            return 0;
        }
        return SHL_SET_ERR(rc, "%s", etext);
    }
    if (result)
        *result = res;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* execServerRequest                                                         */
/* ------------------------------------------------------------------------ */

struct server_req {
    shl_work_fn work;
    void *arg;
    int64_t timeout_ms;
    void (*result_free)(void *result);
};

/* Slice of the wait, so a cancel of the outer call reaches the work. */
#define SERVER_CANCEL_SLICE_MS 50

/* The spawned call's work: run the request's work as a private task and
 * wait for it at most timeout_ms. At the deadline the call fails with
 * -ETIMEDOUT (as Dart's .timeout); the work is asked to stop and keeps
 * running on its thread until it returns, its late result freed with
 * result_free. */
static int
server_request_work(shl_spawned *c, void *arg, void **result)
{
    struct server_req *sv = arg;
    if (sv->timeout_ms < 0)
        return sv->work(c, sv->arg, result);
    shl_op *op = c->op;
    shl_spawned *t = spawned_new(op, sv->work, sv->arg, false);
    if (!t)
        return -ENOMEM;
    t->is_private = true;
    t->result_free = sv->result_free;
    memcpy(t->id, c->id, sizeof(t->id)); /* the work sees the call's id */
    atomic_store(&t->refs, 2); /* this waiter + the worker */
    session_pin(op);
    int rc = pool_submit(op->lop->l, t);
    if (rc) {
        session_unpin(op);
        shl__spawned_free(t);
        return rc;
    }
    int64_t dl_ns = shl__mono_ns() + sv->timeout_ms * 1000000;
    pthread_mutex_lock(&op->mu);
    for (;;) {
        if (atomic_load(&t->state) != SHL__SP_RUNNING)
            break;
        if (atomic_load(&c->cancelled))
            atomic_store(&t->cancelled, true);
        /* rounded up: a deadline 0.9 ms away is not one already passed
         * (truncating let the timeout fire up to 1 ms early) */
        int64_t rem = dl_ns - shl__mono_ns();
        if (rem <= 0)
            break;
        int64_t left = (rem + 999999) / 1000000;
        struct timespec dl = shl__deadline(
            CLOCK_MONOTONIC,
            left < SERVER_CANCEL_SLICE_MS ? left : SERVER_CANCEL_SLICE_MS);
        (void)pthread_cond_timedwait(&op->cv, &op->mu, &dl);
    }
    int st = atomic_load(&t->state);
    char etext[512] = "";
    if (st == SHL__SP_RUNNING) {
        t->abandoned = true;
        atomic_store(&t->cancelled, true); /* ask it to stop */
        rc = -ETIMEDOUT;
        snprintf(etext, sizeof(etext),
                 "Server request timed out after %lld ms",
                 (long long)sv->timeout_ms);
    } else {
        rc = t->err;
        if (st == SHL__SP_SUCCEEDED) {
            *result = t->result;
            t->result = NULL; /* ours now */
            rc = 0;
        } else {
            pthread_mutex_lock(&t->pid_mu);
            snprintf(etext, sizeof(etext), "%s",
                     t->error ? t->error : shl_strerror(rc));
            pthread_mutex_unlock(&t->pid_mu);
            if (rc >= 0)
                rc = SHL_ECALLFAILED;
        }
    }
    pthread_mutex_unlock(&op->mu);
    spawned_unref(t);
    if (rc < 0)
        shl_spawned_set_error(c, etext);
    return rc;
}

int
shl_op_exec_server_request(shl_op *op, shl_work_fn work, void *arg,
                           int64_t timeout_ms, const shl_spawn_opts *o,
                           shl_spawned **out)
{
    shl__clear_err();
    if (!op || !work || !out)
        return SHL_SET_ERR(-EINVAL, "execServerRequest: NULL argument");
    struct server_req *sv = calloc(1, sizeof(*sv));
    if (!sv)
        return SHL_SET_ERR(-ENOMEM, "execServerRequest: no memory");
    sv->work = work;
    sv->arg = arg;
    sv->timeout_ms = timeout_ms;
    shl_spawn_opts so;
    if (o)
        so = *o;
    else
        shl_spawn_opts_init(&so);
    if (!so.description)
        so.description = "Server request";
    sv->result_free = so.result_free;
    return shl__spawn(op, server_request_work, sv, free, false, &so, out);
}
