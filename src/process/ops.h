/*
 * ops.h: operations' create, join, leave and complete (ops.c). The API is
 * in shmledger.h; this is what the ledger needs at close.
 */
#ifndef SHL_PROCESS_OPS_H
#define SHL_PROCESS_OPS_H

#include <stdbool.h>

#include "objects.h"

/* End a session (leave): refuse with SHL_ESTATE while calls are pending
 * unless cancel; cancel them otherwise; drop membership; free the session
 * or leave it to whoever pins it. */
int shl__session_end(shl_op *op, bool cancel);

#endif /* SHL_PROCESS_OPS_H */
