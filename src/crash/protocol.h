/*
 * protocol.h: the crash-cleanup protocol on the segment (protocol.c):
 * liveness predicates, detection, the coordinator's removal.
 */
#ifndef SHL_CRASH_PROTOCOL_H
#define SHL_CRASH_PROTOCOL_H

#include <stdbool.h>
#include <stdint.h>

#include "objects.h"

/* Is participant slot `slot` (generation gen) alive, as the kernel says
 * (its liveness lock is held)? Our own slot: by generation. */
bool shl__slot_alive(shl_ledger *l, uint32_t slot, uint64_t gen);
/* Is the heartbeat of slot older than the ledger's stale threshold? */
bool shl__slot_stale(shl_ledger *l, uint32_t slot, int64_t now_ns);
/* Is slot a member of operation record r? */
bool shl__op_is_member(struct shl__op *r, uint32_t slot);

/* Is the coordinator word cw (0: none) a live, fresh, unfenced
 * participant? A dead or stale one is replaced, and its unfinished work
 * (the removal, the archive) is someone else's to finish. */
bool shl__coordinator_alive(shl_ledger *l, uint64_t cw);

/* The coordinator word naming this ledger (its slot and generation): the
 * archiver of an operation it fails or completes. */
uint64_t shl__coordinator_self(shl_ledger *l);

/* Detection: mark the frames of participant (slot, slot_gen) in operation
 * (op_idx, op_gen) crashed and move the operation on (cleanup with us as
 * coordinator when a failOnCrash frame crashed; else the crash is
 * contained and those frames go). `why` names the cause ("crashed", "is
 * stale"). Takes the structure lock. Returns the number of frames marked,
 * or a lock error. */
int shl__crash_op(shl_ledger *l, uint32_t op_idx, uint64_t op_gen,
                  uint32_t slot, uint64_t slot_gen, const char *why);

/* Removal by the coordinator of an operation this ledger takes part in
 * (taking the role over from a dead or stale coordinator): once no frame
 * is active or the grace period passed, delete the remaining resources,
 * clear the frames, set `failed`, archive. Returns true when it moved the
 * operation to failed. */
bool shl__crash_coordinate(shl_ledger *l, struct shl__lop *lop);

#endif /* SHL_CRASH_PROTOCOL_H */
