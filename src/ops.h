/*
 * ops.h: operations, sessions, temp resources (ops.c) and calls (call.c).
 */
#ifndef SHL_OPS_H
#define SHL_OPS_H

#include "ledger.h"

/* End a session: fail pending calls as "cancelled" when cancel is true
 * (else refuse with SHL_ESTATE), unlink it, free it with its calls. */
int shl__session_end(shl_op *op, bool cancel);

/* Validate the operation reference of a lop: the record still holds it.
 * Returns the record or NULL (SHL_ESTALE). */
struct shl__op *shl__lop_record(struct shl__lop *lop);

/* Move the operation to `failed` with reason and one crashed call id
 * (NULL for none). Takes the structure lock. Returns 0, SHL_ESTATE if the
 * operation is already terminal, SHL_ESTALE, lock errors. */
int shl__op_fail(struct shl__lop *lop, const char *reason,
                 const char *crashed_call_id);

/* Deliver on_failure to every session of this lop that has not seen it. */
void shl__lop_deliver_failure(struct shl__lop *lop);

/* Release every frame of the operation (op_idx, op_gen): CAS to GONE and
 * free the records it wins. Lock-free. Returns the number released. */
uint32_t shl__op_release_frames(struct shl__seg *s, uint32_t op_idx,
                                uint64_t op_gen);

/* Mark a call handle done without touching its frame (the frame was
 * released by someone else, e.g. complete()). */
void shl__call_orphan(struct shl_call *c);

void shl__call_free(struct shl_call *c);

/* Free a session object (after it was unlinked), and its lop when it was
 * the last object of it. */
void shl__session_free(shl_op *op);

/* Free a failed operation nobody takes part in any more (monitor.c). */
int shl__op_reclaim_if_abandoned(shl_ledger *l, uint32_t op_idx);
void shl__delete_temp_path(shl_ledger *l, const char *path);

/* Fail a pending call as cancelled (frame removed, on_cleanup fires, the
 * operation is not failed). */
int shl__call_cancel(struct shl_call *c);

/* Fail a pending call with `error` without failing the operation (frame
 * removed, CALL_FAILED, on_cleanup). spawn.c fails the operation itself,
 * after, so waiters see the call failed before the operation is. */
int shl__call_fail_local(struct shl_call *c, const char *error);

#endif /* SHL_OPS_H */
