/*
 * spawn.h: spawned calls, the per-ledger worker pool, sync and
 * waitForCompletion (spawn.c); exec helpers (exec.c) build on it.
 *
 * A spawned call is a regular call (struct shl_call: frame, id, session
 * accounting, on_cleanup/on_operation_failed through the monitor) plus a
 * task that runs its work on a pool thread. The worker settles the call in
 * this order, so a waiter that wakes sees a finished call:
 *
 *   work -> (fallback) -> end/fail the underlying call (frame removed,
 *   CALL_* line, on_cleanup) -> operation failed in the segment (if
 *   fail_on_crash and no fallback) -> on_completion -> publish the outcome
 *   under op->mu and broadcast op->cv -> deliver the failure to the session
 *   -> unpin the session.
 *
 * Lifetime: every task pins its session (op->busy, ledger->mu); a session
 * left while a worker still runs is freed by the worker that unpins it last
 * (the monitor's deferred-free protocol). Once the outcome is published the
 * worker no longer touches the shl_spawned object, so the owner may release
 * it at once.
 */
#ifndef SHL_SESSION_SPAWN_H
#define SHL_SESSION_SPAWN_H

#include <stdbool.h>

#include "objects.h"

/* Start a spawned call. arg_free (may be NULL) runs once the work is done,
 * and also when this fails. want_cancel_fd gives the call an eventfd that
 * shl_spawned_cancel() writes (for work that waits in poll()). */
int shl__spawn(shl_op *op, shl_work_fn work, void *arg,
               void (*arg_free)(void *), bool want_cancel_fd,
               const shl_spawn_opts *o, shl_spawned **out);

/* The cancel eventfd of a call started with want_cancel_fd, else -1. */
int shl__spawned_cancel_fd(const shl_spawned *c);

/* Session hooks (ops.c). */
/* Before a session ends: refuse with SHL_ESTATE while spawned calls are
 * pending (cancel false); otherwise cancel them and wait, bounded by the
 * ledger's timeout_ms, for them to finish. */
int shl__spawn_session_end(shl_op *op, bool cancel);
/* Ledger hook (ledger.c): stop the pool after the sessions ended; runs the
 * tasks still queued, joins the threads. */
void shl__pool_stop(shl_ledger *l);

#endif /* SHL_SESSION_SPAWN_H */
