/*
 * snapshotter.h: the snapshotter role (DESIGN §7).
 *
 * One process per segment holds the role: the one whose descriptor holds
 * the OFD lock on byte SHL__LOCK_SNAPSHOTTER. The kernel drops the lock when
 * that process dies, and the next ledger with the snapshotter enabled that
 * tries takes it over (its first pass finishes the dead holder's batch
 * without duplicating lines, see events.c). While holding the role, a
 * thread of the ledger, every snapshot_period_ms:
 *   - drains the event ring into {opId}.operation.log / .debug.log and
 *     {opId}_trail.jsonl;
 *   - rewrites {opId}.operation.json (temp file + rename) of every running
 *     or cleaning-up operation whose change_count moved.
 * Completed and failed operations are left to the archive.
 */
#ifndef SHL_FILES_SNAPSHOTTER_H
#define SHL_FILES_SNAPSHOTTER_H

#include "objects.h"

/* Called at the end of shl_ledger_open: set up the ledger's snapshotter
 * state, start the thread if enabled, and (enabled or not) drain what a dead
 * holder left when nobody holds the role (recovery on open). Failures are
 * reported through on_log_line; the ledger works without a snapshotter. */
void shl__snapshotter_start(shl_ledger *l);

/* Called by shl_ledger_close before the participant slot is released: stop
 * the thread, drain once more if the role is free or ours, release it. */
void shl__snapshotter_stop(shl_ledger *l);

/* Write {opId}.operation.json of a live operation now (createOperation
 * does, as the original). Returns 0 or an error (reported). */
int shl__snapshotter_write_json(shl_ledger *l, const char *op_id);

/* Does this ledger hold the role now? (tests) */
bool shl__snapshotter_held(shl_ledger *l);

/* createOperation: create (truncate) the empty operation log files and
 * write {opId}.operation.json at once, as the original's create does.
 * Returns 0 or the first -errno (every failure is reported through
 * on_log_line and counted); create refuses the operation then. */
int shl__snapshotter_create_files(shl_ledger *l, const char *op_id);

/* Run one snapshotter pass now on the calling thread (tests, tools): take
 * the role if free, drain, rewrite changed JSON. Returns 1 if the role is
 * held, 0 if another process has it, or an error. */
int shl__snapshotter_pass(shl_ledger *l);

/* Make every event posted so far (by any process) reach its files: drain
 * the ring here if this ledger can take the snapshotter role, else wait for
 * the holder to pass the current head. Returns 0, or -ETIMEDOUT after
 * timeout_ms (the events then stay in the ring for the holder). */
int shl__snapshotter_flush(shl_ledger *l, int64_t timeout_ms);

/* Read-your-writes (sync_files, shl_op_flush): flush the event ring (every
 * event posted so far is in the log and trail files), then rewrite
 * {opId}.operation.json from the segment now, serialised with every other
 * JSON writer so no older snapshot can be renamed over it. A live
 * operation only: a terminal one is the archive's (returns 0). Returns 0,
 * -ETIMEDOUT, or a write error (also reported through on_log_line). */
int shl__snapshotter_sync(shl_ledger *l, const char *op_id,
                          int64_t timeout_ms);

#endif /* SHL_FILES_SNAPSHOTTER_H */
