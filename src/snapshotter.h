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
#ifndef SHL_SNAPSHOTTER_H
#define SHL_SNAPSHOTTER_H

#include "ledger.h"

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

/* A producer found the ring full: drain one batch here if no other thread of
 * this ledger and no other process is draining (try-locks only, never
 * waits). Returns true if a batch was drained (there may be room now). */
bool shl__snapshotter_help(shl_ledger *l);

/* Run one snapshotter pass now on the calling thread (tests, tools): take
 * the role if free, drain, rewrite changed JSON. Returns 1 if the role is
 * held, 0 if another process has it, or an error. */
int shl__snapshotter_pass(shl_ledger *l);

#endif /* SHL_SNAPSHOTTER_H */
