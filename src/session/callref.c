/*
 * callref.c: the life of a call object after its start (callref.h).
 *
 * Deliveries (the failure's on_operation_failed, the self-cleanup's
 * on_cleanup, leave's cancel) find calls on the session's list under op->mu
 * and act on them after dropping it, so that no callback runs under a
 * lock. Meanwhile the call's owner may end and release it on another
 * thread, and a released object is kept for the session's next start
 * (call.c: no allocation in steady state) or freed. A pin (op->mu) keeps
 * the object this call's until the delivery is done with it: a release
 * while pinned unlinks the call at once (it is no longer pending, and no
 * later delivery finds it) and leaves the parking or freeing to the last
 * unpin.
 */
#include "session/callref.h"

#include <stdlib.h>

#include "internal.h"

/* Released calls a session keeps for its next starts (op->mu): more are
 * freed. A session with more calls pending at once than this allocates
 * for the excess. */
#define SPARE_MAX 16

void
shl__call_pin_locked(struct shl_call *c)
{
    c->pins++;
}

/* Park c on op's spare list; false when the list is full (free it). */
static bool
park_locked(shl_op *op, struct shl_call *c)
{
    if (op->calls_spare_n >= SPARE_MAX)
        return false;
    c->next = op->calls_spare;
    op->calls_spare = c;
    op->calls_spare_n++;
    return true;
}

void
shl__calls_unpin(shl_op *op, struct shl_call *const *calls, size_t n)
{
    if (n == 0)
        return;
    struct shl_call *gone = NULL; /* to free after unlocking */
    pthread_mutex_lock(&op->mu);
    for (size_t i = 0; i < n; i++) {
        struct shl_call *c = calls[i];
        SHL_ASSERT(c->op == op && c->pins > 0);
        if (--c->pins > 0 || !c->released)
            continue;
        c->released = false;
        if (!park_locked(op, c)) {
            c->next = gone;
            gone = c;
        }
    }
    pthread_mutex_unlock(&op->mu);
    while (gone) {
        struct shl_call *next = gone->next;
        shl__call_free(gone);
        gone = next;
    }
}

struct shl_call *
shl__call_take_spare_locked(shl_op *op)
{
    struct shl_call *c = op->calls_spare;
    if (c) {
        op->calls_spare = c->next;
        op->calls_spare_n--;
    }
    return c;
}

bool
shl__call_retire_locked(shl_op *op, struct shl_call *c)
{
    if (c->pins > 0) {
        c->released = true; /* the last unpin parks or frees it */
        return false;
    }
    return !park_locked(op, c);
}

void
shl__call_free(struct shl_call *c)
{
    free(c);
}

void
shl__call_free_spares(shl_op *op)
{
    struct shl_call *c = op->calls_spare;
    while (c) {
        struct shl_call *n = c->next;
        free(c);
        c = n;
    }
    op->calls_spare = NULL;
    op->calls_spare_n = 0;
}
