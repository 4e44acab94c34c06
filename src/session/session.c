/*
 * session.c: the end of a session's life, and what hangs on it: its calls'
 * and spawned calls' objects are freed with it; its pending calls are
 * counted here (spawned calls count until their outcome is published).
 *
 * A session left while the monitor or a worker still uses it is freed by
 * whoever drops the last pin (op->busy, ledger->mu): see spawn.h.
 */
#include "session/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/lops.h"
#include "internal.h"
#include "session/callref.h"
#include "session/deliver.h"

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
    shl__call_free_spares(op);
    shl__session_fini_delivery(op);
    pthread_mutex_destroy(&op->mu);
    pthread_mutex_lock(&l->mu);
    lop->alive--;
    bool free_lop = lop->alive == 0 && lop->join_count == 0;
    /* kept for the next join, or freed (base/lops.h) */
    shl__op_obj_release(l, op);
    if (free_lop)
        shl__lop_release(l, lop);
    pthread_mutex_unlock(&l->mu);
}

size_t
shl_op_pending_call_count(const shl_op *op)
{
    shl__clear_err();
    if (!op)
        return 0;
    shl_op *m = (shl_op *)op;
    pthread_mutex_lock(&m->mu);
    /* regular and spawned calls; a spawned call stays pending until its
     * outcome is published, after its underlying call finished */
    size_t n = shl__spawn_unsettled_locked(m);
    /* counted here, not on the call path: ending a call takes no lock */
    for (struct shl_call *c = m->calls_head; c; c = c->next)
        n += atomic_load_explicit(&c->done, memory_order_relaxed) == 0;
    pthread_mutex_unlock(&m->mu);
    return n;
}

size_t
shl__session_pending_ids(shl_op *op, char *buf, size_t cap,
                         size_t *spawned)
{
    size_t n = 0, used = 0, ns = 0;
    bool cut = false;
    if (cap)
        buf[0] = 0;
    pthread_mutex_lock(&op->mu);
    for (struct shl_call *c = op->calls_head; c; c = c->next) {
        bool sp = c->spawned != NULL;
        bool pending = atomic_load(&c->done) == 0 ||
                       (sp && atomic_load(&c->spawned->state) ==
                                  SHL__SP_RUNNING);
        if (!pending)
            continue;
        if (sp)
            ns++;
        if (!cut && cap > 8) {
            int w = snprintf(buf + used, cap - used, "%s%s", n ? ", " : "",
                             c->id);
            if (w < 0 || used + (size_t)w >= cap - 6) {
                used = used < cap - 6 ? used : cap - 6;
                snprintf(buf + used, cap - used, ", ...");
                cut = true;
            } else {
                used += (size_t)w;
            }
        }
        n++;
    }
    pthread_mutex_unlock(&op->mu);
    if (spawned)
        *spawned = ns;
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
    shl__clear_err();
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

void
shl__spawned_free(shl_spawned *s)
{
    if (atomic_load(&s->state) == SHL__SP_SUCCEEDED && s->result &&
        s->result_free)
        s->result_free(s->result);
    if (s->cancel_efd >= 0)
        close(s->cancel_efd);
    pthread_mutex_destroy(&s->pid_mu);
    free(s->error);
    free(s->detail);
    free(s);
}

void
shl__spawn_session_free(shl_op *op)
{
    shl_spawned *s = op->spawned_head;
    while (s) {
        shl_spawned *n = s->next;
        shl__spawned_free(s);
        s = n;
    }
    op->spawned_head = op->spawned_tail = NULL;
}

size_t
shl__spawn_unsettled_locked(const shl_op *op)
{
    size_t n = 0;
    for (shl_spawned *s = op->spawned_head; s; s = s->next)
        if (atomic_load(&s->state) == SHL__SP_RUNNING &&
            atomic_load(&s->call->done) != 0)
            n++;
    return n;
}
