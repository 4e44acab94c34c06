/*
 * sync.h: read-your-writes files for a session (sync.c): shl_op_flush
 * (public, shmledger.h) and the hook every changing API function calls
 * before it returns.
 */
#ifndef SHL_SESSION_SYNC_H
#define SHL_SESSION_SYNC_H

#include "objects.h"

/* If the session's ledger was opened with sync_files: bring the files up
 * to date with everything posted so far (shl_op_flush with the ledger's
 * timeout_ms). A failure is reported through on_log_line, never returned:
 * the change itself was made. No-op otherwise. */
void shl__op_sync(shl_op *op);

#endif /* SHL_SESSION_SYNC_H */
