/*
 * session.h: freeing a session and the objects hung on it; counting its
 * pending calls (session.c).
 */
#ifndef SHL_SESSION_SESSION_H
#define SHL_SESSION_SESSION_H

#include <stddef.h>

#include "objects.h"

/* Free a session that nobody pins any more (its calls and spawned calls
 * with it); the last session of a lop frees the lop. */
void shl__session_free(shl_op *op);
/* Free one spawned-call object (its result through result_free). */
void shl__spawned_free(shl_spawned *s);
/* Free the session's spawned objects (all finished by then). */
void shl__spawn_session_free(shl_op *op);
/* Spawned calls whose underlying call is already finished but whose
 * outcome is not yet published (still pending). Call with op->mu held. */
size_t shl__spawn_unsettled_locked(const shl_op *op);
/* Every pending call of the session, regular and spawned: their ids, comma
 * separated, into buf (cut with ", ..." when it is full); *spawned (may be
 * NULL) gets how many are spawned calls. Returns the total. */
size_t shl__session_pending_ids(shl_op *op, char *buf, size_t cap,
                                size_t *spawned);

#endif /* SHL_SESSION_SESSION_H */
