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
/* Free the bucket array and the spare objects (close; the lops in the
 * table are not touched). */
void shl__lops_fini(shl_ledger *l);

/* The spare objects. A join allocates a lop and a session object and the
 * leave frees both: the ledger keeps the last of each given back and hands
 * it out again (a 2.8 KiB session is past glibc's thread cache, and its
 * calloc skips that cache). Reuse is no different from malloc returning
 * the same address: an object is given back only once nothing refers to
 * it. Under ASan the spare is poisoned while it waits, so a use after the
 * leave is still reported.
 *
 * shl__lop_alloc: a zeroed lop, or NULL (out of memory).
 * shl__op_obj_alloc: a session object zeroed up to its failure info (which
 * is written before it is read: objects.h), or NULL.
 * The releases keep the object as the spare, or free it when there is one
 * already; a finished session object only (its mutex and condition
 * variable destroyed). Either kind may also be given to free(). */
struct shl__lop *shl__lop_alloc(shl_ledger *l);
void shl__lop_release(shl_ledger *l, struct shl__lop *lop);
shl_op *shl__op_obj_alloc(shl_ledger *l);
void shl__op_obj_release(shl_ledger *l, shl_op *op);

/* A session at the head of its lop's list, and out of it again. */
void shl__lop_session_add(struct shl__lop *lop, shl_op *op);
void shl__lop_session_remove(struct shl__lop *lop, shl_op *op);

#endif /* SHL_BASE_LOPS_H */
