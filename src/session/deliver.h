/*
 * deliver.h: delivery of the abort and the failure to a session, the waits,
 * cachedData (deliver.c). The public waits are in shmledger.h.
 */
#ifndef SHL_SESSION_DELIVER_H
#define SHL_SESSION_DELIVER_H

#include "objects.h"

/* Set up / tear down a session's delivery state (cv, eventfd,
 * cachedData). */
void shl__session_init_delivery(shl_op *op);
void shl__session_fini_delivery(shl_op *op);
/* Deliver a failure to one session (all channels), once. */
void shl__session_deliver_failure(shl_op *op, const shl_failed_info *info);
/* Deliver the abort to one session, once. */
void shl__session_deliver_abort(shl_op *op);
/* Wake the threads of every process sleeping in shl_op_wait_abort on the
 * operation record r's shared abort word (after setting it). */
struct shl__op;
void shl__session_wake_abort_waiters(struct shl__op *r);
/* Replace a session's cachedData with a copy of s (or a fresh read when s
 * is NULL). */
void shl__session_cache(shl_op *op, const shl_snapshot *s);

#endif /* SHL_SESSION_DELIVER_H */
