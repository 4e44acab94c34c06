/*
 * call.h: calls inside the library (call.c): cancelling, failing locally,
 * orphaning. The call API is in shmledger.h; a call object's life after
 * its start (pins, spares, freeing) is callref.h.
 */
#ifndef SHL_SESSION_CALL_H
#define SHL_SESSION_CALL_H

#include <stdbool.h>

#include "objects.h"

/* leave(cancelPendingCalls): cancel a pending call (frame removed, its
 * on_cleanup run, CALL_FAILED logged as cancelled). */
int shl__call_cancel(struct shl_call *c);
/* Fail a call in this process only (frame removed, on_cleanup run, logged)
 * without failing the operation (spawned calls decide that themselves). */
int shl__call_fail_local(struct shl_call *c, const char *error);
/* As shl__call_fail_local, with a detail text (a stack trace) logged after
 * the CALL_FAILED line. */
int shl__call_fail_local_detail(struct shl_call *c, const char *error,
                                const char *detail);
/* shl_call_end without on_completion: *already is set (and SHL_ESTATE
 * returned) when the call had been ended, failed or cancelled before. */
int shl__call_end_ex(struct shl_call *c, bool *already);
/* The session ends while the call is pending (complete): detach it. */
void shl__call_orphan(struct shl_call *c);

#endif /* SHL_SESSION_CALL_H */
