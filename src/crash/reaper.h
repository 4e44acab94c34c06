/*
 * reaper.h: reclaiming what dead participants and finished operations
 * leave (reaper.c). shl_ledger_reap() is the public entry (shmledger.h).
 */
#ifndef SHL_CRASH_REAPER_H
#define SHL_CRASH_REAPER_H

#include <stdint.h>

#include "objects.h"

/* Reap dead participants: the crash protocol for their operations, then
 * their frames, resources and slots; finish orphaned cleanups. Returns the
 * number of participants reaped, or a lock error. */
int shl__reap(shl_ledger *l);

/* Free operation op_idx if it is failed and has no member left (with its
 * remaining resources, deleted, and frames). Returns 0 or a lock error. */
int shl__op_reclaim_if_abandoned(shl_ledger *l, uint32_t op_idx);

/* The archiver of a finished operation (op_idx, op_gen) has written its
 * archive (or tried: a failure was reported): mark it archived and free
 * the record if nothing else holds it (completed; failed with no member
 * left). Takes the structure lock; a record reused meanwhile is left. */
void shl__op_archived(shl_ledger *l, uint32_t op_idx, uint64_t op_gen);
/* The archive of an operation we are the archiver of could not be written
 * (shl__archive_write reported it): the record stays, with nobody named as
 * its archiver, so a later sweep (crash/reaper.c) captures and writes it
 * again; nothing is freed until an archive is whole on disk. Takes the
 * structure lock; any thread. */
void shl__op_archive_failed(shl_ledger *l, uint32_t op_idx, uint64_t op_gen);

#endif /* SHL_CRASH_REAPER_H */
