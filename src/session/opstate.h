/*
 * opstate.h: a session's operation record: failing it, its failure info
 * (opstate.c). Accessors and the abort flag are public (shmledger.h).
 */
#ifndef SHL_SESSION_OPSTATE_H
#define SHL_SESSION_OPSTATE_H

#include "objects.h"

/* The live record of lop's operation, or NULL once it is gone. */
struct shl__op *shl__lop_record(struct shl__lop *lop);
/* Fail the operation (running or cleanup -> failed) with reason and, if
 * given, the call whose failure caused it; logs it and delivers to lop's
 * sessions. From cleanup, the first failure's reason, time and crashed
 * calls stand (neither reason nor call is recorded).
 * Returns 0, or SHL_ESTATE if it was no longer running, or a lock error. */
int shl__op_fail(struct shl__lop *lop, const char *reason,
                 const char *crashed_call_id);
/* Deliver the operation's failure info to every session of lop. */
void shl__lop_deliver_failure(struct shl__lop *lop);

#endif /* SHL_SESSION_OPSTATE_H */
