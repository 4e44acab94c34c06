/*
 * callref.h: the life of a call object (struct shl_call) after its start:
 * the pins of the threads that fire its callbacks outside op->mu, the
 * session's spare objects, freeing. The call API is in shmledger.h; call.c
 * is the call path.
 */
#ifndef SHL_SESSION_CALLREF_H
#define SHL_SESSION_CALLREF_H

#include <stdbool.h>
#include <stddef.h>

#include "objects.h"

/* Pin a call found on its session's list, op->mu held: until the pin is
 * dropped the object stays this call's (shl_call_release may still run:
 * the object is then parked or freed by the last unpin, never reused by a
 * start or freed before). Whoever pins must keep the session alive until
 * it unpins (the monitor's busy pin, a worker's task, or the API call on
 * the session it is inside). */
void shl__call_pin_locked(struct shl_call *c);
/* Drop one pin of each of calls[0..n), all of session op (takes op->mu). */
void shl__calls_unpin(shl_op *op, struct shl_call *const *calls, size_t n);
/* A spare call object of op for a start, or NULL (op->mu held). */
struct shl_call *shl__call_take_spare_locked(shl_op *op);
/* shl_call_release, op->mu held, c already unlinked from the call list:
 * parks c for the next start, defers that to the last unpin, or returns
 * true: the caller frees c (shl__call_free) after unlocking. */
bool shl__call_retire_locked(shl_op *op, struct shl_call *c);
/* Free a call object. */
void shl__call_free(struct shl_call *c);
/* Free the session's spare call objects. The session is being freed: no
 * lock, and no call is pinned any more. */
void shl__call_free_spares(shl_op *op);

#endif /* SHL_SESSION_CALLREF_H */
