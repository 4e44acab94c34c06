/*
 * base/lops.h: a ledger's in-process table of its operations (the lop
 * objects, objects.h) and each lop's list of sessions, with constant-time
 * lookup, insertion and removal: join, leave and the crash protocol cost
 * the same with one operation or a thousand (issue 14, "flat lookup").
 *
 * l->lops stays the list that the monitor and close walk (now doubly
 * linked); beside it a chained hash table keyed by the operation's record
 * slot (op_idx: dense small integers, so the slot itself is the hash),
 * whose chains tell generations of one slot apart. It doubles when it holds
 * more lops than buckets.
 *
 * Every function: ledger->mu held (objects.h), any thread. Nothing here
 * reads the segment.
 */
#ifndef SHL_BASE_LOPS_H
#define SHL_BASE_LOPS_H

#include "objects.h"

/* The lop of operation (idx, gen), or NULL. */
struct shl__lop *shl__lops_find(shl_ledger *l, uint32_t idx, uint64_t gen);
/* Add `lop` (not in the table yet) to the list and the table. Returns 0, or
 * -ENOMEM when the first bucket array cannot be allocated (then nothing is
 * added). A failed growth keeps the table as it is (longer chains). */
int shl__lops_add(shl_ledger *l, struct shl__lop *lop);
/* Take `lop` out of the list and the table (it must be in them). */
void shl__lops_remove(shl_ledger *l, struct shl__lop *lop);
/* Free the bucket array (close; the lops themselves are not touched). */
void shl__lops_fini(shl_ledger *l);

/* A session at the head of its lop's list, and out of it again. */
void shl__lop_session_add(struct shl__lop *lop, shl_op *op);
void shl__lop_session_remove(struct shl__lop *lop, shl_op *op);

#endif /* SHL_BASE_LOPS_H */
