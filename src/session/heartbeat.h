/*
 * heartbeat.h: session heartbeat ticks and error reports (heartbeat.c).
 * The public heartbeat API is in shmledger.h.
 */
#ifndef SHL_SESSION_HEARTBEAT_H
#define SHL_SESSION_HEARTBEAT_H

#include "objects.h"

/* A new session's heartbeat: on, at the ledger's interval, default
 * options (ledger->mu held or the session not yet visible). */
void shl__session_init_heartbeat(shl_op *op);

/* Report a heartbeat error of type t to the session's heartbeat callbacks
 * (and, for ledgerNotFound, the ledger's global one). */
void shl__hb_error(shl_op *op, shl_heartbeat_error_type t, int cause,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* One heartbeat tick of a session, classified as the original does
 * (monitor thread). */
void shl__session_tick(shl_op *op);

#endif /* SHL_SESSION_HEARTBEAT_H */
